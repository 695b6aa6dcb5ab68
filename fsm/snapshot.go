package fsm

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/google/btree"

	"github.com/quorumq/quorumq/api"
)

// Snapshot format: a fixed header, then framed records, then a trailer.
//
//	header  = magic "QQSNAP" version(1 byte) now(varint) index(uvarint) nextID(uvarint)
//	record  = type(1 byte) length(uvarint) payload
//	trailer = a record of type recEnd whose payload holds the record counts
//
// A lease record of a handover (Command.Handover) ends with one more byte,
// 1; readers that predate handovers ignore it.
//
// Ready and deferred records belong to the queue record before them. The
// length prefix lets a later reader skip record types it does not know; the
// trailer catches a truncated stream.
const snapMagic = "QQSNAP"

const (
	recQueue    byte = 1
	recReady    byte = 2
	recDeferred byte = 3
	recLease    byte = 4
	recDedup    byte = 5
	recEnd      byte = 0xFF
)

const snapBufferSize = 256 << 10

// frozenState is an immutable copy-on-write view of a state: taking it costs
// O(queues + chunks) under the FSM lock; writing it needs no lock.
type frozenState struct {
	now           int64
	index, nextID uint64
	queues        []frozenQueue
	inflight      *btree.BTreeG[lease]
	dedup         *btree.BTreeG[dedupEntry]
	dedupOrder    dequeView[dedupRef]
}

type frozenQueue struct {
	name           string
	cfg            QueueConfig
	puts, gets     uint64
	depthHighWater int64
	overflow, dead uint64
	ready          dequeView[item]
	deferred       *btree.BTreeG[deferredItem]
}

func (s *state) freeze() *frozenState {
	fr := &frozenState{
		now:        s.now,
		index:      s.index,
		nextID:     s.nextID,
		inflight:   s.inflight.Clone(),
		dedup:      s.dedup.Clone(),
		dedupOrder: s.dedupOrder.View(),
	}
	for _, name := range s.queueNames() {
		q := s.queues[name]
		fr.queues = append(fr.queues, frozenQueue{
			name: q.name, cfg: q.cfg,
			puts: q.puts, gets: q.gets, depthHighWater: q.depthHighWater,
			overflow: q.overflow, dead: q.dead,
			ready:    q.ready.View(),
			deferred: q.deferred.Clone(),
		})
	}
	return fr
}

type snapWriter struct {
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

func appendItem(buf []byte, it item) []byte {
	buf = binary.AppendUvarint(buf, it.id)
	buf = binary.AppendUvarint(buf, uint64(it.attempts))
	buf = appendBytes(buf, it.data)
	if it.info == nil {
		return append(buf, 0)
	}
	buf = append(buf, 1)
	buf = appendString(buf, it.info.lastError)
	return appendString(buf, it.info.deadFrom)
}

func (fr *frozenState) write(w io.Writer) error {
	sw := &snapWriter{w: bufio.NewWriterSize(w, snapBufferSize)}
	hdr := append([]byte(snapMagic), Version)
	hdr = binary.AppendVarint(hdr, fr.now)
	hdr = binary.AppendUvarint(hdr, fr.index)
	hdr = binary.AppendUvarint(hdr, fr.nextID)
	if _, err := sw.w.Write(hdr); err != nil {
		return err
	}
	for _, q := range fr.queues {
		rec := appendString(sw.rec[:0], q.name)
		rec = appendConfig(rec, q.cfg)
		rec = binary.AppendUvarint(rec, q.puts)
		rec = binary.AppendUvarint(rec, q.gets)
		rec = binary.AppendVarint(rec, q.depthHighWater)
		rec = binary.AppendUvarint(rec, q.overflow)
		rec = binary.AppendUvarint(rec, q.dead)
		sw.record(recQueue, rec)
		sw.counts[0]++
		q.ready.Each(func(it item) bool {
			sw.rec = appendItem(sw.rec[:0], it)
			sw.record(recReady, sw.rec)
			sw.counts[1]++
			return sw.err == nil
		})
		q.deferred.Ascend(func(d deferredItem) bool {
			rec := binary.AppendVarint(sw.rec[:0], d.at)
			sw.rec = appendItem(rec, d.it)
			sw.record(recDeferred, sw.rec)
			sw.counts[1]++
			return sw.err == nil
		})
	}
	fr.inflight.Ascend(func(l lease) bool {
		rec := appendString(sw.rec[:0], l.queue)
		rec = binary.AppendVarint(rec, l.deadline)
		sw.rec = appendItem(rec, l.it)
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
	if err := sw.w.Flush(); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

// readSnapshot builds a fresh state from a snapshot stream.
func readSnapshot(r io.Reader) (*state, error) {
	br := bufio.NewReaderSize(r, snapBufferSize)
	magic := make([]byte, len(snapMagic)+1)
	if _, err := io.ReadFull(br, magic); err != nil {
		return nil, fmt.Errorf("%w: snapshot header: %v", ErrCorrupt, err)
	}
	if string(magic[:len(snapMagic)]) != snapMagic {
		return nil, fmt.Errorf("%w: not a quorumq snapshot", ErrCorrupt)
	}
	if v := magic[len(snapMagic)]; v > Version {
		return nil, fmt.Errorf("%w: snapshot version %d", ErrNewerVersion, v)
	}
	s := newState()
	var err error
	if s.now, err = binary.ReadVarint(br); err == nil {
		if s.index, err = binary.ReadUvarint(br); err == nil {
			s.nextID, err = binary.ReadUvarint(br)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: snapshot header: %v", ErrCorrupt, err)
	}
	var (
		cur    *queue
		counts [4]uint64
		buf    []byte
	)
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
			it := d.item()
			cur.bytes += int64(len(it.data))
			if typ == recReady {
				cur.ready.PushBack(it)
			} else {
				cur.deferred.ReplaceOrInsert(deferredItem{at: at, it: it})
			}
			counts[1]++
		case recLease:
			l := lease{queue: d.string(), deadline: d.varint()}
			l.it = d.item()
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
					q.bytes += int64(len(l.it.data))
				}
			}
			counts[2]++
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

func (d *decoder) item() item {
	it := item{id: d.uvarint(), attempts: uint32(d.uvarint()), data: d.bytes()}
	if it.data == nil {
		it.data = []byte{}
	}
	if d.byte() == 1 {
		it.info = &itemInfo{lastError: d.string(), deadFrom: d.string()}
	}
	return it
}
