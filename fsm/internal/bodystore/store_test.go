package bodystore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// small makes blocks and segments tiny, so a few records cross both.
func small(dir string) Options {
	return Options{Dir: dir, SegmentSize: 4096, BlockSize: 512, CacheBytes: 2048}
}

func mustOpen(t *testing.T, o Options) *Store {
	t.Helper()
	s, err := Open(o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type rec struct {
	id   uint64
	loc  Loc
	body []byte
}

func body(id uint64, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(int(id)*31 + i)
	}
	return b
}

func mustAppend(t *testing.T, s *Store, id uint64, n int) rec {
	t.Helper()
	b := body(id, n)
	loc, err := s.Append(id, b)
	if err != nil {
		t.Fatalf("append %d: %v", id, err)
	}
	return rec{id, loc, b}
}

func mustReadAll(t *testing.T, s *Store, recs []rec) {
	t.Helper()
	for _, r := range recs {
		got, err := s.Read(r.loc, r.id, uint32(len(r.body)))
		if err != nil {
			t.Fatalf("read %d at %d/%d: %v", r.id, r.loc.Seq(), r.loc.Off(), err)
		}
		if !bytes.Equal(got, r.body) {
			t.Fatalf("read %d: body differs", r.id)
		}
	}
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentSuffix))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

func TestStore_AppendRead_AcrossBlocksAndSegments(t *testing.T) {
	for _, mode := range []string{"disk", "memory"} {
		t.Run(mode, func(t *testing.T) {
			o := small(t.TempDir())
			if mode == "memory" {
				o.Dir = ""
			}
			s := mustOpen(t, o)
			var recs []rec
			// Sizes straddle block and segment boundaries: empty, small,
			// a block, more than a segment.
			for i, n := range []int{0, 1, 100, 496, 497, 512, 1000, 5000, 3, 4080, 7} {
				recs = append(recs, mustAppend(t, s, uint64(i+1), n))
			}
			mustReadAll(t, s, recs)
			if st := s.Stats(); st.Segments < 3 {
				t.Fatalf("%d segments after %d bytes in segments of 4096", st.Segments, st.Bytes)
			}
			// Reading again comes from the cache or the disk alike.
			mustReadAll(t, s, recs)
			if mode == "disk" {
				if c := s.Stats().CachedBytes; c > o.CacheBytes+int64(o.BlockSize) {
					t.Fatalf("cache holds %d bytes, bound %d plus the tail", c, o.CacheBytes)
				}
			}
		})
	}
}

func TestStore_Read_DetectsWrongIDSizeAndDamage(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, small(dir))
	r := mustAppend(t, s, 7, 300)
	r2 := mustAppend(t, s, 8, 5000) // seals the first segment
	if _, err := s.Read(r.loc, 8, 300); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read under another id: %v, want ErrCorrupt", err)
	}
	if _, err := s.Read(r.loc, 7, 299); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read with another size: %v, want ErrCorrupt", err)
	}
	// Damage a byte of the first body on disk; a fresh store (no cache)
	// must see it.
	s.Close()
	path := filepath.Join(dir, fmt.Sprintf("%08x.seg", r.loc.Seq()))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[r.loc.Off()+recordHeader+10] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s2 := mustOpen(t, small(dir))
	if err := s2.CanReconcile(s.ID(), []Segment{{r.loc.Seq(), int64(len(data))}, {r2.loc.Seq(), recordHeader + 5000}}); err != nil {
		t.Fatalf("can reconcile: %v", err)
	}
	if err := s2.Reconcile([]Segment{{r.loc.Seq(), int64(len(data))}, {r2.loc.Seq(), recordHeader + 5000}}, map[uint32]Live{r.loc.Seq(): {1, recordHeader + 300}, r2.loc.Seq(): {1, recordHeader + 5000}}); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if _, err := s2.Read(r.loc, 7, 300); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read of a damaged body: %v, want ErrCorrupt", err)
	}
	mustReadAll(t, s2, []rec{r2})
}

