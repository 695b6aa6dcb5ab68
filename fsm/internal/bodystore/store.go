// Package bodystore keeps the bodies of queued messages in append-only
// segment files, so that the state machine holds only a small index entry
// per message in memory.
//
// It is not a source of durability: the raft log is. A body is appended
// when its entry is applied, without fsync; a snapshot pins the segments it
// refers to and syncs them before raft may compact the log behind it. After
// a crash the store is cut back to what the newest snapshot recorded and the
// log replays the rest, writing the same bodies again.
//
// Records never move: a body's location is fixed for its life. A segment is
// deleted once no message lives in it and no retained snapshot or reader
// pins it. Reads go through a bounded cache of whole blocks, so a queue
// read in order costs one disk read per block.
package bodystore

import (
	"bytes"
	"cmp"
	"container/list"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/quorumq/quorumq/internal/crashpoint"
)

// Options configure a Store. Zero fields take the defaults below; Dir ""
// keeps everything in memory (tests, tools, and nodes without a data
// directory).
type Options struct {
	// Dir holds the segment files. Empty: in memory.
	Dir string
	// SegmentSize is where a segment is sealed and a new one begun.
	// Default 64 MiB on disk, 1 MiB in memory (a segment is also the unit
	// memory is given back in).
	SegmentSize int64
	// BlockSize is the unit of reads and of the cache. Default 1 MiB on
	// disk, 64 KiB in memory.
	BlockSize int
	// CacheBytes bounds the blocks kept in memory for reading (disk only;
	// a store in memory keeps every block it needs). Default 64 MiB.
	CacheBytes int64
	// Retain is how many persisted snapshots keep their segments pinned:
	// the snapshot store's retention. Default 2.
	Retain int
}

// Defaults.
const (
	DefaultSegmentSize   = 64 << 20
	DefaultBlockSize     = 1 << 20
	DefaultCacheBytes    = 64 << 20
	DefaultRetain        = 2
	memSegmentSize       = 1 << 20
	memBlockSize         = 64 << 10
	maxSegmentSize       = 1 << 30
	minBlockSize         = 512
	recordHeader         = 16 // crc32c, body length, message id
	storeIDFile          = "store-id"
	segmentSuffix        = ".seg"
	stagingSuffix        = ".restore"
	oldSuffix            = ".old"
	segmentNameHexDigits = 8
)

// RecordOverhead is the bytes a body takes on disk beyond itself.
const RecordOverhead = recordHeader

