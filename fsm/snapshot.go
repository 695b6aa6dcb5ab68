package fsm

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"

	"github.com/google/btree"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm/internal/bodystore"
)

// Snapshot formats: a header, then framed records, then a trailer.
//
//	record  = type(1 byte) length(uvarint) payload
//	trailer = a record of type recEnd whose payload holds the record counts
//
// Version 2 (and 1) carries every body inline, in its message's record:
//
//	header  = magic "QQSNAP" version(1 byte) now(varint) index(uvarint) nextID(uvarint)
//	item    = id attempts body(bytes) info
//
// Version 3 refers to the body store: a message's record holds where its
// body lives, and the header names the store and its segments, each up to
// the length the snapshot covers. With flagSegments the segments' bytes
// follow the trailer, one after the other; without, the snapshot can only
// be taken up by the store it was taken of (a node's own snapshot, read at
// restart), and FSM.OpenSnapshot adds them when it is sent to another node.
//
//	header  = magic "QQSNAP" 3 flags(1 byte) length(uvarint) storeID(string)
//	          segments(uvarint count, then seq and length as uvarints)
//	          now(varint) index(uvarint) nextID(uvarint)
//	item    = id attempts loc(uvarint) size(uvarint) info
//
// A lease record of a handover (Command.Handover) ends with one more byte,
// 1; readers that predate handovers ignore it.
//
// Version 4 adds the queues' cumulative counters (acks, nacks, expired,
// redelivered, after dead in the queue record) and the put-time marks (a
// recMarks record before the first queue). Its header is version 3's;
// flagInline says that bodies are inline, as in version 2, and then the
// store id is empty and no segment is named. Versions 1 to 3 still read:
// their queues start the new counters at 0 and their messages have no
// known put time.
//
// Ready and deferred records belong to the queue record before them. The
// length prefix lets a later reader skip record types it does not know; the
// trailer catches a truncated stream. Raft snapshots are written in version
// 4; WriteSnapshot writes version 4 with flagInline, the whole state in
// one stream, which replicas can compare byte for byte.
const snapMagic = "QQSNAP"

const (
	snapInline = 2 // bodies inline
	snapRefs   = 3 // bodies in the store's segments
	// snapCounters adds the queues' counters and the put-time marks.
	snapCounters = 4
	// flagSegments: the segments' bytes follow the trailer.
	flagSegments byte = 1
	// flagInline (version 4): bodies are inline.
	flagInline byte = 2
)

const (
	recQueue    byte = 1
	recReady    byte = 2
	recDeferred byte = 3
	recLease    byte = 4
	recDedup    byte = 5
	// recReadyRun (version 3) is a run of ready messages stored one after
	// the other: consecutive ids, each body's record right after the one
	// before in one segment, never delivered and without info. Its
	// payload is the first id, the first location, the count and each
	// body's size: about two bytes a message instead of fifteen, which is
	// what keeps a snapshot of a deep queue, and a restart from it, short.
	recReadyRun byte = 6
	// recMarks (version 4) holds the put-time marks (marks.go): their
	// count, then each one's id, time and message count.
	recMarks byte = 7
	recEnd   byte = 0xFF
)

const snapBufferSize = 256 << 10

// maxSnapHeader bounds a version 3 header (a store id and a segment list:
// 16 MiB names a million segments), so a damaged length cannot make a
// reader allocate gigabytes.
const maxSnapHeader = 16 << 20

// frozenState is an immutable copy-on-write view of a state: taking it costs
// O(queues + chunks) under the FSM lock; writing it needs no lock.
type frozenState struct {
	bodies        *bodystore.Store
	pin           *bodystore.Pin
	now           int64
	index, nextID uint64
	queues        []frozenQueue
	inflight      *btree.BTreeG[lease]
	infos         *btree.BTreeG[infoEntry]
	dedup         *btree.BTreeG[dedupEntry]
	dedupOrder    dequeView[dedupRef]
	marks         []putMark
}

type frozenQueue struct {
	name           string
	cfg            QueueConfig
	puts, gets     uint64
	depthHighWater int64
	overflow, dead uint64
	acks, nacks    uint64
	expired        uint64
	redelivered    uint64
	ready          dequeView[item]
	deferred       *btree.BTreeG[deferredItem]
}

