package fsm

import "github.com/quorumq/quorumq/fsm/internal/bodystore"

// Usage is what all queues of the state hold together: every message
// stored and not yet removed for good (ready, in flight, deferred, in a
// dead-letter queue) and the bytes of their bodies. It is the node-wide
// total that the HTTP front checks its budget of queued bytes against;
// every replica holds the same.
type Usage struct {
	Messages int64
	Bytes    int64
}

// MessageOverhead is what a stored message takes in the body store beyond
// its body: its record's header (checksum, length, id). The budget of
// queued bytes counts a message as its body plus this much.
const MessageOverhead = bodystore.RecordOverhead

// IndexBytesPerMessage is the memory a ready message takes when its body
// is on disk (Options.Dir): its 24-byte item in a deque chunk (id, body
// location and size, attempts). Measured by TestFSM_Disk_MemoryPerMessage:
// 24.2 bytes on amd64 with Go 1.26. Leased and deferred messages cost
// more (a btree entry), messages with a last error more again.
const IndexBytesPerMessage = 26

// Cost is the disk the messages of u are budgeted at: their bodies plus
// MessageOverhead each.
func (u Usage) Cost() int64 { return u.Bytes + u.Messages*MessageOverhead }

// Usage returns what all queues hold together, as of the last applied
// entry. It takes no lock: request handlers call it on every put.
func (f *FSM) Usage() Usage {
	return Usage{Messages: f.usedMessages.Load(), Bytes: f.usedBytes.Load()}
}

// publishUsage makes the state's usage readable without the lock. The
// caller holds f.mu.
func (f *FSM) publishUsage() {
	f.usedMessages.Store(f.st.used.Messages)
	f.usedBytes.Store(f.st.used.Bytes)
}

// The state's usage moves only where a message is stored or removed for
// good (a put, a pop, an ack, an eviction, a dead letter without a
// dead-letter queue, a handover taken) or its body is replaced (a nack
// with a body), and a handover given back or expired is stored again; moves
// between ready, in flight, deferred and a dead-letter queue change
// nothing. Any new way of storing or dropping messages must call these.

// storedPut accounts for a put: its messages, less those evicted by it.
func (s *state) storedPut(msgs, evicted [][]byte) {
	for _, m := range msgs {
		s.kept(uint32(len(m)))
	}
	for _, m := range evicted {
		s.dropped(uint32(len(m)))
	}
}

// kept accounts for one more stored message of size bytes.
func (s *state) kept(size uint32) {
	s.used.Messages++
	s.used.Bytes += int64(size)
}

// dropped accounts for a message removed for good.
func (s *state) dropped(size uint32) {
	s.used.Messages--
	s.used.Bytes -= int64(size)
}

// replaced accounts for a message whose body changed.
func (s *state) replaced(old uint32, new int) { s.used.Bytes += int64(new) - int64(old) }

// recount computes the usage from the queues: after a restore, which
// builds the queues without these calls.
func (s *state) recount() {
	var u Usage
	for _, q := range s.queues {
		u.Messages += q.held()
		u.Bytes += q.bytes
	}
	s.used = u
}
