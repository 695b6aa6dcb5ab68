//go:build !unix

package testport

// lockAcrossProcesses has no file locks to use here: only the in-process
// check applies.
func lockAcrossProcesses(int) bool { return true }