var (
	// ErrCorrupt: a record does not match its checksum or the id it was
	// stored for, or a segment is shorter than a snapshot says.
	ErrCorrupt = errors.New("body store corrupt")
	// ErrMismatch: a snapshot refers to segments of another store, or this
	// store has changed since it was opened; the snapshot must bring its
	// segments with it.
	ErrMismatch = errors.New("snapshot refers to segments this body store does not hold")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Loc is where a body lives: segment number and byte offset of its record.
type Loc uint64

func makeLoc(seq uint32, off int64) Loc { return Loc(uint64(seq)<<32 | uint64(off)) }

// Seq is the segment number.
func (l Loc) Seq() uint32 { return uint32(l >> 32) }

// Off is the record's offset in its segment.
func (l Loc) Off() int64 { return int64(uint32(l)) }

// Segment names a segment and how much of it a snapshot covers.
type Segment struct {
	Seq uint32
	Len int64
}

type segment struct {
	seq     uint32
	f       *os.File // nil in memory
	size    int64    // bytes appended, the tail's included
	flushed int64    // bytes written to f
	live    int64    // records of messages still stored
	// liveBytes is their bytes, headers included.
	liveBytes int64
	pins      int
	// blocks holds a memory store's full blocks.
	blocks map[int64][]byte
}

type blockKey struct {
	seq uint32
	idx int64
}

type cached struct {
	key  blockKey
	data []byte
}

// Store is a body store. Its methods are safe for concurrent use: the state
// machine appends and reads while applying, snapshots and dumps read and
// pin from other goroutines.
type Store struct {
	mu   sync.Mutex
	o    Options
	mem  bool
	id   string
	segs map[uint32]*segment
	// active takes the appends; tail is its last block, in memory, covering
	// [tailOff, tailOff+len(tail)). Bytes already in tail never change, so
	// slices of it stay valid.
	active  *segment
	tail    []byte
	tailOff int64

	lru        *list.List
	cache      map[blockKey]*list.Element
	cacheBytes int64

	// fresh: nothing appended since Open, so a snapshot of this store may
	// be taken up in place (Reconcile).
	fresh bool
	kept  []*Pin
}

// Open opens the store in o.Dir (creating it), or one in memory. The
// segments found are not trusted: the first Reconcile keeps those a
// snapshot names, and a store used without one is Reset first.
func Open(o Options) (*Store, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{o: o, mem: o.Dir == "", segs: map[uint32]*segment{}, fresh: true,
		lru: list.New(), cache: map[blockKey]*list.Element{}}
	if s.mem {
		s.id = newID()
		s.startSegment(1)
		return s, nil
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	// A crash while a snapshot from another node was taken up can leave
	// its staging directory, or the one it replaced; neither is needed.
	base := strings.TrimRight(o.Dir, string(filepath.Separator))
	if err := errors.Join(os.RemoveAll(base+stagingSuffix), os.RemoveAll(base+oldSuffix)); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(o.Dir, storeIDFile))
	switch {
	case err == nil:
		s.id = strings.TrimSpace(string(b))
	case errors.Is(err, os.ErrNotExist):
		if err := s.newIdentity(); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	return s, nil
}

func (o Options) withDefaults() (Options, error) {
	seg, blk := int64(DefaultSegmentSize), DefaultBlockSize
	if o.Dir == "" {
		seg, blk = memSegmentSize, memBlockSize
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = seg
	}
	if o.BlockSize == 0 {
		// A small segment gets blocks no larger than itself.
		o.BlockSize = int(min(int64(blk), max(o.SegmentSize, minBlockSize)))
	}
	if o.CacheBytes == 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.Retain == 0 {
		o.Retain = DefaultRetain
	}
	if o.SegmentSize < int64(o.BlockSize) || o.SegmentSize > maxSegmentSize || o.BlockSize < minBlockSize || o.CacheBytes < 0 || o.Retain < 1 {
		return o, fmt.Errorf("body store: segment size %d, block size %d, cache %d, retain %d out of range",
			o.SegmentSize, o.BlockSize, o.CacheBytes, o.Retain)
	}
	return o, nil
}

func newID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// newIdentity gives the store a new id, durably: snapshots of the old one
// must never be taken for snapshots of this one.
func (s *Store) newIdentity() error {
	s.id = newID()
	if s.mem {
		return nil
	}
	return writeFileSync(s.o.Dir, storeIDFile, []byte(s.id+"\n"))
}

// ID identifies this store's contents: snapshots record it, and only a
// store with the same id may take them up in place.
func (s *Store) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// InMemory reports whether the store keeps its segments in memory; its
// snapshots must then carry the segments' bytes.
func (s *Store) InMemory() bool { return s.mem }

// Close closes the segment files. Unsynced appends are lost, which is what
// a crash does too.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	if err := s.flushTail(); err != nil {
		first = err
	}
	for _, g := range s.segs {
		if g.f != nil {
			if err := g.f.Close(); err != nil && first == nil {
				first = err
			}
			g.f = nil
		}
	}
	return first
}

// Append stores body as the record of message id and returns its location.
// The record counts as live until Release.
func (s *Store) Append(id uint64, body []byte) (Loc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fresh {
		if err := s.resetLocked(); err != nil {
			return 0, err
		}
	}
	if s.active == nil {
		if err := s.startSegment(1); err != nil {
			return 0, err
		}
	}
	n := int64(recordHeader + len(body))
	if s.active.size > 0 && s.active.size+n > s.o.SegmentSize {
		if err := s.roll(); err != nil {
			return 0, err
		}
	}
	loc := makeLoc(s.active.seq, s.active.size)
	var hdr [recordHeader]byte
	binary.LittleEndian.PutUint32(hdr[4:], uint32(len(body)))
	binary.LittleEndian.PutUint64(hdr[8:], id)
	crc := crc32.Update(0, castagnoli, hdr[4:])
	binary.LittleEndian.PutUint32(hdr[:4], crc32.Update(crc, castagnoli, body))
	if err := s.write(hdr[:]); err != nil {
		return 0, err
	}
	if err := s.write(body); err != nil {
		return 0, err
	}
	s.active.size += n
	s.active.live++
	s.active.liveBytes += n
	return loc, nil
}

