package hclogadapter

import (
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"
)

// RepeatWindow is how long the warnings and errors of one kind about one
// peer are summarised after the first: the next one after the window is
// logged with the count of those left out.
const RepeatWindow = time.Minute

// maxRepeatKeys bounds the limiter's memory: past it, keys older than the
// window are forgotten, and if none is, records pass unlimited.
const maxRepeatKeys = 1024

// demote returns the level a raft record deserves. raft warns about what
// every healthy cluster goes through: a node waiting for its peers
// (bootstrap-expect) has none to elect with, a first election has no
// previous leader, and a follower that lags or has just started rejects
// entries until the leader finds where their logs meet.
func demote(lv slog.Level, msg string, args []any) slog.Level {
	if lv != slog.LevelWarn {
		return lv
	}
	switch msg {
	case "no known peers, aborting election", "failed to get previous log", "appendEntries rejected, sending older logs":
		return slog.LevelDebug
	case "heartbeat timeout reached, starting election":
		if leader, _ := arg(args, "last-leader-id").(string); leader == "" {
			return slog.LevelInfo // the first election, not a lost leader
		}
	}
	return lv
}

// peerKeys name the peer in raft's records.
var peerKeys = []string{"peer", "server-id", "target", "id"}

// localAddr matches the local end of a connection in an error text
// ("read tcp 127.0.0.1:54321->"): a new port each time, the same peer.
var localAddr = regexp.MustCompile(`[0-9A-Fa-f.:\[\]]+->`)

// repeatKey is what makes two records the same for the limiter: the
// subsystem, the message and the peer it is about. memberlist writes
// plain lines, with the peer in the text.
func repeatKey(name, msg string, args []any) string {
	for _, k := range peerKeys {
		if v := arg(args, k); v != nil {
			return fmt.Sprintf("%s\x00%s\x00%v", name, msg, v)
		}
	}
	return name + "\x00" + localAddr.ReplaceAllString(msg, "->")
}

// arg returns the value of key in hclog's alternating key, value list.
func arg(args []any, key string) any {
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok && k == key {
			return args[i+1]
		}
	}
	return nil
}

// limiter lets the first record of a key through, then drops the records
// of that key for a window and counts them; the first record after the
// window goes through with that count, and starts the next window. Time is
// read only when a record comes: nothing runs in the background.
type limiter struct {
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	keys map[string]*repeat
}

type repeat struct {
	since   time.Time // when the last record of the key was let through
	dropped int
}

func newLimiter(window time.Duration, now func() time.Time) *limiter {
	return &limiter{window: window, now: now, keys: map[string]*repeat{}}
}

// admit reports whether a record of key is to be logged, and if so how
// many of its kind were dropped over how long before it.
func (l *limiter) admit(key string) (ok bool, dropped int, over time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	r := l.keys[key]
	if r == nil {
		if len(l.keys) >= maxRepeatKeys {
			for k, old := range l.keys {
				if now.Sub(old.since) >= l.window {
					delete(l.keys, k)
				}
			}
			if len(l.keys) >= maxRepeatKeys {
				return true, 0, 0
			}
		}
		l.keys[key] = &repeat{since: now}
		return true, 0, 0
	}
	if over = now.Sub(r.since); over < l.window {
		r.dropped++
		return false, 0, 0
	}
	dropped = r.dropped
	r.since, r.dropped = now, 0
	return true, dropped, over
}
