package fsm

import (
	"encoding/binary"
	"fmt"
	"time"
)

// The log encoding is a compact, hand-rolled binary format: one version byte,
// the leader time, then the commands, each an op byte followed by the fields
// that op uses. Integers are varints and byte strings are length-prefixed.
// It is stable (no Go struct layout leaks into it) and costs one pass to
// decode; message bodies are copied out so that retained messages never pin a
// whole log entry in memory.

// opGetCapped is the log's op byte for an OpGet that sets MaxBytes,
// MaxIDBytes or Handover: OpGet's fields, then those three. A new value
// rather than new fields after op 2, so that every entry written before
// them keeps its meaning. Never renumber it.
const opGetCapped Op = 9

// EncodeEntry appends the encoding of e to buf and returns the result.
func EncodeEntry(buf []byte, e *Entry) []byte {
	buf = append(buf, entryVersion(e))
	buf = binary.AppendVarint(buf, e.Now)
	buf = binary.AppendUvarint(buf, uint64(len(e.Commands)))
	for i := range e.Commands {
		buf = appendCommand(buf, &e.Commands[i])
	}
	return buf
}

// EncodedSize is an upper bound on the encoded size of c, for batching
// decisions: 64 bytes cover the fixed fields of any op, and every variable
// field is counted with a 10-byte length prefix.
func EncodedSize(c *Command) int {
	n := 64 + len(c.Queue) + len(c.To) + len(c.ReqID) + len(c.Data) + len(c.Reason) + len(c.Config.DeadLetter) + 10*len(c.IDs)
	for _, m := range c.Messages {
		n += len(m) + 10
	}
	return n
}

// entryVersion is the oldest format that can carry e (see Version).
func entryVersion(e *Entry) byte {
	v := byte(version1)
	for i := range e.Commands {
		switch op := wireOp(&e.Commands[i]); {
		case op >= OpPurge:
			return Version
		case op > OpTick:
			v = version2
		}
	}
	return v
}

// wireOp is the op byte written for c.
func wireOp(c *Command) Op {
	if c.Op == OpGet && (c.MaxBytes != 0 || c.MaxIDBytes != 0 || c.Handover != 0) {
		return opGetCapped
	}
	return c.Op
}

func appendCommand(buf []byte, c *Command) []byte {
	op := wireOp(c)
	buf = append(buf, byte(op))
	buf = appendString(buf, c.Queue)
	if op == opGetCapped {
		buf = binary.AppendUvarint(buf, uint64(c.Max))
		buf = binary.AppendVarint(buf, int64(c.Lease))
		buf = binary.AppendVarint(buf, c.MaxBytes)
		buf = binary.AppendVarint(buf, int64(c.MaxIDBytes))
		return binary.AppendVarint(buf, int64(c.Handover))
	}
	switch c.Op {
	case OpPut:
		buf = binary.AppendUvarint(buf, uint64(len(c.Messages)))
		for _, m := range c.Messages {
			buf = appendBytes(buf, m)
		}
		buf = binary.AppendVarint(buf, int64(c.Delay))
		buf = appendString(buf, c.ReqID)
		buf = appendLimits(buf, c.Limits)
	case OpGet:
		buf = binary.AppendUvarint(buf, uint64(c.Max))
		buf = binary.AppendVarint(buf, int64(c.Lease))
	case OpAck, OpHandoverAck, OpHandoverNack:
		buf = appendIDs(buf, c.IDs)
	case OpNack:
		buf = appendIDs(buf, c.IDs)
		buf = binary.AppendVarint(buf, int64(c.Delay))
		if c.HasData {
			buf = append(buf, 1)
			buf = appendBytes(buf, c.Data)
		} else {
			buf = append(buf, 0)
		}
		buf = appendString(buf, c.Reason)
	case OpTouch:
		buf = appendIDs(buf, c.IDs)
		buf = binary.AppendVarint(buf, int64(c.Lease))
	case OpConfigure:
		buf = appendConfig(buf, c.Config)
		buf = append(buf, byte(c.ConfigFields))
	case OpPurge:
		buf = binary.AppendVarint(buf, int64(c.Max))
	case OpRedrive:
		buf = appendString(buf, c.To)
		buf = binary.AppendVarint(buf, int64(c.Max))
		buf = binary.AppendVarint(buf, int64(c.Skip))
	case OpResetStats, OpTick:
	}
	return buf
}

func appendConfig(buf []byte, cfg QueueConfig) []byte {
	buf = binary.AppendVarint(buf, int64(cfg.DefaultLease))
	buf = binary.AppendUvarint(buf, uint64(cfg.MaxAttempts))
	buf = appendString(buf, cfg.DeadLetter)
	return appendLimits(buf, cfg.Limits)
}

func appendLimits(buf []byte, l Limits) []byte {
	buf = binary.AppendVarint(buf, l.MaxDepth)
	buf = binary.AppendVarint(buf, l.MaxBytes)
	return append(buf, byte(l.Policy))
}

func appendIDs(buf []byte, ids []uint64) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(ids)))
	for _, id := range ids {
		buf = binary.AppendUvarint(buf, id)
	}
	return buf
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func appendBytes(buf, b []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(b)))
	return append(buf, b...)
}

// DecodeEntry decodes one log entry. Message bodies are copies.
func DecodeEntry(data []byte) (Entry, error) { return decodeEntry(data, false) }

