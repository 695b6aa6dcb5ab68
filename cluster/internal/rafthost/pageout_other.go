//go:build !linux

package rafthost

// pageOutMapped is a no-op where MADV_PAGEOUT does not exist.
func pageOutMapped(string) (int64, error) { return 0, nil }