// freeze pins the body store's segments and takes the copy-on-write view.
func (s *state) freeze() (*frozenState, error) {
	pin, err := s.bodies.Pin()
	if err != nil {
		return nil, err
	}
	fr := &frozenState{
		bodies:     s.bodies,
		pin:        pin,
		now:        s.now,
		index:      s.index,
		nextID:     s.nextID,
		inflight:   s.inflight.Clone(),
		infos:      s.infos.Clone(),
		dedup:      s.dedup.Clone(),
		dedupOrder: s.dedupOrder.View(),
		marks:      slices.Clone(s.marks),
	}
	for _, name := range s.queueNames() {
		q := s.queues[name]
		fr.queues = append(fr.queues, frozenQueue{
			name: q.name, cfg: q.cfg,
			puts: q.puts, gets: q.gets, depthHighWater: q.depthHighWater,
			overflow: q.overflow, dead: q.dead,
			acks: q.acks, nacks: q.nacks, expired: q.expired, redelivered: q.redelivered,
			ready:    q.ready.View(),
			deferred: q.deferred.Clone(),
		})
	}
	return fr, nil
}

type snapWriter struct {
	inline bool
	bodies *bodystore.Store
	infos  *btree.BTreeG[infoEntry]
	w      *bufio.Writer
	rec    []byte
	counts [4]uint64 // queues, messages, leases, dedup keys
	err    error
}

func (sw *snapWriter) record(typ byte, payload []byte) {
	if sw.err != nil {
		return
	}
	var hdr [1 + binary.MaxVarintLen64]byte
	hdr[0] = typ
	n := binary.PutUvarint(hdr[1:], uint64(len(payload)))
	if _, err := sw.w.Write(hdr[:1+n]); err != nil {
		sw.err = err
		return
	}
	_, sw.err = sw.w.Write(payload)
}

// appendItem writes it with its body inline (version 2) or its body's
// location (version 3).
func (sw *snapWriter) appendItem(buf []byte, it item) []byte {
	buf = binary.AppendUvarint(buf, it.id)
	buf = binary.AppendUvarint(buf, uint64(it.tries()))
	if sw.inline {
		body, err := sw.bodies.Read(it.loc, it.id, it.size)
		if err != nil && sw.err == nil {
			sw.err = err
		}
		buf = appendBytes(buf, body)
	} else {
		buf = binary.AppendUvarint(buf, uint64(it.loc))
		buf = binary.AppendUvarint(buf, uint64(it.size))
	}
	if !it.hasInfo() {
		return append(buf, 0)
	}
	e, _ := sw.infos.Get(infoEntry{id: it.id})
	buf = append(buf, 1)
	buf = appendString(buf, e.info.lastError)
	return appendString(buf, e.info.deadFrom)
}

// readyRun gathers ready messages that form a run (recReadyRun).
type readyRun struct {
	sw      *snapWriter
	first   item
	next    item // the id and location the run's next message must have
	sizes   []byte
	n       int
	started bool
}

// maxRun bounds a run's record.
const maxRun = 4096

// add takes it into the run, starting one if none is open; false if it
// cannot be part of a run at all.
func (r *readyRun) add(it item) bool {
	if it.attempts != 0 { // delivered before, or with info
		return false
	}
	if r.started && (it.id != r.next.id || it.loc != r.next.loc || r.n == maxRun) {
		r.flush()
	}
	if !r.started {
		r.first, r.started, r.n, r.sizes = it, true, 0, r.sizes[:0]
	}
	r.sizes = binary.AppendUvarint(r.sizes, uint64(it.size))
	r.n++
	r.next = item{id: it.id + 1, loc: it.loc + bodystore.Loc(bodystore.RecordOverhead) + bodystore.Loc(it.size)}
	return true
}

func (r *readyRun) flush() {
	if !r.started {
		return
	}
	r.started = false
	sw := r.sw
	rec := binary.AppendUvarint(sw.rec[:0], r.first.id)
	rec = binary.AppendUvarint(rec, uint64(r.first.loc))
	rec = binary.AppendUvarint(rec, uint64(r.n))
	sw.rec = append(rec, r.sizes...)
	sw.record(recReadyRun, sw.rec)
	sw.counts[1] += uint64(r.n)
}

// write writes the frozen state in version 4: bodies inline, or
// referred to, with the segments' bytes when the store is in memory.
func (fr *frozenState) write(w io.Writer, inline bool) error {
	return fr.writeVersion(w, inline, snapCounters)
}

