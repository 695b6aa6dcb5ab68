package api

// RestoreInfo is the JSON answer of POST /restore.
type RestoreInfo struct {
	// Bytes is the size of the backup taken up.
	Bytes int64 `json:"bytes"`
	// Index is the raft index the restored state starts at.
	Index uint64 `json:"index"`
}

// PathBackup and PathRestore are the admin routes that back up and
// restore the queue state (role admin).
const (
	PathBackup  = "/backup"
	PathRestore = "/restore"
)
