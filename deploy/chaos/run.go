package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/netns"
	"github.com/quorumq/quorumq/internal/testkit"
)

// Config is one chaos run. Start from DefaultConfig (or LongConfig); Run
// only validates.
type Config struct {
	// Binary is the quorumq binary the nodes run.
	Binary string
	// OutDir receives report.json, history.jsonl, chaos.log, the nodes'
	// logs (nodes/<id>/node.log) and, for a non-linearizable lin queue,
	// porcupine's HTML visualization. Data directories live there too
	// while the run lasts (removed at the end unless KeepData or the run
	// found a violation).
	OutDir string
	// Seed makes the schedule and the workload's choices reproducible.
	Seed uint64
	// Duration of the fault schedule (faults start within it); setup,
	// final heal, recovery, drain and checks come on top.
	Duration time.Duration
	// Nodes at the start, and the bounds of membership changes (MinNodes
	// 0: Nodes).
	Nodes, MinNodes, MaxNodes int
	// Faults enabled (nil: all). Partition faults are skipped, with the
	// reason in the report, when network namespaces are not available.
	Faults []FaultKind
	// Hold of a fault and quiet time after it (uniform ranges).
	HoldMin, HoldMax, GapMin, GapMax time.Duration
	// Network: "auto" (namespaces if possible, else loopback), "netns"
	// (fail without) or "loopback".
	Network string
	// ServeArgs are every node's serve flags besides its addresses.
	ServeArgs []string
	// Workload sizes the clients.
	Workload WorkloadConfig
	// Recover: the workload keeps going this long after the final heal.
	Recover time.Duration
	// ReadyTimeout bounds waits for nodes (start-up, heals).
	ReadyTimeout time.Duration
	// LinTimeout bounds porcupine on one piece of a lin queue (see
	// LinPieces); a piece not decided by then fails the run.
	LinTimeout time.Duration
	// LinBudget bounds the linearizability check as a whole (0:
	// unbounded); pieces not checked by then fail the run.
	LinBudget time.Duration
	// KeepData keeps the nodes' data directories.
	KeepData bool
	// Secure runs the cluster secured (TLS, mutual TLS between nodes,
	// gossip key, tokens; material in OutDir/certs) and the workload as a
	// client with the CA and the admin token.
	Secure bool
	// Logf receives progress lines (they also go to OutDir/chaos.log).
	Logf Logf
}

// Logf receives progress lines. Nil discards them.
type Logf func(format string, args ...any)

func (l Logf) printf(format string, args ...any) {
	if l != nil {
		l(format, args...)
	}
}

// DefaultServeArgs: raft timeouts halved (more elections per minute of
// faults), a forward timeout of 3 s, and small snapshot thresholds so that
// snapshots, log compaction and snapshot installs on restarted nodes
// happen during a run.
var DefaultServeArgs = []string{
	"--raft-heartbeat-timeout=500ms", "--raft-election-timeout=500ms", "--raft-leader-lease-timeout=250ms",
	"--forward-timeout=3s",
	"--raft-snapshot-threshold=1024", "--raft-trailing-logs=512", "--raft-snapshot-interval=5s",
	"--log-level=info",
}

// DefaultConfig returns the short schedule, for CI (about 90 s of faults,
// 2-3 minutes in all): faults held 3-8 s, 3-6 s apart, on 3 nodes that
// membership changes keep between 3 and 5, network namespaces when
// available, DefaultServeArgs, DefaultWorkloadConfig, 10 s of recovery,
// 60 s for nodes to be ready, 30 s for porcupine per piece of a lin queue
// and 10 minutes for the whole linearizability check.
func DefaultConfig() Config {
	return Config{
		Duration: 90 * time.Second,
		HoldMin:  3 * time.Second, HoldMax: 8 * time.Second, GapMin: 3 * time.Second, GapMax: 6 * time.Second,
		Nodes: 3, MaxNodes: 5,
		Network:      "auto",
		ServeArgs:    DefaultServeArgs,
		Workload:     DefaultWorkloadConfig(),
		Recover:      10 * time.Second,
		ReadyTimeout: 60 * time.Second,
		LinTimeout:   30 * time.Second,
		LinBudget:    10 * time.Minute,
	}
}

