package fsm

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/quorumq/quorumq/fsm/internal/bodystore"
	"github.com/quorumq/quorumq/internal/crashpoint"
)

// FSM is the replicated queue state machine. The raft host (package
// cluster) calls Apply, Snapshot and Restore from one goroutine; everything
// else may be called concurrently from request handlers. It knows nothing
// of raft itself: entries come in as Committed.
type FSM struct {
	mu     sync.RWMutex
	st     *state
	bodies *bodystore.Store

	applied atomic.Uint64
	// logBytes and logEntries count the command entries applied and their
	// bytes; snapMark is logBytes when the last snapshot was taken.
	logBytes, logEntries, snapMark atomic.Uint64
	// restores counts Restore calls that succeeded, by RestoreKind.
	restores [restoreKinds]atomic.Uint64
	// usedMessages and usedBytes are the state's Usage as of the last
	// apply, readable without the lock (publishUsage).
	usedMessages, usedBytes atomic.Int64

	// Local wake-ups for long-polls: closed when a queue may have gained
	// ready messages. Not replicated state; firing them twice is harmless.
	notifyMu sync.Mutex
	notify   map[string]chan struct{}
}

// Options configure where an FSM keeps message bodies. The zero value keeps
// them in memory.
type Options struct {
	// Dir holds the body store's segment files; empty keeps bodies in
	// memory. Only this FSM may use it.
	Dir string
	// CacheBytes bounds the memory the body store's read cache holds.
	// Default 64 MiB.
	CacheBytes int64
	// SegmentSize is the size at which a segment file is sealed and a new
	// one begun. Default 64 MiB (1 MiB in memory).
	SegmentSize int64
	// BlockSize is the unit of reads and of the cache. Default 1 MiB
	// (64 KiB in memory).
	BlockSize int
	// RetainSnapshots is how many persisted snapshots keep the segments
	// they refer to: the snapshot store's retention. Default 2.
	RetainSnapshots int
}

// New returns an empty FSM that keeps bodies in memory.
func New() *FSM {
	f, err := Open(Options{})
	if err != nil {
		panic(err) // the defaults of a memory store are valid
	}
	return f
}

// Open returns an empty FSM whose bodies go to o.Dir. Segment files found
// there are kept only if the snapshot raft restores first refers to them
// (a restart); otherwise they are dropped before the first body is written.
func Open(o Options) (*FSM, error) {
	b, err := bodystore.Open(bodystore.Options{Dir: o.Dir, SegmentSize: o.SegmentSize,
		BlockSize: o.BlockSize, CacheBytes: o.CacheBytes, Retain: o.RetainSnapshots})
	if err != nil {
		return nil, fmt.Errorf("fsm: %w", err)
	}
	return &FSM{st: newState(b), bodies: b, notify: make(map[string]chan struct{})}, nil
}

// BodyStats is what the body store holds.
type BodyStats struct {
	// Segments and Bytes are the segment files and their bytes, dead
	// records included; CachedBytes is the memory of its blocks (the
	// read cache and the block being written; every block when bodies
	// are in memory).
	Segments           int
	Bytes, CachedBytes int64
}

// BodyStats returns what the body store holds now.
func (f *FSM) BodyStats() BodyStats {
	st := f.bodies.Stats()
	return BodyStats{Segments: st.Segments, Bytes: st.Bytes, CachedBytes: st.CachedBytes}
}

// Close closes the body store's files. Call it after raft has stopped.
func (f *FSM) Close() error { return f.bodies.Close() }

