package subscriberset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
)

// entry is one node's subscriber set as gossiped: topic → number of
// subscribers connected to that node, and the version that orders the
// node's successive sets. Only the node itself writes its entry, so the
// highest version is the newest set and there is nothing to reconcile.
//
// A thin entry (Full false) carries the node and version only: it says "a
// newer set exists" when the set is too large for a gossip packet, and the
// receiver fetches the set from the node over HTTP (GET /internal/subs).
//
// Wire format, version 1:
//
//	byte     format (entryFormat)
//	byte     flags: flagFull
//	uvarint  length of the node id, then the id
//	8 bytes  version (big endian)
//	if full: uvarint topic count, then per topic in byte order:
//	         uvarint length, name, uvarint subscriber count (> 0)
//
// A decoder accepts a newer format byte and ignores bytes after the fields
// it knows: new fields are appended, never inserted.
type entry struct {
	Node    string
	Version uint64
	Full    bool
	Topics  map[string]int
}

const (
	entryFormat = 1
	flagFull    = 1 << 0

	// maxName bounds a node id or topic name in an entry (ids are at
	// most 128 bytes, topic names 64; anything longer is not ours).
	maxName = 255
)

var errBadEntry = errors.New("bad subscriber-set entry")

// encode appends the wire form of e to b.
func (e *entry) encode(b []byte) []byte {
	var flags byte
	if e.Full {
		flags |= flagFull
	}
	b = append(b, entryFormat, flags)
	b = binary.AppendUvarint(b, uint64(len(e.Node)))
	b = append(b, e.Node...)
	b = binary.BigEndian.AppendUint64(b, e.Version)
	if !e.Full {
		return b
	}
	b = binary.AppendUvarint(b, uint64(len(e.Topics)))
	for _, t := range slices.Sorted(maps.Keys(e.Topics)) {
		b = binary.AppendUvarint(b, uint64(len(t)))
		b = append(b, t...)
		b = binary.AppendUvarint(b, uint64(e.Topics[t]))
	}
	return b
}

// thin returns e without its topics.
func (e entry) thin() entry {
	return entry{Node: e.Node, Version: e.Version}
}

// decodeEntry parses one entry. Bytes after the fields it knows are
// ignored (a newer format may append some).
func decodeEntry(b []byte) (e entry, err error) {
	d := entryDecoder{b: b}
	format := d.byte()
	flags := d.byte()
	if d.err == nil && format < entryFormat {
		return e, fmt.Errorf("%w: format %d", errBadEntry, format)
	}
	e.Node = d.name()
	e.Version = d.uint64()
	e.Full = flags&flagFull != 0
	if d.err == nil && e.Node == "" {
		return e, fmt.Errorf("%w: empty node id", errBadEntry)
	}
	if e.Full && d.err == nil {
		n := d.uvarint()
		// Each topic takes at least three bytes: a bound on what a
		// malformed count can make us allocate.
		if d.err == nil && n > uint64(len(d.b))/3 {
			return e, fmt.Errorf("%w: %d topics in %d bytes", errBadEntry, n, len(d.b))
		}
		e.Topics = make(map[string]int, n)
		for range n {
			t := d.name()
			c := d.uvarint()
			if d.err != nil {
				break
			}
			if t == "" || c == 0 || c > 1<<31 {
				return e, fmt.Errorf("%w: topic %q with %d subscribers", errBadEntry, t, c)
			}
			if _, dup := e.Topics[t]; dup {
				return e, fmt.Errorf("%w: topic %q twice", errBadEntry, t)
			}
			e.Topics[t] = int(c)
		}
	}
	if d.err != nil {
		return entry{}, d.err
	}
	return e, nil
}

// entryDecoder reads the fields of an entry; the first error sticks.
type entryDecoder struct {
	b   []byte
	err error
}

func (d *entryDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated %s", errBadEntry, what)
	}
	d.b = nil
}

func (d *entryDecoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail("header")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *entryDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.fail("number")
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *entryDecoder) uint64() uint64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail("version")
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *entryDecoder) name() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > maxName || n > uint64(len(d.b)) {
		d.fail("name")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// encodeState is the channel's push/pull state: uvarint entry count,
// then each entry as uvarint length + entry.
func encodeState(entries []entry) []byte {
	b := binary.AppendUvarint(nil, uint64(len(entries)))
	var scratch []byte
	for i := range entries {
		scratch = entries[i].encode(scratch[:0])
		b = binary.AppendUvarint(b, uint64(len(scratch)))
		b = append(b, scratch...)
	}
	return b
}

// decodeState parses encodeState's output. Entries that do not
// decode are skipped (a newer peer may send what we cannot read); a
// broken frame ends the list with an error, keeping what came before.
func decodeState(b []byte) ([]entry, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, fmt.Errorf("%w: truncated state", errBadEntry)
	}
	b = b[k:]
	var out []entry
	var errs []error
	for range n {
		size, k := binary.Uvarint(b)
		if k <= 0 || size > uint64(len(b)-k) {
			errs = append(errs, fmt.Errorf("%w: truncated state frame", errBadEntry))
			break
		}
		e, err := decodeEntry(b[k : k+int(size)])
		b = b[k+int(size):]
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, e)
	}
	return out, errors.Join(errs...)
}

// digest is a short hash of a topic set (topics and counts), carried
// in NodeMeta next to the version.
func digest(topics map[string]int) [8]byte {
	h := fnv.New64a()
	var buf []byte
	for _, t := range slices.Sorted(maps.Keys(topics)) {
		buf = append(buf[:0], t...)
		buf = append(buf, 0)
		buf = strconv.AppendInt(buf, int64(topics[t]), 10)
		buf = append(buf, 0)
		h.Write(buf)
	}
	var d [8]byte
	binary.BigEndian.PutUint64(d[:], h.Sum64())
	return d
}
