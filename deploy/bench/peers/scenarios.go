package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/quorumq/quorumq/deploy/bench/load"
)

// SystemResult is everything measured on one system.
type SystemResult struct {
	Key        string `json:"key"`
	Name       string `json:"name"`
	Durability string `json:"durability"`
	// Put: single-message writes, 64 clients. Put1: the same, one
	// client (the latency of an unloaded put). Batch: 100 messages per
	// request, 16 clients. Lease: get then ack of one message, 64 clients.
	// HalfRate: Put offered at half of Put's throughput (open loop).
	// PutFollower: quorumq 3 nodes only, Put sent to the two followers.
	Put, Put1, Batch, Lease, HalfRate, PutFollower *load.Result `json:",omitempty"`
	// CPU is the CPU spent in the headline runs' measured windows; nil in
	// results written before it was measured.
	CPU *SystemCPU `json:"cpu,omitempty"`
	// Sweeps for the charts.
	Concurrency []Point `json:"concurrency,omitempty"`
	BatchSizes  []Point `json:"batch_sizes,omitempty"`
	LoadStart   string  `json:"load_start"`
	LoadEnd     string  `json:"load_end"`
	Error       string  `json:"error,omitempty"`
}

// SystemCPU is the CPU of each headline run, named as its result.
type SystemCPU struct {
	Put, Put1, Batch, Lease, PutFollower *CPUUsage `json:",omitempty"`
}