// write appends p to the tail, sealing full blocks as it goes.
func (s *Store) write(p []byte) error {
	for len(p) > 0 {
		if len(s.tail) == s.o.BlockSize {
			if err := s.sealBlock(); err != nil {
				return err
			}
		}
		n := copy(s.tail[len(s.tail):s.o.BlockSize], p)
		s.tail = s.tail[:len(s.tail)+n]
		p = p[n:]
	}
	return nil
}

// flushTail writes the tail's unwritten bytes to the active segment's file.
func (s *Store) flushTail() error {
	g := s.active
	if g == nil || s.mem || g.f == nil {
		return nil
	}
	from := g.flushed - s.tailOff
	if from >= int64(len(s.tail)) {
		return nil
	}
	if _, err := g.f.WriteAt(s.tail[from:], g.flushed); err != nil {
		return fmt.Errorf("body store: write segment %d: %w", g.seq, err)
	}
	g.flushed = s.tailOff + int64(len(s.tail))
	return nil
}

// sealBlock retires the tail as an immutable block and starts a new one.
func (s *Store) sealBlock() error {
	if err := s.flushTail(); err != nil {
		return err
	}
	s.keepBlock(blockKey{s.active.seq, s.tailOff / int64(s.o.BlockSize)}, s.tail)
	s.tailOff += int64(len(s.tail))
	s.tail = make([]byte, 0, s.o.BlockSize)
	return nil
}

// keepBlock holds a full block: for good in memory, in the cache on disk.
func (s *Store) keepBlock(k blockKey, b []byte) {
	if len(b) == 0 {
		return
	}
	if s.mem {
		s.segs[k.seq].blocks[k.idx] = b
		return
	}
	s.cachePut(k, b)
}

// roll seals the active segment and begins the next.
func (s *Store) roll() error {
	old := s.active
	if err := s.flushTail(); err != nil {
		return err
	}
	s.keepBlock(blockKey{old.seq, s.tailOff / int64(s.o.BlockSize)}, s.tail)
	if err := s.startSegment(old.seq + 1); err != nil {
		return err
	}
	crashpoint.Hit("segment-roll")
	s.maybeDelete(old)
	return nil
}

func (s *Store) startSegment(seq uint32) error {
	g := &segment{seq: seq}
	if s.mem {
		g.blocks = map[int64][]byte{}
	} else {
		f, err := os.OpenFile(s.segPath(seq), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return fmt.Errorf("body store: %w", err)
		}
		g.f = f
	}
	s.segs[seq] = g
	s.active = g
	s.tail = make([]byte, 0, s.o.BlockSize)
	s.tailOff = 0
	return nil
}

func (s *Store) segPath(seq uint32) string {
	return filepath.Join(s.o.Dir, fmt.Sprintf("%0*x%s", segmentNameHexDigits, seq, segmentSuffix))
}

