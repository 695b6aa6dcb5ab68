//go:build !unix

package datadir

import "os"

// lockExclusive does nothing where flock is missing: raft-boltdb's own lock
// with its timeout still guards a boltdb directory there.
func lockExclusive(*os.File) error { return nil }
