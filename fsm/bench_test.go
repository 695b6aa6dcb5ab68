package fsm

import (
	"bytes"
	"fmt"
	"testing"
)

// benchEntry is what the coalescer proposes under load: n single-message
// puts of 100 bytes to one queue, or one put of n messages (/mput).
func benchEntry(n int, mput bool) []byte {
	msg := bytes.Repeat([]byte("x"), 100)
	var e Entry
	if mput {
		c := Command{Op: OpPut, Queue: "bench"}
		for i := 0; i < n; i++ {
			c.Messages = append(c.Messages, msg)
		}
		e.Commands = []Command{c}
	} else {
		for i := 0; i < n; i++ {
			e.Commands = append(e.Commands, Command{Op: OpPut, Queue: "bench", Messages: [][]byte{msg}})
		}
	}
	return EncodeEntry(nil, &e)
}

// BenchmarkDecodeEntry measures decoding one log entry, which every
// replica does for every entry it applies.
func BenchmarkDecodeEntry(b *testing.B) {
	for _, c := range []struct {
		name string
		n    int
		mput bool
	}{{"puts=1", 1, false}, {"puts=16", 16, false}, {"puts=64", 64, false}, {"mput=100", 100, true}} {
		b.Run(c.name, func(b *testing.B) {
			data := benchEntry(c.n, c.mput)
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := DecodeEntry(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkApply_Puts measures applying entries of puts (decode and
// apply, as a follower does), draining the queue between entries so that
// its depth stays constant. Reported per message: msgs/s and, with
// -benchmem, B/op and allocs/op are per entry.
func BenchmarkApply_Puts(b *testing.B) {
	for _, c := range []struct {
		n    int
		mput bool
	}{{1, false}, {16, false}, {64, false}, {100, true}} {
		name := fmt.Sprintf("puts=%d", c.n)
		if c.mput {
			name = fmt.Sprintf("mput=%d", c.n)
		}
		b.Run(name, func(b *testing.B) {
			f := New()
			data := benchEntry(c.n, c.mput)
			drain := EncodeEntry(nil, &Entry{Commands: []Command{{Op: OpGet, Queue: "bench", Max: c.n}}})
			idx := uint64(0)
			b.ReportAllocs()
			for b.Loop() {
				idx++
				f.Apply([]Committed{{Index: idx, Command: true, Data: data}})
				b.StopTimer()
				idx++
				f.Apply([]Committed{{Index: idx, Command: true, Data: drain}})
				b.StartTimer()
			}
			b.ReportMetric(float64(b.N*c.n)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
