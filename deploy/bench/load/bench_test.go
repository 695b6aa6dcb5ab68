package load

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestBench_InvalidConfig_IsRefusedBeforeAnyRequest: values that used to
// be read as "the default" (zero sizes, timeouts, leases, workers) and
// negative ones are ErrInvalid, found before anything is dialled.
func TestBench_InvalidConfig_IsRefusedBeforeAnyRequest(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*BenchConfig)
	}{
		{"unknown mode", func(c *BenchConfig) { c.Mode = "push" }},
		{"no target", func(c *BenchConfig) { c.Targets = nil }},
		{"bad target", func(c *BenchConfig) { c.Targets = []string{"ftp://x:1"} }},
		{"zero size", func(c *BenchConfig) { c.Size = 0 }},
		{"negative batch", func(c *BenchConfig) { c.Batch = -1 }},
		{"zero timeout", func(c *BenchConfig) { c.Timeout = 0 }},
		{"zero lease", func(c *BenchConfig) { c.Lease = 0 }},
		{"zero workers", func(c *BenchConfig) { c.Concurrency = 0 }},
		{"neither duration nor count", func(c *BenchConfig) { c.Duration, c.Count = 0, 0 }},
		{"negative rate", func(c *BenchConfig) { c.Rate = -1 }},
		{"prefill below automatic", func(c *BenchConfig) { c.Prefill = -2 }},
		{"empty queue", func(c *BenchConfig) { c.Queue = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultBenchConfig()
			tc.change(&cfg)
			if err := Bench(context.Background(), cfg, io.Discard, io.Discard); !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
	if err := DefaultBenchConfig().Validate(); err != nil {
		t.Fatalf("the defaults are invalid: %v", err)
	}
}

// TestBench_ProgressOnlyOnATerminal: the live progress line ("\r" and an
// escape code to clear it) goes to stderr only when stderr is a terminal,
// never into a file or pipe, and never with --quiet.
func TestBench_ProgressOnlyOnATerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg := DefaultBenchConfig()
	for _, w := range []io.Writer{f, &bytes.Buffer{}} {
		if p := cfg.run(w).Progress; p != nil {
			t.Errorf("progress goes to %T, which is no terminal", w)
		}
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if cfg.run(tty).Progress == nil {
			t.Errorf("no progress on a terminal")
		}
		cfg.Quiet = true
		if cfg.run(tty).Progress != nil {
			t.Errorf("progress on a terminal with --quiet")
		}
	}
}