// Read returns the body of message id stored at loc, size bytes long. The
// slice may share memory with the store's blocks: treat it as read-only.
func (s *Store) Read(loc Loc, id uint64, size uint32) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.segs[loc.Seq()]
	n := int64(recordHeader) + int64(size)
	if g == nil || loc.Off()+n > g.size {
		return nil, fmt.Errorf("%w: message %d: no record at segment %d offset %d", ErrCorrupt, id, loc.Seq(), loc.Off())
	}
	bs := int64(s.o.BlockSize)
	first, last := loc.Off()/bs, (loc.Off()+n-1)/bs
	var rec []byte
	if first == last {
		b, err := s.block(g, first)
		if err != nil {
			return nil, err
		}
		from := loc.Off() - first*bs
		rec = b[from : from+n : from+n]
	} else {
		rec = make([]byte, 0, n)
		for i := first; i <= last; i++ {
			b, err := s.block(g, i)
			if err != nil {
				return nil, err
			}
			from, to := max(loc.Off()-i*bs, 0), min(loc.Off()+n-i*bs, int64(len(b)))
			rec = append(rec, b[from:to]...)
		}
	}
	if err := check(rec, id, size); err != nil {
		return nil, fmt.Errorf("%w: segment %d offset %d: %v", ErrCorrupt, loc.Seq(), loc.Off(), err)
	}
	return rec[recordHeader:], nil
}

func check(rec []byte, id uint64, size uint32) error {
	if len(rec) != recordHeader+int(size) {
		return fmt.Errorf("short record")
	}
	if got := binary.LittleEndian.Uint32(rec[4:]); got != size {
		return fmt.Errorf("length %d, want %d", got, size)
	}
	if got := binary.LittleEndian.Uint64(rec[8:]); got != id {
		return fmt.Errorf("record of message %d, want %d", got, id)
	}
	if crc32.Checksum(rec[4:], castagnoli) != binary.LittleEndian.Uint32(rec) {
		return fmt.Errorf("checksum mismatch")
	}
	return nil
}

// block returns block i of g: the tail, a kept block, or one read from disk
// into the cache.
func (s *Store) block(g *segment, i int64) ([]byte, error) {
	bs := int64(s.o.BlockSize)
	if g == s.active && i*bs == s.tailOff {
		return s.tail, nil
	}
	k := blockKey{g.seq, i}
	if s.mem {
		if b, ok := g.blocks[i]; ok {
			return b, nil
		}
		return nil, fmt.Errorf("%w: segment %d has no block %d", ErrCorrupt, g.seq, i)
	}
	if e, ok := s.cache[k]; ok {
		s.lru.MoveToFront(e)
		return e.Value.(*cached).data, nil
	}
	n := min(bs, g.flushed-i*bs)
	if n <= 0 {
		return nil, fmt.Errorf("%w: segment %d block %d past its end", ErrCorrupt, g.seq, i)
	}
	b := make([]byte, n)
	if _, err := g.f.ReadAt(b, i*bs); err != nil {
		return nil, fmt.Errorf("body store: read segment %d: %w", g.seq, err)
	}
	s.cachePut(k, b)
	return b, nil
}

func (s *Store) cachePut(k blockKey, b []byte) {
	if e, ok := s.cache[k]; ok {
		s.cacheBytes -= int64(cap(e.Value.(*cached).data))
		e.Value.(*cached).data = b
		s.cacheBytes += int64(cap(b))
		s.lru.MoveToFront(e)
	} else {
		s.cache[k] = s.lru.PushFront(&cached{key: k, data: b})
		s.cacheBytes += int64(cap(b))
	}
	for s.cacheBytes > s.o.CacheBytes && s.lru.Len() > 0 {
		s.cacheDrop(s.lru.Back())
	}
}

func (s *Store) cacheDrop(e *list.Element) {
	c := s.lru.Remove(e).(*cached)
	delete(s.cache, c.key)
	s.cacheBytes -= int64(cap(c.data))
}

// cachedLocked is the memory blocks hold: the read cache and the tail
// (disk), or every block (memory).
func (s *Store) cachedLocked() int64 {
	if !s.mem {
		return s.cacheBytes + int64(cap(s.tail))
	}
	var n int64
	for _, g := range s.segs {
		for _, b := range g.blocks {
			n += int64(cap(b))
		}
	}
	return n + int64(cap(s.tail))
}

// Release marks the record at loc, of a body of size bytes, as no longer
// holding a stored message.
func (s *Store) Release(loc Loc, size uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.segs[loc.Seq()]
	if g == nil {
		return
	}
	g.live--
	g.liveBytes -= recordHeader + int64(size)
	s.maybeDelete(g)
}

// Live is what a segment holds of stored messages: their records, and
// those records' bytes.
type Live struct{ Records, Bytes int64 }