// LongConfig is DefaultConfig with the long schedule of `make chaos`: 38
// minutes of faults, held 2-8 s, 2-5 s apart, which comes to 200 faults
// or more with the time restarts take, and about 45 minutes in all.
func LongConfig() Config {
	c := DefaultConfig()
	c.Duration = 38 * time.Minute
	c.HoldMin, c.HoldMax, c.GapMin, c.GapMax = 2*time.Second, 8*time.Second, 2*time.Second, 5*time.Second
	return c
}

// Short and Long are the two standard schedules.
var (
	Short = DefaultConfig()
	Long  = LongConfig()
)

// ErrInvalid marks a Config that Validate refuses.
var ErrInvalid = errors.New("chaos: invalid configuration")

// Validate reports the first problem of c, wrapping ErrInvalid.
func (c Config) Validate() error {
	var err error
	switch {
	case c.Duration <= 0:
		err = fmt.Errorf("duration %v must be positive", c.Duration)
	case c.HoldMin <= 0 || c.HoldMax < c.HoldMin || c.GapMin <= 0 || c.GapMax < c.GapMin:
		err = fmt.Errorf("holds %v-%v and gaps %v-%v: want 0 < min <= max", c.HoldMin, c.HoldMax, c.GapMin, c.GapMax)
	case c.Nodes < 1 || c.MinNodes < 0 || c.MinNodes > c.Nodes || c.MaxNodes < c.Nodes:
		err = fmt.Errorf("nodes %d (min %d, max %d): want 1 <= min <= nodes <= max", c.Nodes, c.MinNodes, c.MaxNodes)
	case c.Network != "auto" && c.Network != "netns" && c.Network != "loopback":
		err = fmt.Errorf("network %q: want auto, netns or loopback", c.Network)
	case c.Recover <= 0 || c.ReadyTimeout <= 0 || c.LinTimeout <= 0:
		err = fmt.Errorf("recover %v, ready timeout %v and lin timeout %v must be positive", c.Recover, c.ReadyTimeout, c.LinTimeout)
	default:
		for _, f := range c.Faults {
			if !slices.Contains(FaultKinds(), f) {
				return fmt.Errorf("%w: fault %q: want one of %v", ErrInvalid, f, FaultKinds())
			}
		}
		return c.Workload.Validate()
	}
	return fmt.Errorf("%w: %v", ErrInvalid, err)
}

// FaultKinds lists the kinds of AllFaults, the values Config.Faults takes.
func FaultKinds() []FaultKind {
	kinds := make([]FaultKind, len(AllFaults))
	for i, f := range AllFaults {
		kinds[i] = f.Kind
	}
	return kinds
}

