package httpapi

import (
	"errors"
	"os"
	"sync"
)

// OverflowLog is simplequeue's --overflow-log: an append-only file that
// receives the messages evicted by the evict-oldest policy, each followed
// by "\n". It is safe for concurrent use.
//
// Each Write is one write(2) of all its items, so nothing waits in a
// user-space buffer once Write returns: a crash of the process loses
// nothing that was written (the data is in the kernel; it is not fsynced).
type OverflowLog struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

var errOverflowClosed = errors.New("overflow log is closed")

// OpenOverflowLog opens path for appending, creating it if needed.
func OpenOverflowLog(path string) (*OverflowLog, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	return &OverflowLog{path: path, f: f}, nil
}

func openAppend(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
}

// Path returns the file's path.
func (l *OverflowLog) Path() string { return l.path }

// Write appends each item followed by "\n".
func (l *OverflowLog) Write(items [][]byte) error {
	if len(items) == 0 {
		return nil
	}
	n := 0
	for _, it := range items {
		n += len(it) + 1
	}
	buf := make([]byte, 0, n)
	for _, it := range items {
		buf = append(buf, it...)
		buf = append(buf, '\n')
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errOverflowClosed
	}
	_, err := l.f.Write(buf)
	return err
}

// Reopen opens the path again and closes the old file, for log rotation on
// SIGHUP. If the path cannot be opened the old file stays in use and the
// error is returned. It fails after Close.
func (l *OverflowLog) Reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errOverflowClosed
	}
	f, err := openAppend(l.path)
	if err != nil {
		return err
	}
	old := l.f
	l.f = f
	return old.Close()
}

// Close closes the file; later writes fail.
func (l *OverflowLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
