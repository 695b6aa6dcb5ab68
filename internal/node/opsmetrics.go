package node

import (
	"context"
	"io/fs"
	"log/slog"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/internal/wait"
)

// dataDirScanInterval is how often the data directory's size is summed:
// a walk of its files (raft log, snapshots, body segments) is too much
// work for every scrape, and disk usage moves slowly.
const dataDirScanInterval = 30 * time.Second

// registerBuildInfo exports quorumq_build_info{version,goversion,revision} 1.
func registerBuildInfo(reg prometheus.Registerer, version string) {
	if version == "" {
		version = "dev"
	}
	revision := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "quorumq_build_info",
		Help:        "Always 1; the labels name the running binary's version, Go version and source revision.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version(), "revision": revision},
	}, func() float64 { return 1 }))
}

// dataDirSize keeps the size of the data directory, summed every
// dataDirScanInterval by a goroutine that stops with the node.
type dataDirSize struct {
	dir   string
	bytes atomic.Int64
	stop  context.CancelFunc
	done  chan struct{}
}

// startDataDirSize sums dir once, registers quorumq_data_dir_bytes and
// starts the periodic sum.
func startDataDirSize(reg prometheus.Registerer, dir string, log *slog.Logger) *dataDirSize {
	ctx, cancel := context.WithCancel(context.Background())
	d := &dataDirSize{dir: dir, stop: cancel, done: make(chan struct{})}
	d.bytes.Store(dirBytes(ctx, dir, log))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "quorumq_data_dir_bytes",
		Help: "Bytes of the files under --data-dir (raft log, snapshots, message bodies), summed every 30 s.",
	}, func() float64 { return float64(d.bytes.Load()) }))
	go func() {
		defer close(d.done)
		wait.Every(ctx, dataDirScanInterval, func() { d.bytes.Store(dirBytes(ctx, dir, log)) })
	}()
	return d
}

// close stops the periodic sum and waits for it.
func (d *dataDirSize) close() {
	if d == nil {
		return
	}
	d.stop()
	<-d.done
}

// dirBytes sums the sizes of the regular files under dir. Files that go
// away during the walk (a compacted segment) are skipped.
func dirBytes(ctx context.Context, dir string, log *slog.Logger) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil || !e.Type().IsRegular() {
			return nil
		}
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		log.Debug("data dir size", "err", err)
	}
	return n
}