// decodeEntry decodes data; with alias, message bodies and nack data share
// data's memory instead of being copied: Apply's way, since the state
// copies every body it keeps into the body store and the log entry does
// not change.
func decodeEntry(data []byte, alias bool) (Entry, error) {
	var e Entry
	d := decoder{buf: data, alias: alias}
	v := d.byte()
	if d.err == nil && v > Version {
		return e, fmt.Errorf("%w: entry version %d, this binary reads up to %d", ErrNewerVersion, v, Version)
	}
	if d.err == nil && v == 0 {
		return e, fmt.Errorf("%w: entry version 0", ErrCorrupt)
	}
	e.Now = d.varint()
	n := d.count(2)
	if d.err != nil {
		return e, d.err
	}
	e.Commands = make([]Command, n)
	for i := range e.Commands {
		d.left = n - i
		d.command(&e.Commands[i])
	}
	d.arena = nil
	if d.err == nil && len(d.buf) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.buf))
	}
	return e, d.err
}

// decoder reads the format written above; the first failure sticks in err and
// every later read returns zero values, so callers check once at the end.
type decoder struct {
	buf []byte
	err error
	// queue is the last queue name decoded: the commands of one entry
	// usually name the same queue, and share one string.
	queue string
	// arena backs the Messages slices of an entry's commands, so that a
	// batch of single-message puts costs one allocation for all of them.
	// Only the slice headers live there; bodies are copied one by one.
	arena [][]byte
	left  int // commands left to decode, including the current one
	// alias: bytes() returns slices of buf rather than copies.
	alias bool
}

// arenaChunk is how many message slots the decoder allocates at once.
const arenaChunk = 64

// messages returns a slice of n message slots, capped at n.
func (d *decoder) messages(n int) [][]byte {
	if n > arenaChunk/2 {
		return make([][]byte, n)
	}
	if len(d.arena) < n {
		// Room for this command and, if the rest are like it, the next
		// ones: entries of single-message puts get one allocation.
		d.arena = make([][]byte, min(max(n*d.left, n), arenaChunk))
	}
	m := d.arena[:n:n]
	d.arena = d.arena[n:]
	return m
}

// queueName decodes a queue name, reusing the previous one when equal.
func (d *decoder) queueName() string {
	b := d.raw()
	if string(b) == d.queue { // compared without allocating
		return d.queue
	}
	d.queue = string(b)
	return d.queue
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: short or malformed %s", ErrCorrupt, what)
	}
	d.buf = nil
}

func (d *decoder) byte() byte {
	if len(d.buf) < 1 {
		d.fail("byte")
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// count reads a length and checks that at least min bytes per element remain,
// so a corrupt length cannot make us allocate a huge slice.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.buf)/min)+1 {
		d.fail("count")
		return 0
	}
	return int(n)
}

func (d *decoder) raw() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)) {
		d.fail("byte string")
		return nil
	}
	b := d.buf[:n]
	d.buf = d.buf[n:]
	return b
}

func (d *decoder) bytes() []byte {
	b := d.raw()
	if b == nil || d.alias {
		return b
	}
	out := make([]byte, len(b))
	copy(out, b)
	return out
}

func (d *decoder) string() string { return string(d.raw()) }

// intValue reads a varint that must fit an int32 (what the state
// checks, not the decoder, refuses negative ones).
func (d *decoder) intValue() int {
	v := d.varint()
	if v > 1<<31-1 || v < -1<<31 {
		d.fail("int")
		return 0
	}
	return int(v)
}

func (d *decoder) ids() []uint64 {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = d.uvarint()
	}
	return ids
}

func (d *decoder) limits() Limits {
	return Limits{MaxDepth: d.varint(), MaxBytes: d.varint(), Policy: OverflowPolicy(d.byte())}
}

func (d *decoder) config() QueueConfig {
	return QueueConfig{
		DefaultLease: time.Duration(d.varint()),
		MaxAttempts:  uint32(d.uvarint()),
		DeadLetter:   d.string(),
		Limits:       d.limits(),
	}
}

func (d *decoder) command(c *Command) {
	c.Op = Op(d.byte())
	c.Queue = d.queueName()
	switch c.Op {
	case OpPut:
		n := d.count(1)
		if n > 0 {
			c.Messages = d.messages(n)
			for i := range c.Messages {
				c.Messages[i] = d.bytes()
			}
		}
		c.Delay = time.Duration(d.varint())
		c.ReqID = d.string()
		c.Limits = d.limits()
	case OpGet:
		c.Max = int(d.uvarint())
		c.Lease = time.Duration(d.varint())
	case opGetCapped:
		c.Op = OpGet
		c.Max = int(d.uvarint())
		c.Lease = time.Duration(d.varint())
		c.MaxBytes = d.varint()
		c.MaxIDBytes = int(d.varint())
		c.Handover = time.Duration(d.varint())
	case OpAck, OpHandoverAck, OpHandoverNack:
		c.IDs = d.ids()
	case OpNack:
		c.IDs = d.ids()
		c.Delay = time.Duration(d.varint())
		if d.byte() == 1 {
			c.HasData = true
			c.Data = d.bytes()
			if c.Data == nil {
				c.Data = []byte{}
			}
		}
		c.Reason = d.string()
	case OpTouch:
		c.IDs = d.ids()
		c.Lease = time.Duration(d.varint())
	case OpConfigure:
		c.Config = d.config()
		c.ConfigFields = ConfigField(d.byte())
	case OpPurge:
		c.Max = d.intValue()
	case OpRedrive:
		c.To = d.string()
		c.Max = d.intValue()
		c.Skip = d.intValue()
	case OpResetStats, OpTick:
	default:
		if d.err == nil {
			d.err = fmt.Errorf("%w: unknown op %d", ErrCorrupt, c.Op)
		}
	}
}