// Add counts one more record of a body of size bytes.
func (l *Live) Add(size uint32) {
	l.Records++
	l.Bytes += recordHeader + int64(size)
}

// Sparse returns the sealed segments whose live records take less than
// fraction of their bytes, with their live records: moving those records
// (Append, then Release) lets the segments go.
func (s *Store) Sparse(fraction float64) map[uint32]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[uint32]int64{}
	for seq, g := range s.segs {
		if g != s.active && g.size > 0 && g.live > 0 && float64(g.liveBytes) < fraction*float64(g.size) {
			out[seq] = g.live
		}
	}
	return out
}

// maybeDelete removes g once nothing needs it.
func (s *Store) maybeDelete(g *segment) {
	if g == s.active || g.live > 0 || g.pins > 0 {
		return
	}
	delete(s.segs, g.seq)
	for i := int64(0); i*int64(s.o.BlockSize) < g.size; i++ {
		if e, ok := s.cache[blockKey{g.seq, i}]; ok {
			s.cacheDrop(e)
		}
	}
	if g.f != nil {
		g.f.Close()
		os.Remove(s.segPath(g.seq))
	}
}

// Stats is what the store holds.
type Stats struct {
	Segments    int
	Bytes       int64 // bytes in segments, dead records included
	CachedBytes int64
}

// Stats returns what the store holds now.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Segments: len(s.segs), CachedBytes: s.cachedLocked()}
	for _, g := range s.segs {
		st.Bytes += g.size
	}
	return st
}

// Segments lists the segments present, in order, with their sizes.
func (s *Store) Segments() []Segment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.segmentsLocked()
}