// Point is one sweep measurement.
type Point struct {
	X          int     `json:"x"`
	MsgsPerSec float64 `json:"msgs_per_s"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	Errors     uint64  `json:"errors"`
}

// Workload parameters shared by every system.
const (
	msgSize     = 100
	putClients  = 64
	batchSize   = 100
	batchConns  = 16
	leaseConns  = 64
	warmup      = 2 * time.Second
	sweepWarmup = time.Second
)

func sweepConcurrency(quick bool) []int {
	if quick {
		return []int{1, 16, 64, 256}
	}
	return []int{1, 4, 16, 64, 128, 256}
}

func sweepBatches(quick bool) []int {
	if quick {
		return []int{1, 100, 1000}
	}
	return []int{1, 10, 100, 1000}
}

// measure runs one workload on sys. kind is put, batch or lease; targets
// (quorumq only) overrides where the clients go.
type workload struct {
	kind        string
	concurrency int
	batch       int
	duration    time.Duration
	warmup      time.Duration
	rate        float64
	prefill     int
	queue       string
	spread      []string // quorumq: send to these nodes instead of the leader
}

var queueSeq int

// measure runs w on sys and samples the CPU of sys's processes and of
// this process around the measured window. A CPU that could not be
// sampled is logged and left nil: the throughput still counts.
func measure(ctx context.Context, sys *system, w workload) (*load.Result, *CPUUsage, error) {
	var probe *cpuProbe
	if procs, err := sys.processes(); err != nil {
		logf("%s: no CPU figures for this run: %v", sys.Key, err)
	} else {
		probe = newCPUProbe(procs)
	}
	res, err := runLoad(ctx, sys, w, probe)
	if err != nil || probe == nil {
		return res, nil, err
	}
	cpu, cerr := probe.usage(res.Msgs)
	if cerr != nil {
		logf("%s: no CPU figures for this run: %v", sys.Key, cerr)
	}
	return res, cpu, nil
}

// runLoad is one load run of w on sys; probe, when set, samples the measured
// window through the load generator's hooks.
func runLoad(ctx context.Context, sys *system, w workload, probe *cpuProbe) (*load.Result, error) {
	queueSeq++
	w.queue = fmt.Sprintf("b%d", queueSeq)
	label := fmt.Sprintf("%s %s c%d", sys.Key, w.kind, w.concurrency)
	rc := load.RunConfig{Label: label, Concurrency: w.concurrency, Duration: w.duration, Warmup: w.warmup, Rate: w.rate, Progress: progress}
	if probe != nil {
		rc.OnMeasureStart, rc.OnMeasureEnd = probe.begin, probe.end
	}
	if sys.driver == nil {
		mode := map[string]string{"put": load.ModePut, "batch": load.ModeMPut, "lease": load.ModeLease}[w.kind]
		if w.kind == "batch" && w.batch == 1 {
			mode = load.ModePut
		}
		cfg := load.DefaultConfig()
		cfg.Mode, cfg.Targets, cfg.Queue, cfg.Size, cfg.Batch, cfg.Prefill, cfg.RunConfig = mode, sys.targets, w.queue, msgSize, w.batch, w.prefill, rc
		if len(w.spread) > 0 {
			cfg.Targets, cfg.Spread = w.spread, true
		}
		rep, err := load.RunQuorumq(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return rep.Result, nil
	}
	if w.prefill > 0 {
		if err := sys.driver.prefill(w.queue, w.prefill, msgSize); err != nil {
			return nil, fmt.Errorf("prefill: %w", err)
		}
	}
	return load.Run(ctx, rc, func(int) (load.Worker, error) {
		return sys.driver.worker(w.kind, w.queue, msgSize, w.batch)
	})
}

func runSystem(ctx context.Context, sys *system, o options) (res SystemResult, err error) {
	res = SystemResult{Key: sys.Key, Name: sys.Name, Durability: sys.Durability, LoadStart: loadAvg()}
	defer func() { res.LoadEnd = loadAvg() }()
	// Every headline run starts from empty data directories, so that one
	// run's leftovers (a deep queue to snapshot, a long AOF or stream) do
	// not weigh on the next.
	started := false
	fresh := func() bool {
		if err != nil || ctx.Err() != nil {
			return false
		}
		if started {
			sys.stop()
		}
		started = true
		if e := sys.start(ctx); e != nil {
			err = fmt.Errorf("start: %w", e)
			return false
		}
		return true
	}
	defer func() {
		if started {
			sys.stop()
		}
	}()
	d := o.duration
	res.CPU = &SystemCPU{}
	// step runs one workload; cpu, when set, keeps its CPU figures.
	step := func(name string, w workload, cpu **CPUUsage) *load.Result {
		if err != nil || ctx.Err() != nil {
			return nil
		}
		r, u, e := measure(ctx, sys, w)
		if e != nil {
			err = fmt.Errorf("%s: %w", name, e)
			return nil
		}
		logf("%-16s %-13s %9.0f msgs/s  p50 %6.2fms  p99 %7.2fms  errors %d%s", sys.Key, name, r.MsgsPerSec, r.Latency.P50/1e3, r.Latency.P99/1e3, r.Errors, cpuLog(u))
		if cpu != nil {
			*cpu = u
		}
		return r
	}
	if fresh() {
		res.Put = step("put c64", workload{kind: "put", concurrency: putClients, batch: 1, duration: d, warmup: warmup}, &res.CPU.Put)
	}
	if res.Put != nil && res.Put.MsgsPerSec > 0 {
		if fresh() {
			res.HalfRate = step("put half rate", workload{kind: "put", concurrency: putClients, batch: 1, duration: d, warmup: warmup, rate: res.Put.MsgsPerSec / 2}, nil)
		}
		if fresh() {
			// Enough messages for the whole run at the put rate, and then some.
			pre := int(res.Put.MsgsPerSec*(d+warmup).Seconds()*1.5) + 10000
			res.Lease = step("lease+ack c64", workload{kind: "lease", concurrency: leaseConns, batch: 1, duration: d, warmup: warmup, prefill: pre}, &res.CPU.Lease)
		}
	}
	if fresh() {
		res.Batch = step("batch100 c16", workload{kind: "batch", concurrency: batchConns, batch: batchSize, duration: d, warmup: warmup}, &res.CPU.Batch)
	}
	if fresh() {
		res.Put1 = step("put c1", workload{kind: "put", concurrency: 1, batch: 1, duration: d, warmup: warmup}, &res.CPU.Put1)
	}
	if sys.Key == "quorumq3" && fresh() {
		if fs := followers(sys.targets); len(fs) > 0 {
			res.PutFollower = step("put followers", workload{kind: "put", concurrency: putClients, batch: 1, duration: d, warmup: warmup, spread: fs}, &res.CPU.PutFollower)
		}
	}
	if o.sweep && fresh() {
		sd := d / 2
		for _, c := range sweepConcurrency(o.quick) {
			if r := step(fmt.Sprintf("put c%d", c), workload{kind: "put", concurrency: c, batch: 1, duration: sd, warmup: sweepWarmup}, nil); r != nil {
				res.Concurrency = append(res.Concurrency, point(c, r))
			}
		}
		for _, b := range sweepBatches(o.quick) {
			if r := step(fmt.Sprintf("batch%d c16", b), workload{kind: "batch", concurrency: batchConns, batch: b, duration: sd, warmup: sweepWarmup}, nil); r != nil {
				res.BatchSizes = append(res.BatchSizes, point(b, r))
			}
		}
	}
	return res, err
}

// followers returns the queue addresses of the nodes that do not lead.
func followers(targets []string) []string {
	c := &http.Client{Timeout: 2 * time.Second}
	var out []string
	for _, t := range targets {
		if st, err := nodeState(c, t); err == nil && st == roleFollower {
			out = append(out, t)
		}
	}
	return out
}

// progress gets the live progress lines when stderr is a terminal.
var progress = func() io.Writer {
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		return os.Stderr
	}
	return nil
}()

// cpuLog is a run's CPU per message for its log line; empty without one.
func cpuLog(u *CPUUsage) string {
	sys, ok := u.PerMsg(u.SystemUs)
	if !ok {
		return ""
	}
	gen, _ := u.PerMsg(u.LoadGenUs)
	return fmt.Sprintf("  CPU/msg %.1fµs (load generator %.1fµs)", sys, gen)
}

func point(x int, r *load.Result) Point {
	return Point{X: x, MsgsPerSec: r.MsgsPerSec, P50ms: r.Latency.P50 / 1e3, P99ms: r.Latency.P99 / 1e3, Errors: r.Errors}
}
