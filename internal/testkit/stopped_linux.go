package testkit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// awaitStopped returns once every thread of pid is stopped. kill(SIGSTOP)
// returns before that: one thread takes the signal and only then stops the
// others, and on a busy machine the rest of the process can run on for
// milliseconds, long enough to answer a request sent "after" the pause.
func awaitStopped(pid int, timeout time.Duration) error {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	return Poll(context.Background(), timeout, fmt.Sprintf("every thread of process %d stopped", pid), func(context.Context) error {
		tasks, err := os.ReadDir(dir)
		if err != nil {
			return Permanent(err)
		}
		for _, task := range tasks {
			stat, err := os.ReadFile(filepath.Join(dir, task.Name(), "stat"))
			if err != nil {
				continue // the thread ended
			}
			// "pid (comm) S ...": the state follows the command name,
			// which may itself hold spaces and parentheses.
			s := string(stat)
			i := strings.LastIndexByte(s, ')')
			if i < 0 || i+2 >= len(s) {
				return fmt.Errorf("thread %s: unreadable stat %q", task.Name(), s)
			}
			if state := s[i+2]; state != 'T' && state != 't' {
				return fmt.Errorf("thread %s is in state %c", task.Name(), state)
			}
		}
		return nil
	})
}
