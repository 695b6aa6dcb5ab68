package api

import (
	"encoding/base64"
	"fmt"
	"unicode/utf8"
)

// The JSON answers of the queue routes that have one: /config, /queues,
// /mget?format=json, the paged /dump, /purge and /redrive. The server
// writes these types and the client reads them, so a field cannot be
// renamed on one side only.

// QueueConfig is a queue's settings as /config answers them and /queues
// lists them. Lease is written as FormatDuration writes it.
type QueueConfig struct {
	Queue       string `json:"queue"`
	Lease       string `json:"lease"`
	MaxAttempts uint32 `json:"max_attempts"`
	DeadLetter  string `json:"dead_letter"`
	MaxDepth    int64  `json:"max_depth"`
	MaxBytes    int64  `json:"max_bytes"`
	Overflow    string `json:"overflow"`
}

// QueueInfo is one queue of GET /queues: its counters and settings.
// OldestMS is the put time (Unix milliseconds, known to a second) of its
// oldest ready message, 0 when none is ready; OldestAgeMS its age on the
// answering node's clock.
type QueueInfo struct {
	Name           string      `json:"name"`
	Depth          int64       `json:"depth"`
	InFlight       int64       `json:"in_flight"`
	Deferred       int64       `json:"deferred"`
	Dead           uint64      `json:"dead"`
	Bytes          int64       `json:"bytes"`
	Puts           uint64      `json:"puts"`
	Gets           uint64      `json:"gets"`
	Acks           uint64      `json:"acks"`
	Nacks          uint64      `json:"nacks"`
	Expired        uint64      `json:"expired"`
	Redelivered    uint64      `json:"redelivered"`
	Overflow       uint64      `json:"overflow"`
	DepthHighWater int64       `json:"depth_high_water"`
	OldestMS       int64       `json:"oldest_ms"`
	OldestAgeMS    int64       `json:"oldest_age_ms"`
	Config         QueueConfig `json:"config"`
}

// QueueList is the answer of GET /queues: every queue sorted by name,
// with the answering node's clock.
type QueueList struct {
	TimeMS int64       `json:"time_ms"`
	Queues []QueueInfo `json:"queues"`
}

// Message is one message of /mget?format=json (which sets LastError, the
// last nack reason or "lease expired") and of the paged /dump (which sets
// DeadFrom and Error instead). Data is the body, as EncodeData writes it.
type Message struct {
	ID        string `json:"id"`
	Attempts  uint32 `json:"attempts"`
	Data      string `json:"data"`
	Encoding  string `json:"encoding,omitempty"`
	LastError string `json:"last_error,omitempty"`
	DeadFrom  string `json:"dead_from,omitempty"`
	Error     string `json:"error,omitempty"`
}

// Messages is the answer of /mget?format=json.
type Messages struct {
	Messages []Message `json:"messages"`
}

// DumpPage is the answer of /dump?format=json: Total is the queue's depth,
// Offset the offset= asked for.
type DumpPage struct {
	Queue    string    `json:"queue"`
	Total    int64     `json:"total"`
	Offset   int       `json:"offset"`
	Messages []Message `json:"messages"`
}

// Purged is the answer of POST /purge.
type Purged struct {
	Purged int `json:"purged"`
}

// Redriven is the answer of POST /redrive: Left counts the ready messages
// still in the dead-letter queue.
type Redriven struct {
	Moved int `json:"moved"`
	Left  int `json:"left"`
}

// EncodingBase64 is the "encoding" of a message body that is not UTF-8.
const EncodingBase64 = "base64"

// EncodeData writes a message body for a JSON answer: the body itself when
// it is valid UTF-8 (JSON strings hold only that), else base64 with
// encoding EncodingBase64.
func EncodeData(b []byte) (data, encoding string) {
	if utf8.Valid(b) {
		return string(b), ""
	}
	return base64.StdEncoding.EncodeToString(b), EncodingBase64
}

// DecodeData reads what EncodeData wrote.
func DecodeData(data, encoding string) ([]byte, error) {
	switch encoding {
	case "":
		return []byte(data), nil
	case EncodingBase64:
		return base64.StdEncoding.DecodeString(data)
	}
	return nil, fmt.Errorf("unknown encoding %q", encoding)
}