// writeVersion writes the frozen state in the given version; versions
// before 4 (written only by tests, to check that they still read) leave
// out what they cannot carry.
func (fr *frozenState) writeVersion(w io.Writer, inline bool, version byte) error {
	sw := &snapWriter{inline: inline, bodies: fr.bodies, infos: fr.infos, w: bufio.NewWriterSize(w, snapBufferSize)}
	var hdr []byte
	withSegments := !inline && fr.bodies.InMemory()
	if inline && version < snapCounters {
		hdr = append([]byte(snapMagic), snapInline)
		hdr = binary.AppendVarint(hdr, fr.now)
		hdr = binary.AppendUvarint(hdr, fr.index)
		hdr = binary.AppendUvarint(hdr, fr.nextID)
	} else {
		var flags byte
		if withSegments {
			flags |= flagSegments
		}
		segs, storeID := fr.pin.Segments(), fr.pin.StoreID()
		if inline {
			flags |= flagInline
			segs, storeID = nil, ""
		}
		h := appendString(nil, storeID)
		h = binary.AppendUvarint(h, uint64(len(segs)))
		for _, sg := range segs {
			h = binary.AppendUvarint(h, uint64(sg.Seq))
			h = binary.AppendUvarint(h, uint64(sg.Len))
		}
		h = binary.AppendVarint(h, fr.now)
		h = binary.AppendUvarint(h, fr.index)
		h = binary.AppendUvarint(h, fr.nextID)
		hdr = append([]byte(snapMagic), version, flags)
		hdr = binary.AppendUvarint(hdr, uint64(len(h)))
		hdr = append(hdr, h...)
	}
	if _, err := sw.w.Write(hdr); err != nil {
		return err
	}
	if version >= snapCounters {
		rec := binary.AppendUvarint(sw.rec[:0], uint64(len(fr.marks)))
		for _, m := range fr.marks {
			rec = binary.AppendUvarint(rec, m.id)
			rec = binary.AppendVarint(rec, m.at)
			rec = binary.AppendUvarint(rec, uint64(m.n))
		}
		sw.rec = rec
		sw.record(recMarks, rec)
	}
	for _, q := range fr.queues {
		rec := appendString(sw.rec[:0], q.name)
		rec = appendConfig(rec, q.cfg)
		rec = binary.AppendUvarint(rec, q.puts)
		rec = binary.AppendUvarint(rec, q.gets)
		rec = binary.AppendVarint(rec, q.depthHighWater)
		rec = binary.AppendUvarint(rec, q.overflow)
		rec = binary.AppendUvarint(rec, q.dead)
		if version >= snapCounters {
			rec = binary.AppendUvarint(rec, q.acks)
			rec = binary.AppendUvarint(rec, q.nacks)
			rec = binary.AppendUvarint(rec, q.expired)
			rec = binary.AppendUvarint(rec, q.redelivered)
		}
		sw.rec = rec
		sw.record(recQueue, rec)
		sw.counts[0]++
		run := readyRun{sw: sw}
		q.ready.Each(func(it item) bool {
			if !sw.inline && run.add(it) {
				return sw.err == nil
			}
			run.flush()
			sw.rec = sw.appendItem(sw.rec[:0], it)
			sw.record(recReady, sw.rec)
			sw.counts[1]++
			return sw.err == nil
		})
		run.flush()
		q.deferred.Ascend(func(d deferredItem) bool {
			rec := binary.AppendVarint(sw.rec[:0], d.at)
			sw.rec = sw.appendItem(rec, d.it)
			sw.record(recDeferred, sw.rec)
			sw.counts[1]++
			return sw.err == nil
		})
	}
	fr.inflight.Ascend(func(l lease) bool {
		rec := appendString(sw.rec[:0], l.queue)
		rec = binary.AppendVarint(rec, l.deadline)
		sw.rec = sw.appendItem(rec, l.it)
		if l.handover {
			// A trailing flag: readers that predate handovers ignore the
			// rest of a record, and take it for an ordinary lease.
			sw.rec = append(sw.rec, 1)
		}
		sw.record(recLease, sw.rec)
		sw.counts[2]++
		return sw.err == nil
	})
	fr.dedupOrder.Each(func(ref dedupRef) bool {
		d, ok := fr.dedup.Get(dedupEntry{key: ref.key})
		if !ok || d.expires != ref.expires {
			return true
		}
		rec := appendString(sw.rec[:0], d.key)
		rec = binary.AppendVarint(rec, d.expires)
		sw.rec = appendIDs(rec, d.ids)
		sw.record(recDedup, sw.rec)
		sw.counts[3]++
		return sw.err == nil
	})
	var end []byte
	for _, c := range sw.counts {
		end = binary.AppendUvarint(end, c)
	}
	sw.record(recEnd, end)
	if sw.err != nil {
		return fmt.Errorf("write snapshot: %w", sw.err)
	}
	if withSegments {
		if _, err := fr.pin.WriteTo(sw.w); err != nil {
			return fmt.Errorf("write snapshot: %w", err)
		}
	}
	if err := sw.w.Flush(); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

// snapHeader is what a snapshot's header says.
type snapHeader struct {
	version       byte
	flags         byte
	storeID       string
	segs          []bodystore.Segment
	now           int64
	index, nextID uint64
	// raw is the version 3 or 4 header as read, after magic, version and
	// flags.
	raw []byte
}

// inline reports whether the snapshot's bodies are inline.
func (h snapHeader) inline() bool { return h.version <= snapInline || h.flags&flagInline != 0 }

func readSnapHeader(br *bufio.Reader) (snapHeader, error) {
	var h snapHeader
	magic := make([]byte, len(snapMagic)+1)
	if _, err := io.ReadFull(br, magic); err != nil {
		return h, fmt.Errorf("%w: snapshot header: %v", ErrCorrupt, err)
	}
	if string(magic[:len(snapMagic)]) != snapMagic {
		return h, fmt.Errorf("%w: not a quorumq snapshot", ErrCorrupt)
	}
	h.version = magic[len(snapMagic)]
	if h.version > snapCounters {
		return h, fmt.Errorf("%w: snapshot version %d", ErrNewerVersion, h.version)
	}
	var err error
	if h.version <= snapInline {
		if h.now, err = binary.ReadVarint(br); err == nil {
			if h.index, err = binary.ReadUvarint(br); err == nil {
				h.nextID, err = binary.ReadUvarint(br)
			}
		}
		if err != nil {
			return h, fmt.Errorf("%w: snapshot header: %v", ErrCorrupt, err)
		}
		return h, nil
	}
	if h.flags, err = br.ReadByte(); err != nil {
		return h, fmt.Errorf("%w: snapshot header: %v", ErrCorrupt, err)
	}
	n, err := binary.ReadUvarint(br)
	if err != nil || n > maxSnapHeader {
		return h, fmt.Errorf("%w: snapshot header length", ErrCorrupt)
	}
	h.raw = make([]byte, n)
	if _, err := io.ReadFull(br, h.raw); err != nil {
		return h, fmt.Errorf("%w: snapshot header: %v", ErrCorrupt, err)
	}
	d := decoder{buf: h.raw}
	h.storeID = d.string()
	nsegs := d.count(2)
	prev := int64(-1)
	for i := 0; i < nsegs && d.err == nil; i++ {
		sg := bodystore.Segment{Seq: uint32(d.uvarint()), Len: int64(d.uvarint())}
		if int64(sg.Seq) <= prev || sg.Len < 0 {
			d.fail("snapshot segments")
		}
		prev = int64(sg.Seq)
		h.segs = append(h.segs, sg)
	}
	h.now, h.index, h.nextID = d.varint(), d.uvarint(), d.uvarint()
	return h, d.err
}

// takeUp is how a snapshot's bodies become the store's: appended one by
// one (inline), the store's own segments cut back (in place), or the
// segments the snapshot carries (staged).
type takeUp struct {
	bodies  *bodystore.Store
	stage   *bodystore.Staging
	inPlace bool
	segs    []bodystore.Segment
	live    map[uint32]bodystore.Live
}

// commit makes the taken-up bodies the store's. The caller holds the FSM
// lock.
func (t *takeUp) commit() error {
	if t.inPlace {
		return t.bodies.Reconcile(t.segs, t.live)
	}
	if t.segs == nil {
		return t.stage.Adopt(nil)
	}
	return t.stage.Adopt(t.live)
}

func (t *takeUp) kind() RestoreKind {
	switch {
	case t.inPlace:
		return RestoredInPlace
	case t.segs == nil:
		return RestoredInline
	}
	return RestoredSegments
}

func (t *takeUp) abort() {
	if t.stage != nil {
		t.stage.Abort()
	}
}

// readSnapshot builds a fresh state from a snapshot stream. Nothing of
// the live state or store changes until the caller commits.
func readSnapshot(r io.Reader, bodies *bodystore.Store) (*state, *takeUp, error) {
	br := bufio.NewReaderSize(r, snapBufferSize)
	h, err := readSnapHeader(br)
	if err != nil {
		return nil, nil, err
	}
	t := &takeUp{bodies: bodies, live: map[uint32]bodystore.Live{}}
	known := map[uint32]bool{}
	if !h.inline() {
		switch inPlace := bodies.CanReconcile(h.storeID, h.segs); {
		case inPlace == nil:
			t.inPlace, t.segs = true, h.segs
		case h.flags&flagSegments != 0:
			t.segs = h.segs
			if t.segs == nil {
				t.segs = []bodystore.Segment{}
			}
		default:
			return nil, nil, fmt.Errorf("snapshot of body store %s: %w", h.storeID, inPlace)
		}
	}
	for _, sg := range h.segs {
		known[sg.Seq] = true
	}
	if !t.inPlace {
		if t.stage, err = bodies.Stage(); err != nil {
			return nil, nil, err
		}
	}
	s, err := readRecords(br, h, t, known)
	if err == nil && t.stage != nil && !h.inline() {
		err = t.stage.ReadSegments(h.segs, br)
	}
	if err != nil {
		t.abort()
		return nil, nil, err
	}
	return s, t, nil
}

func readRecords(br *bufio.Reader, h snapHeader, t *takeUp, known map[uint32]bool) (*state, error) {
	s := newState(t.bodies)
	s.now, s.index, s.nextID = h.now, h.index, h.nextID
	refs := !h.inline()
	var (
		cur    *queue
		counts [4]uint64
		buf    []byte
	)
	readItem := func(d *decoder) item {
		it := item{id: d.uvarint(), attempts: uint32(d.uvarint()) &^ infoFlag}
		if refs {
			it.loc, it.size = bodystore.Loc(d.uvarint()), uint32(d.uvarint())
			if d.err == nil && !known[it.loc.Seq()] {
				d.fail("message body in a segment the snapshot does not name")
			}
			l := t.live[it.loc.Seq()]
			l.Add(it.size)
			t.live[it.loc.Seq()] = l
		} else {
			body := d.raw()
			if d.err == nil {
				loc, err := t.stage.Append(it.id, body)
				if err != nil && d.err == nil {
					d.err = err
				}
				it.loc, it.size = loc, uint32(len(body))
			}
		}
		if d.byte() == 1 {
			s.setInfo(&it, itemInfo{lastError: d.string(), deadFrom: d.string()})
		}
		return it
	}
	for {
		typ, err := br.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("%w: snapshot ends without trailer", ErrCorrupt)
		}
		n, err := binary.ReadUvarint(br)
		if err != nil || n > 1<<31 {
			return nil, fmt.Errorf("%w: snapshot record length", ErrCorrupt)
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, fmt.Errorf("%w: snapshot record: %v", ErrCorrupt, err)
		}
		d := decoder{buf: buf}
		switch typ {
		case recQueue:
			cur = newQueue(d.string())
			cur.cfg = d.config()
			cur.puts, cur.gets = d.uvarint(), d.uvarint()
			cur.depthHighWater = d.varint()
			cur.overflow, cur.dead = d.uvarint(), d.uvarint()
			if h.version >= snapCounters {
				cur.acks, cur.nacks = d.uvarint(), d.uvarint()
				cur.expired, cur.redelivered = d.uvarint(), d.uvarint()
			}
			if d.err == nil && (!api.ValidName(cur.name) || s.queues[cur.name] != nil) {
				d.fail("queue name")
			}
			s.queues[cur.name] = cur
			counts[0]++
		case recReady, recDeferred:
			if cur == nil {
				d.fail("message outside a queue")
				break
			}
			var at int64
			if typ == recDeferred {
				at = d.varint()
			}
			it := readItem(&d)
			cur.bytes += int64(it.size)
			if typ == recReady {
				cur.ready.PushBack(it)
			} else {
				cur.deferred.ReplaceOrInsert(deferredItem{at: at, it: it})
			}
			counts[1]++
		case recReadyRun:
			if cur == nil || !refs {
				d.fail("message run outside a queue, or in an inline snapshot")
				break
			}
			id, loc, n := d.uvarint(), bodystore.Loc(d.uvarint()), d.uvarint()
			seq := loc.Seq()
			if d.err == nil && (n == 0 || n > maxRun || !known[seq]) {
				d.fail("message run")
			}
			live := t.live[seq]
			for i := uint64(0); i < n && d.err == nil; i++ {
				size := uint32(d.uvarint())
				cur.ready.PushBack(item{id: id + i, loc: loc, size: size})
				cur.bytes += int64(size)
				live.Add(size)
				loc += bodystore.Loc(bodystore.RecordOverhead) + bodystore.Loc(size)
			}
			if d.err == nil && loc.Seq() != seq {
				d.fail("message run crosses a segment")
			}
			t.live[seq] = live
			counts[1] += n
		case recLease:
			l := lease{queue: d.string(), deadline: d.varint()}
			l.it = readItem(&d)
			l.id = l.it.id
			if len(d.buf) > 0 {
				l.handover = d.byte() == 1
			}
			q := s.queues[l.queue]
			if d.err == nil && q == nil {
				d.fail("lease of an unknown queue")
			}
			if d.err == nil {
				s.inflight.ReplaceOrInsert(l)
				q.byDeadline.ReplaceOrInsert(timedRef{at: l.deadline, id: l.id})
				if !l.handover {
					q.inflightN++
					q.bytes += int64(l.it.size)
				}
			}
			counts[2]++
		case recMarks:
			n := d.count(3)
			if d.err == nil && (n > maxMarks || s.marks != nil) {
				d.fail("put-time marks")
			}
			for i := 0; i < n && d.err == nil; i++ {
				m := putMark{id: d.uvarint(), at: d.varint(), n: int64(d.uvarint())}
				if k := len(s.marks); k > 0 && m.id <= s.marks[k-1].id {
					d.fail("put-time marks out of order")
				}
				s.marks = append(s.marks, m)
			}
		case recDedup:
			e := dedupEntry{key: d.string(), expires: d.varint(), ids: d.ids()}
			s.dedup.ReplaceOrInsert(e)
			s.dedupOrder.PushBack(dedupRef{key: e.key, expires: e.expires})
			counts[3]++
		case recEnd:
			for i := range counts {
				if c := d.uvarint(); d.err == nil && c != counts[i] {
					return nil, fmt.Errorf("%w: snapshot record counts differ from trailer", ErrCorrupt)
				}
			}
			if d.err != nil {
				return nil, d.err
			}
			return s, nil
		default:
			// A record type from a newer minor format: skip it.
			continue
		}
		if d.err != nil {
			return nil, d.err
		}
	}
}

