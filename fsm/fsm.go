package fsm

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// FSM is the replicated queue state machine. The raft host (package
// cluster) calls Apply, Snapshot and Restore from one goroutine; everything
// else may be called concurrently from request handlers. It knows nothing
// of raft itself: entries come in as Committed.
type FSM struct {
	mu sync.RWMutex
	st *state

	applied atomic.Uint64
	// usedMessages and usedBytes are the state's Usage as of the last
	// apply, readable without the lock (publishUsage).
	usedMessages, usedBytes atomic.Int64

	// Local wake-ups for long-polls: closed when a queue may have gained
	// ready messages. Not replicated state; firing them twice is harmless.
	notifyMu sync.Mutex
	notify   map[string]chan struct{}
}

// New returns an empty FSM.
func New() *FSM {
	return &FSM{st: newState(), notify: make(map[string]chan struct{})}
}

// QueueStats is a point-in-time view of one queue's counters and settings.
type QueueStats struct {
	// The six simplequeue counters. Depth counts ready messages; Bytes counts
	// every message the queue holds (ready, in flight and deferred), which is
	// what the byte limit applies to.
	Puts, Gets     uint64
	Depth          int64
	DepthHighWater int64
	Bytes          int64
	Overflow       uint64
	// InFlight messages are leased; Deferred wait for their delay; Dead counts
	// messages that exceeded MaxAttempts.
	InFlight, Deferred int64
	Dead               uint64
	Config             QueueConfig
	// Exists is false for a queue that was never written.
	Exists bool
}

// Committed is one committed log entry. Only command entries carry an
// Entry (EncodeEntry); the others (configuration changes and the like)
// only move the applied index.
type Committed struct {
	Index   uint64
	Command bool
	Data    []byte
}

// Apply applies committed entries in order, taking the lock once. For each
// it returns []Result for a command entry, an error for a command that
// does not decode, and nil otherwise.
func (f *FSM) Apply(entries []Committed) []any {
	out := make([]any, len(entries))
	var woken []string
	f.mu.Lock()
	for i, l := range entries {
		if l.Command {
			e, err := DecodeEntry(l.Data)
			switch {
			case err == nil:
				out[i] = f.st.apply(&e)
			case errors.Is(err, ErrNewerVersion):
				// Applying a command we do not understand would make this
				// replica diverge; stopping is the only safe answer.
				panic(fmt.Sprintf("fsm: log index %d: %v", l.Index, err))
			default:
				// Every replica fails the same way on the same bytes.
				out[i] = err
			}
		}
		f.st.index = l.Index
		f.applied.Store(l.Index)
	}
	woken = f.st.takeWoken(woken)
	f.publishUsage()
	f.mu.Unlock()
	f.wake(woken)
	return out
}

// ApplyEntry applies e as if it were committed at the given index. It is for
// tests and tools that drive the state machine without raft.
func (f *FSM) ApplyEntry(index uint64, e *Entry) []Result {
	data := EncodeEntry(nil, e)
	r := f.Apply([]Committed{{Index: index, Command: true, Data: data}})[0]
	if err, ok := r.(error); ok {
		panic(err)
	}
	return r.([]Result)
}

// AppliedIndex is the index of the last log entry this FSM was given. Raft
// does not hand no-op and barrier entries to a batching FSM, so it can stay
// below raft's commit index when the newest entries are of those types.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// Now is the leader time of the last applied entry, in Unix nanoseconds.
func (f *FSM) Now() int64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.now
}

// Stats returns the counters and settings of one queue.
func (f *FSM) Stats(queue string) QueueStats {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.stats(queue)
}

// Queues returns the names of all queues, sorted.
func (f *FSM) Queues() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.queueNames()
}

// Pending reports whether a get on queue at leader time now would find a
// message, and otherwise the earliest time one becomes due (0 if none will
// without a new put). It lets the leader answer empty polls, and time
// long-polls, without writing the log.
func (f *FSM) Pending(queue string, now int64) (ready bool, next int64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.pending(queue, now)
}

// NextDue returns the earliest lease deadline or deferred release over all
// queues (0 if none), so the leader knows when a Tick would change something.
func (f *FSM) NextDue() int64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.nextDue()
}

// Dump calls fn with the body of every ready message of queue, in order. It
// works on a copy-on-write view, so it does not hold up Apply while fn writes
// to a slow client.
func (f *FSM) Dump(queue string, fn func(data []byte) error) error {
	f.mu.Lock()
	v, ok := f.st.readyView(queue)
	f.mu.Unlock()
	if !ok {
		return nil
	}
	var err error
	v.Each(func(it item) bool {
		err = fn(it.data)
		return err == nil
	})
	return err
}

// Changed returns a channel that is closed the next time queue may have
// gained ready messages (a put, a nack, an expiry, a restore).
func (f *FSM) Changed(queue string) <-chan struct{} {
	f.notifyMu.Lock()
	defer f.notifyMu.Unlock()
	ch, ok := f.notify[queue]
	if !ok {
		ch = make(chan struct{})
		f.notify[queue] = ch
	}
	return ch
}

func (f *FSM) wake(queues []string) {
	if len(queues) == 0 {
		return
	}
	f.notifyMu.Lock()
	defer f.notifyMu.Unlock()
	for _, q := range queues {
		if ch, ok := f.notify[q]; ok {
			close(ch)
			delete(f.notify, q)
		}
	}
}

func (f *FSM) wakeAll() {
	f.notifyMu.Lock()
	defer f.notifyMu.Unlock()
	for q, ch := range f.notify {
		close(ch)
		delete(f.notify, q)
	}
}

// Snapshot captures the state in O(queues + chunks) and leaves the encoding
// to Snapshot.Encode, which may run concurrently with Apply.
func (f *FSM) Snapshot() *Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &Snapshot{frozen: f.st.freeze()}
}

// Restore replaces the whole state with the one read from rc.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, err := readSnapshot(rc)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	st.recount()
	f.mu.Lock()
	f.st = st
	f.applied.Store(st.index)
	f.publishUsage()
	f.mu.Unlock()
	f.wakeAll()
	return nil
}

// WriteSnapshot streams the current state to w in the snapshot format;
// tests use it to compare replicas byte for byte.
func (f *FSM) WriteSnapshot(w io.Writer) error { return f.Snapshot().Encode(w) }

// Snapshot is a frozen state, written out in the snapshot format by Encode.
type Snapshot struct{ frozen *frozenState }

// Encode streams the snapshot to w.
func (s *Snapshot) Encode(w io.Writer) error { return s.frozen.write(w) }
