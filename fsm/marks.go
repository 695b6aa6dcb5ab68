package fsm

import (
	"slices"
	"time"
)

// Put times. An item has no room for the time its message was put (it
// stays 24 bytes), but ids are minted in log order, so a message's put
// time is a function of its id, whichever queue it is in now. The state
// keeps marks: a mark says that the messages with ids from its id up to
// the next mark's were put in the second that starts at its time. A put
// starts a new mark when the log time moved on by PutTimeResolution or
// more since the last one; a mark counts the stored messages in its
// range and goes once that count falls to 0, so the list holds at most
// one mark per second that still has a message, and never more than
// maxMarks (past that, new puts join the last mark and their put time
// reads older than it was).

// PutTimeResolution is how precisely a message's put time is known: the
// time reported is at most this much earlier than the true one, never
// later.
const PutTimeResolution = time.Second

// maxMarks bounds the marks: 2¼ hours of seconds with messages still
// stored, 192 KiB.
const maxMarks = 8192

type putMark struct {
	id uint64
	at int64
	// n counts the stored messages with ids in the mark's range.
	n int64
}

// mark records that message id was just stored by a put.
func (s *state) mark(id uint64) {
	if k := len(s.marks); k > 0 {
		last := &s.marks[k-1]
		if s.now < last.at+int64(PutTimeResolution) || k >= maxMarks {
			last.n++
			return
		}
	}
	s.marks = append(s.marks, putMark{id: id, at: s.now, n: 1})
}

// markOf is the index of the mark whose range holds id, or -1 when id is
// older than every mark.
func (s *state) markOf(id uint64) int {
	i, found := slices.BinarySearchFunc(s.marks, id, func(m putMark, id uint64) int {
		switch {
		case m.id < id:
			return -1
		case m.id > id:
			return 1
		}
		return 0
	})
	if found {
		return i
	}
	return i - 1
}

// unmark records that message id is gone for good.
func (s *state) unmark(id uint64) {
	i := s.markOf(id)
	if i < 0 {
		return
	}
	if s.marks[i].n--; s.marks[i].n > 0 {
		return
	}
	// No message of the range is left: the range before it takes over
	// the ids, of which none is stored and no new one will be minted.
	if i == 0 {
		s.marks[0] = putMark{}
		s.marks = s.marks[1:]
		if len(s.marks) == 0 {
			s.marks = nil
		}
		return
	}
	s.marks = slices.Delete(s.marks, i, i+1)
}

// putTime is when message id was put, 0 if unknown.
func (s *state) putTime(id uint64) int64 {
	if i := s.markOf(id); i >= 0 {
		return s.marks[i].at
	}
	return 0
}

// oldestPut is the put time of q's next ready message, 0 if none.
func (s *state) oldestPut(q *queue) int64 {
	if q.ready.Len() == 0 {
		return 0
	}
	return s.putTime(q.ready.Front().id)
}