// OpenSnapshot turns a stored snapshot into one any node can take up: a
// version 3 snapshot that refers to this node's segments gets their bytes
// after its trailer, read from the body store; any other passes through
// unchanged. It returns the stream and the bytes it adds to the stored
// size. At restart this node's own Restore stops reading before them.
func (f *FSM) OpenSnapshot(stored io.ReadCloser) (io.ReadCloser, int64, error) {
	br := bufio.NewReaderSize(stored, snapBufferSize)
	head, err := br.Peek(len(snapMagic) + 2)
	if err != nil || string(head[:len(snapMagic)]) != snapMagic ||
		(head[len(snapMagic)] != snapRefs && head[len(snapMagic)] != snapCounters) ||
		head[len(snapMagic)+1]&(flagSegments|flagInline) != 0 {
		return readCloser{br, stored}, 0, nil
	}
	h, err := readSnapHeader(br)
	if err != nil {
		return nil, 0, err
	}
	segs, err := f.bodies.OpenSegments(h.storeID, h.segs)
	if err != nil {
		return nil, 0, fmt.Errorf("open snapshot: %w", err)
	}
	prefix := append([]byte(snapMagic), h.version, h.flags|flagSegments)
	prefix = binary.AppendUvarint(prefix, uint64(len(h.raw)))
	prefix = append(prefix, h.raw...)
	return multiCloser{io.MultiReader(bytes.NewReader(prefix), br, segs), []io.Closer{stored, segs}},
		bodystore.TotalLen(h.segs), nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

type multiCloser struct {
	io.Reader
	closers []io.Closer
}

func (m multiCloser) Close() error {
	var first error
	for _, c := range m.closers {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