func (s *Store) segmentsLocked() []Segment {
	out := make([]Segment, 0, len(s.segs))
	for _, g := range s.segs {
		out = append(out, Segment{Seq: g.seq, Len: g.size})
	}
	slices.SortFunc(out, func(a, b Segment) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

// Reset drops every segment and gives the store a new identity: the state
// machine starts from an empty state and the log.
func (s *Store) Reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resetLocked()
}

func (s *Store) resetLocked() error {
	s.fresh = false
	for _, p := range s.kept {
		p.releaseLocked()
	}
	s.kept = nil
	for _, g := range s.segs {
		if g.f != nil {
			g.f.Close()
		}
	}
	s.segs = map[uint32]*segment{}
	s.lru.Init()
	s.cache = map[blockKey]*list.Element{}
	s.cacheBytes = 0
	if !s.mem {
		if err := removeSegmentFiles(s.o.Dir, nil); err != nil {
			return err
		}
	}
	if err := s.newIdentity(); err != nil {
		return err
	}
	return s.startSegment(1)
}

// removeSegmentFiles deletes the segment files of dir not in keep.
func removeSegmentFiles(dir string, keep map[uint32]bool) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		seq, ok := parseSegName(e.Name())
		if ok && !keep[seq] {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

func parseSegName(name string) (uint32, bool) {
	hexPart, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(hexPart) != segmentNameHexDigits {
		return 0, false
	}
	v, err := strconv.ParseUint(hexPart, 16, 32)
	return uint32(v), err == nil
}

// Pin is a set of segments, each up to a length, kept on disk until it is
// released: what a snapshot or a dump refers to.
type Pin struct {
	s        *Store
	id       string
	segs     []Segment
	files    []*os.File
	released bool
}

// Pin writes out the tail and pins every segment as it is now.
func (s *Store) Pin() (*Pin, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fresh {
		// The state pinned was built without a snapshot of this store:
		// whatever files it holds are stale.
		if err := s.resetLocked(); err != nil {
			return nil, err
		}
	}
	if err := s.flushTail(); err != nil {
		return nil, err
	}
	p := &Pin{s: s, id: s.id, segs: s.segmentsLocked()}
	for _, sg := range p.segs {
		g := s.segs[sg.Seq]
		g.pins++
		p.files = append(p.files, g.f)
	}
	return p, nil
}

// StoreID is the id of the store the pin was taken of.
func (p *Pin) StoreID() string { return p.id }

// Segments are the pinned segments and their lengths.
func (p *Pin) Segments() []Segment { return p.segs }

// Sync makes the pinned segments and their directory entries durable.
func (p *Pin) Sync() error {
	if p.s.mem {
		return nil
	}
	for _, f := range p.files {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("body store: sync: %w", err)
		}
	}
	return syncDir(p.s.o.Dir)
}

// Release unpins the segments: a dump is done, or a snapshot was not kept.
func (p *Pin) Release() {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	p.releaseLocked()
}

func (p *Pin) releaseLocked() {
	if p.released {
		return
	}
	p.released = true
	if p.id != p.s.id {
		return // the store was reset or replaced since: its segments are gone
	}
	for _, sg := range p.segs {
		if g := p.s.segs[sg.Seq]; g != nil {
			g.pins--
			p.s.maybeDelete(g)
		}
	}
}

// Keep records that a snapshot referring to the pinned segments was
// persisted: they stay pinned until Retain newer snapshots were kept.
func (p *Pin) Keep() {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.released || p.id != s.id {
		return
	}
	s.kept = append(s.kept, p)
	for len(s.kept) > s.o.Retain {
		s.kept[0].releaseLocked()
		s.kept = s.kept[1:]
	}
}

// WriteTo writes the pinned segments' bytes, each up to its pinned length,
// one after the other: the part of a snapshot that carries them.
func (p *Pin) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for i, sg := range p.segs {
		var r io.Reader
		if p.s.mem {
			r = p.s.memReader(sg)
		} else {
			r = io.NewSectionReader(p.files[i], 0, sg.Len)
		}
		n, err := io.Copy(w, r)
		total += n
		if err == nil && n != sg.Len {
			err = fmt.Errorf("%w: segment %d holds %d of %d bytes", ErrCorrupt, sg.Seq, n, sg.Len)
		}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// memReader reads a memory segment's first sg.Len bytes.
func (s *Store) memReader(sg Segment) io.Reader {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.segs[sg.Seq]
	bs := int64(s.o.BlockSize)
	var rs []io.Reader
	for i := int64(0); i*bs < sg.Len; i++ {
		b, err := s.block(g, i)
		if err != nil {
			return errReader{err}
		}
		rs = append(rs, bytes.NewReader(b[:min(int64(len(b)), sg.Len-i*bs)]))
	}
	return io.MultiReader(rs...)
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// TotalLen is the bytes of all segments of a snapshot.
func TotalLen(segs []Segment) int64 {
	var n int64
	for _, sg := range segs {
		n += sg.Len
	}
	return n
}

// CanReconcile reports whether a snapshot of store id naming segs can be
// taken up in place: this store is that store, unchanged since it was
// opened, and holds every segment at least that long.
func (s *Store) CanReconcile(id string, segs []Segment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mem || !s.fresh || id != s.id {
		return ErrMismatch
	}
	for _, sg := range segs {
		fi, err := os.Stat(s.segPath(sg.Seq))
		if err != nil {
			return fmt.Errorf("%w: segment %d: %v", ErrMismatch, sg.Seq, err)
		}
		if fi.Size() < sg.Len {
			return fmt.Errorf("%w: segment %d holds %d bytes, the snapshot needs %d", ErrCorrupt, sg.Seq, fi.Size(), sg.Len)
		}
	}
	return nil
}

// Reconcile takes up a snapshot in place (after CanReconcile): the named
// segments are cut back to their lengths, which drops what was appended
// after the snapshot (the log replays it), and every other segment file is
// removed. live gives each segment's live records; the snapshot stays
// pinned as a kept one.
func (s *Store) Reconcile(segs []Segment, live map[uint32]Live) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := map[uint32]bool{}
	for _, sg := range segs {
		keep[sg.Seq] = true
	}
	if err := removeSegmentFiles(s.o.Dir, keep); err != nil {
		return err
	}
	s.fresh = false
	s.segs = map[uint32]*segment{}
	for _, sg := range segs {
		f, err := os.OpenFile(s.segPath(sg.Seq), os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("body store: %w", err)
		}
		if err := f.Truncate(sg.Len); err != nil {
			f.Close()
			return fmt.Errorf("body store: %w", err)
		}
		s.segs[sg.Seq] = &segment{seq: sg.Seq, f: f, size: sg.Len, flushed: sg.Len, live: live[sg.Seq].Records, liveBytes: live[sg.Seq].Bytes}
	}
	if err := syncDir(s.o.Dir); err != nil {
		return err
	}
	return s.finishLocked(segs)
}

// finishLocked makes the newest of segs the active segment (or starts
// one), loads its last block as the tail, pins segs as a kept snapshot and
// drops segments nothing needs.
func (s *Store) finishLocked(segs []Segment) error {
	if len(segs) == 0 {
		if err := s.startSegment(1); err != nil {
			return err
		}
	} else {
		g := s.segs[segs[len(segs)-1].Seq]
		bs := int64(s.o.BlockSize)
		s.active = g
		s.tailOff = g.size / bs * bs
		s.tail = make([]byte, g.size-s.tailOff, s.o.BlockSize)
		if len(s.tail) > 0 {
			if s.mem {
				copy(s.tail, g.blocks[s.tailOff/bs])
				delete(g.blocks, s.tailOff/bs)
			} else if _, err := g.f.ReadAt(s.tail, s.tailOff); err != nil {
				return fmt.Errorf("body store: read segment %d: %w", g.seq, err)
			}
		}
	}
	p := &Pin{s: s, id: s.id, segs: segs}
	for _, sg := range segs {
		g := s.segs[sg.Seq]
		g.pins++
		p.files = append(p.files, g.f)
	}
	s.kept = []*Pin{p}
	if s.mem {
		// A memory store's snapshots carry their bytes: nothing to keep.
		s.kept = nil
		p.releaseLocked()
	}
	for _, g := range s.segs {
		s.maybeDelete(g)
	}
	return nil
}

// Staging builds the store a snapshot describes beside the live one, which
// stays intact until Adopt: from the segments the snapshot carries
// (ReadSegments), or from bodies appended one by one (Append, for snapshots
// that carry bodies inline).
type Staging struct {
	s    *Store
	dir  string
	next *Store
}

// Stage begins taking up a snapshot.
func (s *Store) Stage() (*Staging, error) {
	st := &Staging{s: s}
	o := s.o
	if !s.mem {
		st.dir = strings.TrimRight(s.o.Dir, string(filepath.Separator)) + stagingSuffix
		if err := os.RemoveAll(st.dir); err != nil {
			return nil, err
		}
		o.Dir = st.dir
	}
	next, err := Open(o)
	if err != nil {
		return nil, err
	}
	next.fresh = false
	next.segs = map[uint32]*segment{} // a memory store's first segment: the snapshot brings its own
	next.active = nil
	st.next = next
	return st, nil
}

// Append stores a body the snapshot carries inline.
func (st *Staging) Append(id uint64, body []byte) (Loc, error) { return st.next.Append(id, body) }

// ReadSegments reads the bytes of segs from r, one segment after the other.
func (st *Staging) ReadSegments(segs []Segment, r io.Reader) error {
	n := st.next
	for _, sg := range segs {
		g := &segment{seq: sg.Seq, size: sg.Len, flushed: sg.Len}
		if n.mem {
			g.blocks = map[int64][]byte{}
			bs := int64(n.o.BlockSize)
			for off := int64(0); off < sg.Len; off += bs {
				b := make([]byte, min(bs, sg.Len-off))
				if _, err := io.ReadFull(r, b); err != nil {
					return fmt.Errorf("snapshot segment %d: %w", sg.Seq, err)
				}
				g.blocks[off/bs] = b
			}
			n.segs[sg.Seq] = g
		} else {
			f, err := os.OpenFile(n.segPath(sg.Seq), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			g.f = f
			n.segs[sg.Seq] = g // closed by Abort if the copy fails
			if m, err := io.CopyN(f, r, sg.Len); err != nil {
				return fmt.Errorf("snapshot segment %d: %d of %d bytes: %w", sg.Seq, m, sg.Len, err)
			}
		}
	}
	return nil
}

// Adopt replaces the live store's contents with the staged ones, under a
// new identity. live, when not nil, gives each segment's live records (for
// segments read whole; appended bodies count themselves).
func (st *Staging) Adopt(live map[uint32]Live) error {
	s, n := st.s, st.next
	n.mu.Lock()
	err := n.flushTail()
	if err == nil && n.active != nil && n.mem {
		n.keepBlock(blockKey{n.active.seq, n.tailOff / int64(n.o.BlockSize)}, n.tail)
	}
	segs := n.segmentsLocked()
	n.mu.Unlock()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for seq, g := range n.segs {
		if live != nil {
			g.live, g.liveBytes = live[seq].Records, live[seq].Bytes
		}
		if g.f != nil {
			if err := g.f.Sync(); err != nil {
				return fmt.Errorf("body store: sync: %w", err)
			}
		}
	}
	for _, g := range s.segs {
		if g.f != nil {
			g.f.Close()
		}
	}
	for _, p := range s.kept {
		p.released = true
	}
	s.kept = nil
	if !s.mem {
		// Swap the directories: the old one goes, the staged one takes
		// its name. Open files follow the rename.
		old := strings.TrimRight(s.o.Dir, string(filepath.Separator)) + oldSuffix
		if err := os.RemoveAll(old); err != nil {
			return err
		}
		if err := os.Rename(s.o.Dir, old); err != nil {
			return err
		}
		if err := os.Rename(st.dir, s.o.Dir); err != nil {
			return err
		}
		if err := syncDir(filepath.Dir(s.o.Dir)); err != nil {
			return err
		}
		os.RemoveAll(old)
	}
	s.segs = n.segs
	s.lru.Init()
	s.cache = map[blockKey]*list.Element{}
	s.cacheBytes = 0
	s.fresh = false
	s.active = nil
	if err := s.newIdentity(); err != nil {
		return err
	}
	return s.finishLocked(segs)
}

// Abort discards the staged store; the live store is untouched.
func (st *Staging) Abort() {
	st.next.Close()
	if st.dir != "" {
		os.RemoveAll(st.dir)
	}
}

func writeFileSync(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// OpenSegments opens the segments a snapshot of this store names, for
// sending them to another node: their bytes up to each length, one after
// the other. The files are opened now, so a segment deleted meanwhile is
// still read whole.
func (s *Store) OpenSegments(id string, segs []Segment) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mem || id != s.id {
		return nil, ErrMismatch
	}
	if err := s.flushTail(); err != nil {
		return nil, err
	}
	sr := &segmentsReader{}
	for _, sg := range segs {
		// A fresh store has not taken up its files yet (a restart opens
		// its newest snapshot before restoring it): the files must do.
		if g := s.segs[sg.Seq]; !s.fresh && (g == nil || g.flushed < sg.Len) {
			sr.Close()
			return nil, fmt.Errorf("%w: segment %d is gone or shorter than %d bytes", ErrMismatch, sg.Seq, sg.Len)
		}
		f, err := os.Open(s.segPath(sg.Seq))
		if err != nil {
			sr.Close()
			return nil, fmt.Errorf("%w: %v", ErrMismatch, err)
		}
		if fi, err := f.Stat(); err != nil || fi.Size() < sg.Len {
			f.Close()
			sr.Close()
			return nil, fmt.Errorf("%w: segment %d is shorter than %d bytes", ErrCorrupt, sg.Seq, sg.Len)
		}
		sr.files = append(sr.files, f)
		sr.parts = append(sr.parts, io.NewSectionReader(f, 0, sg.Len))
	}
	sr.r = io.MultiReader(sr.parts...)
	return sr, nil
}

type segmentsReader struct {
	files []*os.File
	parts []io.Reader
	r     io.Reader
}

func (sr *segmentsReader) Read(p []byte) (int, error) { return sr.r.Read(p) }

func (sr *segmentsReader) Close() error {
	for _, f := range sr.files {
		f.Close()
	}
	return nil
}
