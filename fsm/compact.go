package fsm

// DefaultCompactBelow is the share of a sealed segment's bytes below which
// its stored bodies are worth moving: a segment that holds a few long-lived
// messages (deferred, dead-lettered, in a queue nobody reads) among many
// removed ones would otherwise keep its 64 MiB on disk.
const DefaultCompactBelow = 0.25

// SparseSegments returns the sealed segments whose stored bodies take less
// than below of their bytes, with how many bodies each holds. A caller that
// sees the same count twice, a while apart, knows the segment's messages
// are not being consumed and Compacts it.
func (f *FSM) SparseSegments(below float64) map[uint32]int64 { return f.bodies.Sparse(below) }

// Compact moves every stored body of the given segments to the end of the
// store, so those segments go once no snapshot pins them. It changes where
// bodies are, not what any message is: replicas compact on their own, and
// snapshots carry locations with the segments they refer to. It holds the
// lock while it walks the index (every message) once, and returns how many
// bodies moved.
func (f *FSM) Compact(segs map[uint32]bool) (int, error) {
	if len(segs) == 0 {
		return 0, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.relocate(segs)
}

// relocate moves every body stored in one of segs.
func (s *state) relocate(segs map[uint32]bool) (moved int, err error) {
	move := func(it *item) bool {
		if err != nil || !segs[it.loc.Seq()] {
			return false
		}
		body, rerr := s.bodies.Read(it.loc, it.id, it.size)
		if rerr != nil {
			err = rerr
			return false
		}
		loc, aerr := s.bodies.Append(it.id, body)
		if aerr != nil {
			err = aerr
			return false
		}
		s.bodies.Release(it.loc, it.size)
		it.loc = loc
		moved++
		return true
	}
	for _, name := range s.queueNames() {
		q := s.queues[name]
		q.ready.Update(move)
		var deferred []deferredItem
		q.deferred.Ascend(func(d deferredItem) bool {
			if move(&d.it) {
				deferred = append(deferred, d)
			}
			return err == nil
		})
		for _, d := range deferred {
			q.deferred.ReplaceOrInsert(d) // the same (time, id): replaced
		}
	}
	var leases []lease
	s.inflight.Ascend(func(l lease) bool {
		if move(&l.it) {
			leases = append(leases, l)
		}
		return err == nil
	})
	for _, l := range leases {
		s.inflight.ReplaceOrInsert(l)
	}
	return moved, err
}