// Run carries out one chaos run: start the cluster, run the workload
// under the nemesis for Duration, heal everything, let the cluster
// recover and drain, check, and write the report. The error is for runs
// that could not be carried out (no binary, the cluster never formed);
// violations are in the report (Report.OK false). Everything it started
// (processes, namespaces) is gone when it returns.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MinNodes == 0 {
		cfg.MinNodes = cfg.Nodes
	}
	if cfg.Binary == "" {
		return nil, errors.New("chaos: Config.Binary is required")
	}
	if cfg.OutDir == "" {
		cfg.OutDir = filepath.Join("chaos-out", fmt.Sprintf("%s-seed%d", time.Now().Format("20060102-150405"), cfg.Seed))
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, err
	}
	// A run starts from empty data directories: nodes left by an earlier
	// run over the same OutDir hold its configuration, with addresses of
	// its network.
	if err := os.RemoveAll(filepath.Join(cfg.OutDir, "nodes")); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(cfg.OutDir, "chaos.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	var logMu sync.Mutex
	logf := Logf(func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(logFile, "%s %s\n", time.Now().Format("15:04:05.000"), line)
		cfg.Logf.printf("%s", line)
	})

	rep = &Report{Seed: cfg.Seed, Started: time.Now(), Duration: cfg.Duration, OutDir: cfg.OutDir,
		FaultCounts: map[FaultKind]int{}, Skipped: map[FaultKind]string{}}
	plan := Plan(ScheduleConfig{Seed: cfg.Seed, Duration: cfg.Duration, Faults: cfg.Faults,
		HoldMin: cfg.HoldMin, HoldMax: cfg.HoldMax, GapMin: cfg.GapMin, GapMax: cfg.GapMax})
	rep.Plan = plan

	// Network.
	var nn *netns.Net
	switch cfg.Network {
	case "loopback":
		rep.Network, rep.NetworkNote = "loopback", "partition faults skipped: --network=loopback"
	case "auto", "netns":
		nn, err = netns.New(netns.Logf(logf))
		if err != nil {
			if cfg.Network == "netns" {
				return nil, err
			}
			rep.Network, rep.NetworkNote = "loopback", "partition faults skipped: "+err.Error()
			nn = nil
		} else {
			rep.Network = "netns " + nn.Tag()
			defer func() {
				if err := nn.Close(); err != nil {
					logf("cleanup: %v", err)
				}
			}()
		}
	default:
		return nil, fmt.Errorf("chaos: network %q: want auto, netns or loopback", cfg.Network)
	}
	if rep.NetworkNote != "" {
		logf("%s", rep.NetworkNote)
	}

	// Cluster.
	nodesDir := filepath.Join(cfg.OutDir, "nodes")
	// Nodes get process groups of their own: a Ctrl-C reaches this
	// process alone, which kills them before it returns.
	copts := testkit.ClusterOptions{Binary: cfg.Binary, Dir: nodesDir, ServeArgs: cfg.ServeArgs, Net: nn, Lifetime: testkit.OwnGroup, Logf: testkit.Logf(logf)}
	if cfg.Secure {
		if copts.Security, err = testkit.OpenSecurity(filepath.Join(cfg.OutDir, "certs")); err != nil {
			return nil, fmt.Errorf("chaos: secure: %w", err)
		}
		if cfg.Workload.TLS, err = client.TLSConfig(copts.Security.CAFile); err != nil {
			return nil, fmt.Errorf("chaos: secure: %w", err)
		}
		cfg.Workload.Token = copts.Security.Token
		rep.Secure = true
	}
	c, err := testkit.NewCluster(copts)
	if err != nil {
		return nil, err
	}
	defer c.Close() // before nn.Close (defers run last-in first-out)
	logf("starting %d nodes (%s), seed %d, %v of faults", cfg.Nodes, rep.Network, cfg.Seed, cfg.Duration)
	if err := c.Start(ctx, cfg.Nodes, cfg.ReadyTimeout); err != nil {
		rep.Nodes = nodeInfos(c)
		return rep, fmt.Errorf("chaos: the cluster did not form: %w (logs in %s)", err, nodesDir)
	}
	h := NewHistory()
	rep.Epoch = h.Started()
	logf("cluster formed")

	// Workload and nemesis.
	wctx, abort := context.WithCancel(ctx)
	defer abort()
	w := NewWorkload(cfg.Workload, cfg.Seed, c, h)
	w.Start(wctx)
	hostile := NewHostile(cfg.Workload, c, h, logf)
	hostile.Start(wctx)
	defer hostile.Stop() // closes what is still open on an early return
	nem := &Nemesis{C: c, Net: nn, H: h, Seed: cfg.Seed, MinNodes: cfg.MinNodes, MaxNodes: cfg.MaxNodes, ReadyTimeout: cfg.ReadyTimeout, Logf: logf}
	nem.Run(ctx, plan)
	logf("schedule done after %v; healing everything", h.Now().Round(time.Second))
	heal := nem.HealAll(ctx, 2*cfg.ReadyTimeout)
	rep.Faults = append(nem.Events, heal)
	if nn == nil {
		for _, f := range AllFaults {
			if strings.HasPrefix(string(f.Kind), partitionPrefix) {
				rep.Skipped[f.Kind] = rep.NetworkNote
			}
		}
	}
	for _, ev := range nem.Events {
		if ev.Skipped != "" {
			if _, ok := rep.Skipped[ev.Kind]; !ok {
				rep.Skipped[ev.Kind] = ev.Skipped
			}
			continue
		}
		rep.FaultCounts[ev.Kind]++
	}

	// Recovery: the workload goes on against the healed cluster.
	healedAt := h.Now()
	hold(ctx, cfg.Recover)
	if cfg.Workload.Publishers > 0 || cfg.Workload.StalledSubs > 0 {
		for _, p := range w.ProbePubs() {
			logf("probe /pub to %s: %s %s in %v, %d subscribers", p.Node, p.Outcome, p.Code, p.Latency().Round(time.Millisecond), p.Subscribers)
		}
	}
	logf("stopping the workload")
	w.StopProducers()
	w.StopLin()
	w.StopConsumers()
	w.StopPublishers()

	// Drain.
	maxDelay := time.Duration(0)
	for _, d := range w.cfg.Delays {
		maxDelay = max(maxDelay, d)
	}
	drainErr := w.Drain(ctx, w.cfg.Lease+maxDelay+w.cfg.NackDelay+90*time.Second)
	linQueues := linQueueNames(h.Lin)
	linDrainErr := w.DrainLin(ctx, linQueues, 90*time.Second)
	logf("drained (work: %v, lin: %v)", errOrOK(drainErr), errOrOK(linDrainErr))
	psStats, psErrs := pubsubStats(ctx, c)
	hostile.Stop()
	abort()

	// Checks.
	rep.Checks = CheckAll(h, drainErr == nil)
	logf("checking linearizability of %d lin queues", len(linQueues))
	rep.Lin = CheckLinearizableWithin(h.Lin, cfg.LinTimeout, cfg.LinBudget, cfg.Workload.MGetCap, cfg.OutDir)
	rep.Checks = append(rep.Checks, LinCheck(rep.Lin))
	rep.Checks = append(rep.Checks, checkMGetCap(h, cfg.Workload.MGetCap))
	rep.Checks = append(rep.Checks, checkPubLatency(h, rep.Faults, cfg.Workload.LatencyBound))
	rep.Checks = append(rep.Checks, checkServed(h, rep.Faults, cfg.Workload.LatencyBound))
	rep.Hostile = hostileReport(h, cfg.Workload, rep.Faults)
	rep.Hostile.PubsubStats, rep.Hostile.PubsubStatsErrors = psStats, psErrs
	rep.Checks = append(rep.Checks, checkConverge(ctx, c, append([]string{WorkQueue}, linQueues...)))
	rep.Checks = append(rep.Checks, checkRecovery(h, heal, healedAt, drainErr, linDrainErr))
	rep.Checks = append(rep.Checks, checkNoCrash(c.Nodes()))
	rep.Ops = opCounts(h)
	rep.Nodes = nodeInfos(c)
	rep.OK = true
	for _, ch := range rep.Checks {
		rep.OK = rep.OK && ch.Pass
	}
	rep.Finished = time.Now()

	// Files.
	if f, err := os.Create(filepath.Join(cfg.OutDir, "history.jsonl")); err == nil {
		h.WriteJSONL(json.NewEncoder(f))
		f.Close()
	}
	if err := rep.WriteJSON(filepath.Join(cfg.OutDir, "report.json")); err != nil {
		logf("writing the report: %v", err)
	}
	c.Close()
	if !cfg.KeepData && rep.OK {
		for _, nd := range c.Nodes() {
			os.RemoveAll(nd.DataDir)
		}
	}
	return rep, nil
}