// QueueStats is a point-in-time view of one queue's counters and settings.
type QueueStats struct {
	// Name is the queue's name (AllStats; empty from Stats of a queue that
	// was never written).
	Name string
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
	// Acks, Nacks, Expired (leases that ran out) and Redelivered
	// (deliveries of a message delivered before) are cumulative: nothing
	// resets them.
	Acks, Nacks, Expired, Redelivered uint64
	// OldestPut is when the message at the head of the ready queue (the
	// next a get hands out) was put, in leader time (Unix nanoseconds),
	// to within PutTimeResolution; 0 when nothing is ready or its put
	// time is unknown (stored before put times were kept).
	OldestPut int64
	Config    QueueConfig
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
			e, err := decodeEntry(l.Data, true)
			switch {
			case err == nil:
				out[i] = f.st.apply(&e)
				crashpoint.Hit("fsm-apply")
				f.logBytes.Add(uint64(len(l.Data)))
				f.logEntries.Add(1)
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
	var pin *bodystore.Pin
	var err error
	if ok {
		// The view's bodies must outlive their messages' acks meanwhile.
		pin, err = f.bodies.Pin()
	}
	f.mu.Unlock()
	if !ok || err != nil {
		return err
	}
	defer pin.Release()
	v.Each(func(it item) bool {
		var body []byte
		if body, err = f.bodies.Read(it.loc, it.id, it.size); err == nil {
			err = fn(body)
		}
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

// Snapshot captures the state in O(queues + chunks + segments) and leaves
// the encoding to Snapshot.Encode, which may run concurrently with Apply.
// The body store's segments stay pinned until Release, or, once the
// snapshot is Kept, until newer snapshots are.
func (f *FSM) Snapshot() (*Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fr, err := f.st.freeze()
	if err != nil {
		return nil, fmt.Errorf("fsm snapshot: %w", err)
	}
	f.snapMark.Store(f.logBytes.Load())
	return &Snapshot{frozen: fr}, nil
}

// AppliedLog is the command entries applied since this FSM was opened and
// their bytes.
func (f *FSM) AppliedLog() (bytes, entries uint64) { return f.logBytes.Load(), f.logEntries.Load() }

// BytesSinceSnapshot is the bytes of command entries applied since the
// last Snapshot (or since Open): what a restart would replay.
func (f *FSM) BytesSinceSnapshot() uint64 { return f.logBytes.Load() - f.snapMark.Load() }

// Restore replaces the whole state with the one read from rc: its own
// snapshot at restart (the body store is cut back to it), or one that
// brings its segments (from another node). On error nothing changes.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, t, err := readSnapshot(rc, f.bodies)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	st.recount()
	f.mu.Lock()
	if err := t.commit(); err != nil {
		f.mu.Unlock()
		if t.inPlace {
			return fmt.Errorf("restore snapshot: %w", err)
		}
		// The old segments may be gone already: the state cannot go on.
		panic(fmt.Sprintf("fsm: restore snapshot: replace the body store: %v", err))
	}
	f.st = st
	f.applied.Store(st.index)
	f.publishUsage()
	f.mu.Unlock()
	f.restores[t.kind()].Add(1)
	f.wakeAll()
	return nil
}

// RestoreKind says how a snapshot's bodies were taken up.
type RestoreKind int

const (
	// RestoredInPlace: this node's own snapshot at restart, its segments
	// cut back to it.
	RestoredInPlace RestoreKind = iota
	// RestoredSegments: a snapshot that brought its segments (another
	// node's, sent to this one).
	RestoredSegments
	// RestoredInline: a snapshot with every body inline (version 2).
	RestoredInline
	restoreKinds
)

func (k RestoreKind) String() string {
	return [...]string{"in_place", "segments", "inline"}[k]
}

// Restores is how many snapshots of kind k this FSM has taken up.
func (f *FSM) Restores(k RestoreKind) uint64 { return f.restores[k].Load() }

// WriteSnapshot streams the whole current state, bodies inline, to w (the
// version 2 format); tests use it to compare replicas byte for byte, and
// Restore takes it up.
func (f *FSM) WriteSnapshot(w io.Writer) error {
	// Not f.Snapshot: this is no raft snapshot, so the bytes applied since
	// the last one (BytesSinceSnapshot) must not restart.
	f.mu.Lock()
	fr, err := f.st.freeze()
	f.mu.Unlock()
	if err != nil {
		return err
	}
	defer fr.pin.Release()
	return fr.write(w, true)
}

// Snapshot is a frozen state, written out in the snapshot format by Encode.
type Snapshot struct {
	frozen *frozenState
	kept   bool
}

// Encode makes the segments the snapshot refers to durable, then streams
// the snapshot to w. A store in memory writes its segments into the
// stream.
func (s *Snapshot) Encode(w io.Writer) error {
	if err := s.frozen.pin.Sync(); err != nil {
		return err
	}
	return s.frozen.write(w, false)
}

// Keep records that the snapshot was persisted: the segments it refers to
// stay until newer snapshots replace it.
func (s *Snapshot) Keep() {
	s.kept = true
	s.frozen.pin.Keep()
}

// Release unpins the segments, unless the snapshot was kept.
func (s *Snapshot) Release() {
	if !s.kept {
		s.frozen.pin.Release()
	}
}