func TestStore_Release_DeletesSegmentsNothingNeeds(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, small(dir))
	var recs []rec
	for i := range 20 {
		recs = append(recs, mustAppend(t, s, uint64(i+1), 1000))
	}
	before := len(segFiles(t, dir))
	if before < 5 {
		t.Fatalf("%d segment files after 20 KB", before)
	}
	pin, err := s.Pin()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs[:len(recs)-1] {
		s.Release(r.loc, uint32(len(r.body)))
	}
	if n := len(segFiles(t, dir)); n != before {
		t.Fatalf("%d segment files while pinned, want %d", n, before)
	}
	pin.Release()
	// Only the active segment is left (it holds the last, live record).
	if n := segFiles(t, dir); len(n) != 1 {
		t.Fatalf("segment files after release: %v, want only the active one", n)
	}
	mustReadAll(t, s, recs[len(recs)-1:])
}

func TestStore_Keep_HoldsTheLastRetainedSnapshots(t *testing.T) {
	dir := t.TempDir()
	o := small(dir)
	o.Retain = 2
	s := mustOpen(t, o)
	var pins []*Pin
	for i := range 4 {
		r := mustAppend(t, s, uint64(i+1), 5000) // one segment each
		p, err := s.Pin()
		if err != nil {
			t.Fatal(err)
		}
		p.Keep()
		pins = append(pins, p)
		s.Release(r.loc, uint32(len(r.body)))
	}
	// The segments of the last two kept snapshots stay; those only the
	// older ones named go (their records were released).
	have := map[uint32]bool{}
	for _, name := range segFiles(t, dir) {
		seq, _ := parseSegName(name)
		have[seq] = true
	}
	retained := map[uint32]bool{}
	for _, p := range pins[2:] {
		for _, sg := range p.Segments() {
			retained[sg.Seq] = true
			if !have[sg.Seq] {
				t.Fatalf("segment %d of a retained snapshot was deleted", sg.Seq)
			}
		}
	}
	for _, p := range pins[:2] {
		for _, sg := range p.Segments() {
			if have[sg.Seq] && !retained[sg.Seq] {
				t.Fatalf("segment %d, named only by snapshots no longer retained, is still on disk: %v", sg.Seq, segFiles(t, dir))
			}
		}
	}
}

// A crash loses appends after the snapshot; reconciling cuts the store
// back to the snapshot, and appends go on from there.
func TestStore_Reconcile_CutsBackToTheSnapshot(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, small(dir))
	var recs []rec
	for i := range 6 {
		recs = append(recs, mustAppend(t, s, uint64(i+1), 700))
	}
	pin, err := s.Pin()
	if err != nil {
		t.Fatal(err)
	}
	if err := pin.Sync(); err != nil {
		t.Fatal(err)
	}
	pin.Keep()
	id, segs := pin.StoreID(), pin.Segments()
	// Appends after the snapshot, rolling over into new segments, partly
	// written out.
	for i := range 12 {
		mustAppend(t, s, uint64(100+i), 900)
	}
	s.flushTail()
	// Crash: no Close. A new process opens the directory.
	s2 := mustOpen(t, small(dir))
	if err := s2.CanReconcile(id, segs); err != nil {
		t.Fatalf("can reconcile: %v", err)
	}
	live := map[uint32]Live{}
	for _, r := range recs {
		l := live[r.loc.Seq()]
		l.Add(uint32(len(r.body)))
		live[r.loc.Seq()] = l
	}
	if err := s2.Reconcile(segs, live); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	mustReadAll(t, s2, recs)
	var want []string
	for _, sg := range segs {
		want = append(want, fmt.Sprintf("%08x.seg", sg.Seq))
	}
	if got := segFiles(t, dir); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("segment files after reconcile: %v, want %v", got, want)
	}
	last := segs[len(segs)-1]
	fi, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%08x.seg", last.Seq)))
	if err != nil || fi.Size() != last.Len {
		t.Fatalf("active segment: %v, size %d, want %d", err, fi.Size(), last.Len)
	}
	// Replay writes again after the cut.
	more := []rec{mustAppend(t, s2, 100, 900), mustAppend(t, s2, 101, 30)}
	mustReadAll(t, s2, append(recs, more...))
	if more[0].loc.Seq() != last.Seq || more[0].loc.Off() != last.Len {
		if more[0].loc.Seq() != last.Seq+1 {
			t.Fatalf("first append after the cut at %d/%d, want after %d/%d", more[0].loc.Seq(), more[0].loc.Off(), last.Seq, last.Len)
		}
	}
}