func errOrOK(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func linQueueNames(ops []LinOp) []string {
	seen := map[string]bool{}
	var r []string
	for _, op := range ops {
		if !seen[op.Queue] {
			seen[op.Queue] = true
			r = append(r, op.Queue)
		}
	}
	sort.Strings(r)
	return r
}

// convergeWait bounds checkConverge as a whole: it waits once for every
// member to match the leader, then reports what still differs. A member
// that is down, or one that never answers, cannot hold the check up.
const convergeWait = 60 * time.Second

// checkConverge: once drained, every member holds the same data as the
// leader: for each queue, its local (stale=1) /dump and /stats equal the
// leader's linearizable ones, within convergeWait for all of them.
func checkConverge(ctx context.Context, c *testkit.Cluster, queues []string) CheckResult {
	ch := CheckResult{Name: CheckConverge}
	ctx, cancel := context.WithTimeout(ctx, convergeWait)
	defer cancel()
	l, err := c.Leader(ctx)
	if err != nil {
		ch.violation("no agreed leader to compare with: %v", err)
		return ch.done()
	}
	type comparison struct {
		nd         *testkit.Node
		path, want string
		query      url.Values
		got        string
		err        error
	}
	var pending []*comparison
	for _, q := range queues {
		for _, path := range []string{"/dump", "/stats"} {
			v := url.Values{"queue": {q}}
			if path == "/stats" {
				v.Set("format", "json")
				v.Set("extended", "1") // all the counters, not only the six
			}
			want, code, err := l.Call(ctx, http.MethodGet, l.QueueURL+path+"?"+v.Encode())
			if err != nil || code != http.StatusOK {
				ch.violation("%s?%s on the leader %s: %d %v", path, v.Encode(), l.ID, code, err)
				continue
			}
			v.Set("stale", "1")
			for _, nd := range c.Members() {
				ch.Checked++
				if !nd.Running() || nd.Paused() {
					ch.violation("%s: not running, so it cannot hold %s?%s", nd.ID, path, v.Encode())
					continue
				}
				pending = append(pending, &comparison{nd: nd, path: path, want: want, query: v})
			}
		}
	}
	// One wait for all: each round asks again only what still differs.
	testkit.Poll(ctx, convergeWait, "the members converged", func(ctx context.Context) error {
		var left []*comparison
		for _, p := range pending {
			body, code, err := p.nd.Call(ctx, http.MethodGet, p.nd.QueueURL+p.path+"?"+p.query.Encode())
			switch {
			case err != nil:
				p.err = err
			case code != http.StatusOK:
				p.err = fmt.Errorf("%d %s", code, strings.TrimSpace(body))
			case body != p.want:
				p.got, p.err = body, errors.New("differs")
			default:
				continue
			}
			left = append(left, p)
		}
		pending = left
		if len(pending) > 0 {
			return fmt.Errorf("%d comparisons differ", len(pending))
		}
		return nil
	})
	for _, p := range pending {
		ch.violation("%s: %s?%s is %s, the leader %s has %s (%v, after the check's wait of %v)",
			p.nd.ID, p.path, p.query.Encode(), abbrev(p.got), l.ID, abbrev(p.want), p.err, convergeWait)
	}
	return ch.done()
}

func abbrev(s string) string {
	if len(s) > 160 {
		return fmt.Sprintf("%q... (%d bytes)", s[:160], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// checkRecovery: after the final heal every member is ready under one
// leader with all members as voters, producers get puts acknowledged
// again, and both drains finish.
func checkRecovery(h *History, heal FaultEvent, healedAt time.Duration, drainErr, linDrainErr error) CheckResult {
	c := CheckResult{Name: CheckRecovery, Checked: 4}
	if heal.Error != "" {
		c.violation("final heal: %s", heal.Error)
	}
	after := 0
	for _, p := range h.Puts {
		if p.Final == OK && p.Attempts[len(p.Attempts)-1].Start >= healedAt {
			after++
		}
	}
	if after == 0 {
		c.violation("no put was acknowledged after the final heal at %s", at(healedAt))
	}
	c.note("%d puts acknowledged after the final heal", after)
	if drainErr != nil {
		c.violation("%v", drainErr)
	}
	if linDrainErr != nil {
		c.violation("%v", linDrainErr)
	}
	return c.done()
}

// pubsubStats asks every member for its pubsub /stats?format=json.
func pubsubStats(ctx context.Context, c *testkit.Cluster) (map[string]map[string]int64, map[string]string) {
	stats, errs := map[string]map[string]int64{}, map[string]string{}
	for _, nd := range c.Members() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		body, code, err := nd.Call(sctx, http.MethodGet, nd.PubsubURL+"/stats?format=json")
		cancel()
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("%d %s", code, strings.TrimSpace(body))
		}
		var st map[string]int64
		if err == nil {
			err = json.Unmarshal([]byte(body), &st)
		}
		if err != nil {
			errs[nd.ID] = err.Error()
			continue
		}
		stats[nd.ID] = st
	}
	return stats, errs
}

// nodeInfos lists every node of the run with its log.
func nodeInfos(c *testkit.Cluster) []NodeInfo {
	var r []NodeInfo
	for _, nd := range c.Nodes() {
		r = append(r, NodeInfo{ID: nd.ID, Log: nd.LogPath, Starts: nd.Starts(), Left: nd.Left(), QueueURL: nd.QueueURL})
	}
	return r
}
