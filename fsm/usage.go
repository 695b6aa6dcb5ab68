package fsm

// Usage is what all queues of the state hold together: every message
// stored and not yet removed for good (ready, in flight, deferred, in a
// dead-letter queue) and the bytes of their bodies. It is the node-wide
// total that the HTTP front checks its budget of queued bytes against;
// every replica holds the same.
type Usage struct {
	Messages int64
	Bytes    int64
}

// MessageOverhead is the live heap a stored message takes beyond its
// body, in bytes: its item in a deque chunk (id, attempts, body slice,
// info pointer) and the body's own allocation rounded up to its size
// class. Measured on amd64 with Go 1.26 by TestMessageOverhead_Measured:
// 51 bytes for bodies of 1 and 16 bytes, 63 for 100 bytes. Budgets count
// a message as its body plus this much; the collector's headroom over the
// live heap is left to the budget's share of memory.
const MessageOverhead = 64

// Cost is the memory the messages of u are budgeted at: their bodies plus
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
		s.kept(m)
	}
	for _, m := range evicted {
		s.dropped(m)
	}
}

// kept accounts for one more stored message.
func (s *state) kept(data []byte) {
	s.used.Messages++
	s.used.Bytes += int64(len(data))
}

// dropped accounts for a message removed for good.
func (s *state) dropped(data []byte) {
	s.used.Messages--
	s.used.Bytes -= int64(len(data))
}

// replaced accounts for a message whose body changed.
func (s *state) replaced(old, new []byte) { s.used.Bytes += int64(len(new) - len(old)) }

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