func TestStore_CanReconcile_RefusesWhatItCannotTrust(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, small(dir))
	mustAppend(t, s, 1, 700)
	pin, _ := s.Pin()
	id, segs := pin.StoreID(), pin.Segments()
	pin.Keep()
	s.Close()
	cases := []struct {
		name string
		id   string
		segs []Segment
		want error
	}{
		{"another store", "0123456789abcdef", segs, ErrMismatch},
		{"a missing segment", id, append(segs, Segment{Seq: 99, Len: 10}), ErrMismatch},
		{"a segment shorter than recorded", id, []Segment{{Seq: segs[0].Seq, Len: segs[0].Len + 1}}, ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s2 := mustOpen(t, small(dir))
			if err := s2.CanReconcile(c.id, c.segs); !errors.Is(err, c.want) {
				t.Fatalf("CanReconcile: %v, want %v", err, c.want)
			}
		})
	}
	t.Run("a store that was written since it opened", func(t *testing.T) {
		s2 := mustOpen(t, small(dir))
		mustAppend(t, s2, 2, 10)
		if err := s2.CanReconcile(id, segs); !errors.Is(err, ErrMismatch) {
			t.Fatalf("CanReconcile: %v, want ErrMismatch", err)
		}
	})
}

// Another node's segments, read whole, replace this store's; until Adopt
// the old contents stay readable, and Abort leaves them.
func TestStore_Stage_TakesUpAnotherStoresSegments(t *testing.T) {
	src := mustOpen(t, small(t.TempDir()))
	var recs []rec
	live := map[uint32]Live{}
	for i := range 15 {
		r := mustAppend(t, src, uint64(i+1), 300*(i%4)+1)
		recs = append(recs, r)
		l := live[r.loc.Seq()]
		l.Add(uint32(len(r.body)))
		live[r.loc.Seq()] = l
	}
	pin, err := src.Pin()
	if err != nil {
		t.Fatal(err)
	}
	open := func() io.ReadCloser {
		rc, err := src.OpenSegments(pin.StoreID(), pin.Segments())
		if err != nil {
			t.Fatalf("open segments: %v", err)
		}
		return rc
	}
	for _, mode := range []string{"disk", "memory"} {
		t.Run(mode, func(t *testing.T) {
			o := small(t.TempDir())
			if mode == "memory" {
				o.Dir = ""
			}
			dst := mustOpen(t, o)
			mine := mustAppend(t, dst, 500, 40)
			oldID := dst.ID()

			st, err := dst.Stage()
			if err != nil {
				t.Fatal(err)
			}
			rc := open()
			if err := st.ReadSegments(pin.Segments(), io.LimitReader(rc, 100)); err == nil {
				t.Fatalf("a cut-off stream was taken")
			}
			rc.Close()
			st.Abort()
			mustReadAll(t, dst, []rec{mine})

			st, err = dst.Stage()
			if err != nil {
				t.Fatal(err)
			}
			rc = open()
			defer rc.Close()
			if err := st.ReadSegments(pin.Segments(), rc); err != nil {
				t.Fatalf("read segments: %v", err)
			}
			mustReadAll(t, dst, []rec{mine})
			if err := st.Adopt(live); err != nil {
				t.Fatalf("adopt: %v", err)
			}
			mustReadAll(t, dst, recs)
			if dst.ID() == oldID || dst.ID() == src.ID() {
				t.Fatalf("adopted store keeps id %s (old %s, source %s)", dst.ID(), oldID, src.ID())
			}
			if mode == "disk" {
				if _, err := os.Stat(o.Dir + stagingSuffix); !os.IsNotExist(err) {
					t.Fatalf("staging directory left behind: %v", err)
				}
			}
			// It goes on appending after the adopted segments.
			mustReadAll(t, dst, []rec{mustAppend(t, dst, 600, 2000)})
		})
	}
}
