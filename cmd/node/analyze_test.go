package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"math/big"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/analytics"
	"github.com/quorumq/quorumq/analytics/redistest"
	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/node"
	"github.com/quorumq/quorumq/internal/node/nodetest"
	"github.com/quorumq/quorumq/internal/tutorial/gen"
)

// helperEnv makes the test binary run `quorumq analyze` (or gen) with the
// arguments in helperArgs instead of the tests: the multi-process tests
// start it as their reader processes.
const (
	helperEnv  = "ANALYZE_TEST_HELPER"
	helperArgs = "ANALYZE_TEST_ARGS"
)

// TestAnalyzeHelperProcess is not a test: it is the entry point of the
// child processes of the multi-process tests (see helperEnv).
func TestAnalyzeHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		return
	}
	args := strings.Split(os.Getenv(helperArgs), "\x1f")
	switch args[0] {
	case "gen":
		os.Exit(runGen(args[1:], os.Stdout, os.Stderr))
	default:
		os.Exit(runAnalyze(args, os.Stdout, os.Stderr))
	}
}

// helperCmd returns the command that runs `quorumq args...` in a child.
func helperCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestAnalyzeHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1", helperArgs+"="+strings.Join(args, "\x1f"))
	return cmd
}

// startCluster starts n nodes in process that form one cluster and
// returns their queue-port URLs once every node is ready.
func startCluster(t *testing.T, n int) []string {
	t.Helper()
	var servers []*node.Server
	for _, cfg := range nodetest.ClusterConfigs(t, n) {
		servers = append(servers, nodetest.Start(t, cfg))
	}
	var urls []string
	for _, s := range servers {
		nodetest.WaitReady(t, s)
		urls = append(urls, "http://"+s.QueueAddr)
	}
	return urls
}

// Test_Analyze_ThreeProcessesCountExactly: three `quorumq analyze moments`
// processes, each pointed at a different node of a three-node cluster,
// drain one queue of 20,000 numbers (put by `quorumq gen random` into
// /mput) into one Redis hash: n is exactly 20,000, mean and M2 agree with
// a two-pass computation to 1e-12 and 1e-8 relative, and each process
// exits 0 by itself once the queue is empty. It logs the throughput.
func Test_Analyze_ThreeProcessesCountExactly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster, Redis and three processes")
	}
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	urls := startCluster(t, 3)
	const total = 20000
	const seed = 2012

	// The numbers, as gen writes them.
	var out bytes.Buffer
	genArgs := []string{"random", "--dist=normal", "--mean=1e6", "--stddev=3", "--seed=" + strconv.Itoa(seed), "--n=" + strconv.Itoa(total), "--progress=0"}
	if code := runGen(append(slices.Clone(genArgs), "--to=-"), &out, io.Discard); code != 0 {
		t.Fatalf("gen to stdout: exit %d", code)
	}
	var xs []float64
	for l := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
		x, err := strconv.ParseFloat(l, 64)
		if err != nil {
			t.Fatal(err)
		}
		xs = append(xs, x)
	}
	if len(xs) != total {
		t.Fatalf("%d numbers", len(xs))
	}
	var genErr bytes.Buffer
	if code := runGen(append(genArgs, "--to="+urls[1]+"/mput?queue=nums", "--batch=500"), io.Discard, &genErr); code != 0 {
		t.Fatalf("gen to /mput: exit %d: %s", code, genErr.String())
	}
	q, _ := client.NewQueue(urls, nil)
	if st, err := q.Stats(context.Background(), "nums"); err != nil || st.Depth != total {
		t.Fatalf("queue: %+v, %v", st, err)
	}

	type proc struct {
		cmd            *exec.Cmd
		stdout, stderr bytes.Buffer
	}
	procs := make([]*proc, 3)
	start := time.Now()
	for i := range procs {
		args := []string{"moments", "--queue-addr=" + urls[i], "--queue=nums", "--redis=" + rs.URL, "--key=m",
			"--exit-when-empty", "--empty-for=2s", "--json", "--progress-interval=0", "--log-level=warn"}
		// ANALYZE_TEST_READER_FLAGS adds reader flags, to compare settings
		// (e.g. "--batch=500 --concurrency=500").
		args = append(args, strings.Fields(os.Getenv("ANALYZE_TEST_READER_FLAGS"))...)
		p := &proc{cmd: helperCmd(args...)}
		p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[i] = p
	}
	// The queue drains; the throughput is measured up to that moment.
	var drained time.Duration
	deadline := time.Now().Add(4 * time.Minute)
	for {
		st, err := q.Stats(context.Background(), "nums")
		if err == nil && st.Depth == 0 && st.InFlight == 0 {
			drained = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			for _, p := range procs {
				p.cmd.Process.Kill()
			}
			t.Fatalf("queue not drained after 4 minutes: %+v, %v", st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var merged int64
	for i, p := range procs {
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("reader %d: %v\n%s", i, err, p.stderr.String())
			}
		case <-time.After(time.Minute):
			p.cmd.Process.Kill()
			t.Fatalf("reader %d did not exit after the queue emptied\n%s", i, p.stderr.String())
		}
		var st analytics.ReaderStats
		line := p.stdout.Bytes()
		if i := bytes.LastIndexByte(bytes.TrimSpace(line), '\n'); i >= 0 {
			line = line[i+1:]
		}
		if err := json.Unmarshal(bytes.TrimSpace(line), &st); err != nil {
			t.Fatalf("reader %d stdout %q: %v", i, p.stdout.String(), err)
		}
		t.Logf("reader %d (node %d): %v", i, i+1, st)
		merged += st.Merged
	}
	t.Logf("3 analyze moments processes on a 3-node cluster: %d samples in %v = %.0f samples/s (queue drain, process start included)",
		total, drained.Round(time.Millisecond), float64(total)/drained.Seconds())
	if merged != total {
		t.Errorf("the readers merged %d messages, want %d", merged, total)
	}

	got, err := analytics.ReadMoments(context.Background(), rdb, "m")
	if err != nil {
		t.Fatal(err)
	}
	mean, m2 := exactMeanM2(xs)
	if got.N != total {
		t.Fatalf("n = %d, want exactly %d", got.N, total)
	}
	if e := math.Abs(got.Mean-mean) / math.Abs(mean); e > 1e-12 {
		t.Errorf("mean %v, two-pass %v: relative error %g", got.Mean, mean, e)
	}
	if e := math.Abs(got.M2-m2) / m2; e > 1e-8 {
		t.Errorf("M2 %v, two-pass %v: relative error %g", got.M2, m2, e)
	}

	// show prints the same state.
	var show bytes.Buffer
	if code := runAnalyze([]string{"show", "moments", "--redis=" + rs.URL, "--key=m", "--json"}, &show, io.Discard); code != 0 {
		t.Fatalf("show: exit %d", code)
	}
	var rep analytics.MomentsReport
	if err := json.Unmarshal(show.Bytes(), &rep); err != nil || rep.N != total || *rep.Mean != got.Mean {
		t.Fatalf("show: %s, %v", show.String(), err)
	}
}

// exactMeanM2 is the two-pass mean and M2 with exact (big.Float) sums.
func exactMeanM2(xs []float64) (mean, m2 float64) {
	const prec = 2000
	sum := new(big.Float).SetPrec(prec)
	for _, x := range xs {
		sum.Add(sum, big.NewFloat(x))
	}
	mb := new(big.Float).SetPrec(prec).Quo(sum, big.NewFloat(float64(len(xs))))
	acc := new(big.Float).SetPrec(prec)
	for _, x := range xs {
		d := new(big.Float).SetPrec(prec).Sub(big.NewFloat(x), mb)
		acc.Add(acc, d.Mul(d, d))
	}
	mean, _ = mb.Float64()
	m2, _ = acc.Float64()
	return mean, m2
}

// Test_AnalyzeCommand_ShowAndFlags: the show commands render what is in
// Redis, reset clears it, and bad flags are usage errors (exit 2).
func Test_AnalyzeCommand_ShowAndFlags(t *testing.T) {
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	ctx := context.Background()
	h, _ := analytics.NewHistogram(rdb, "h", analytics.HistogramLayout{Int: true})
	h.Init(ctx)
	h.AddFields(ctx, []string{"1", "2", "2", "4"})
	g := analytics.NewGraph(rdb, "g:", false)
	g.Add(ctx, []analytics.Edge{{From: "direct", To: "http://a"}, {From: "direct", To: "http://a"}, {From: "direct", To: "http://b"}})

	run := func(args ...string) (int, string, string) {
		var o, e bytes.Buffer
		code := runAnalyze(args, &o, &e)
		return code, o.String(), e.String()
	}
	code, out, errs := run("show", "histogram", "--redis="+rs.URL, "--key=h", "--cols=40")
	if code != 0 || !strings.Contains(out, "\n2 2 |"+strings.Repeat("#", 40-5)+"\n") || !strings.Contains(out, "\n3 0 |\n") {
		t.Fatalf("show histogram: %d\n%s%s", code, out, errs)
	}
	code, out, _ = run("show", "graph", "--redis="+rs.URL, "--prefix=g:", "--node=direct", "--member=http://b")
	if code != 0 || !strings.Contains(out, "2  -> http://a") || !strings.Contains(out, "http://b: rank 1") {
		t.Fatalf("show graph: %d\n%s", code, out)
	}
	code, out, _ = run("show", "graph", "--redis="+rs.URL, "--prefix=g:", "--json")
	var rep analytics.GraphReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Nodes != 1 || len(rep.Top) != 2 {
		t.Fatalf("show graph --json: %d %s", code, out)
	}
	code, out, _ = run("show", "graph", "--redis="+rs.URL, "--prefix=g:", "--format=dot")
	if code != 0 || !strings.HasPrefix(out, "digraph \"g:\" {\n") || !strings.Contains(out, `"direct" -> "http://a" [label="2"`) {
		t.Fatalf("show graph --format=dot: %d %s", code, out)
	}
	code, out, _ = run("show", "graph", "--redis="+rs.URL, "--prefix=g:", "--format=svg")
	if code != 0 || !strings.HasPrefix(out, "<svg ") || strings.Count(out, "<line ") != 2 {
		t.Fatalf("show graph --format=svg: %d %s", code, out)
	}
	if code, out, _ = run("reset", "graph", "--redis="+rs.URL, "--prefix=g:"); code != 0 || out != "deleted 1 nodes\n" {
		t.Fatalf("reset graph: %d %q", code, out)
	}
	for _, args := range [][]string{
		{},
		{"nonsense"},
		{"show"},
		{"show", "things"},
		{"graph", "--prefix="},
		{"histogram", "--bins=0"},
		{"moments", "--balance=sideways"},
		{"show", "graph", "--member=x"},
		{"show", "graph", "--top=0"},
		{"show", "graph", "--format=png"},
		{"show", "graph", "--json", "--format=dot"},
		{"show", "histogram", "--format=dot"},
		{"moments", "--batch=0"},
		{"moments", "--concurrency=-1"},
		{"moments", "--lease=0"},
		{"moments", "--flush-interval=0"},
		{"moments", "--max-tries=0"},
		{"moments", "--dedup-window=-1s"},
		{"graph", "--queue-addr="},
	} {
		if code, _, _ := run(args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	if code, _, _ := run("moments", "--redis=127.0.0.1:1"); code != 1 {
		t.Errorf("unreachable Redis: exit %d, want 1", code)
	}
}

// Test_GenCommand_Flags: gen's flags reach the generator (defaults per
// distribution, --variance, --secret revealed at exit and in a file) and
// mistakes are usage errors.
func Test_GenCommand_Flags(t *testing.T) {
	run := func(args ...string) (int, string, string) {
		var o, e bytes.Buffer
		code := runGen(args, &o, &e)
		return code, o.String(), e.String()
	}
	if code, out, _ := run("count", "--to=-", "--n=3", "--start=5"); code != 0 || out != "5\n6\n7\n" {
		t.Fatalf("count: %d %q", code, out)
	}
	code, out, _ := run("random", "--to=-", "--n=2000", "--dist=ints", "--seed=1")
	if code != 0 {
		t.Fatal(code)
	}
	for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if v, err := strconv.Atoi(l); err != nil || v < 0 || v > 9 {
			t.Fatalf("ints default range: %q", l)
		}
	}
	_, out, errs := run("random", "--to=-", "--n=1", "--dist=normal", "--variance=16", "--seed=1")
	if !strings.Contains(errs, "stddev=4") {
		t.Fatalf("--variance: %s", errs)
	}
	_ = out
	file := t.TempDir() + "/secret"
	code, _, errs = run("random", "--to=-", "--n=10", "--secret", "--secret-file="+file, "--seed=9", "--progress=0")
	secret, _ := os.ReadFile(file)
	if code != 0 || !strings.Contains(errs, "the secret was "+strings.TrimSpace(string(secret))) || !strings.Contains(string(secret), "variance=") {
		t.Fatalf("secret: %d %s / %s", code, errs, secret)
	}
	c, _ := gen.RandomDefaults("normal")
	c.Seed, c.Secret = 9, true
	g, _ := gen.NewRandom(c)
	if strings.TrimSpace(string(secret)) != g.Secret() {
		t.Fatalf("secret file %q, generator %q", secret, g.Secret())
	}
	for _, args := range [][]string{
		{},
		{"count"},
		{"count", "--to=http://h/get"},
		{"random", "--to=-", "--dist=cauchy"},
		{"random", "--to=-", "--secret", "--mean=3"},
		{"random", "--to=-", "--stddev=1", "--variance=1"},
		{"usagov", "--to=-", "--speed=-1"},
		{"nope", "--to=-"},
		{"count", "--to=-", "--batch=0"},
		{"count", "--to=-", "--rate=-1"},
		{"count", "--to=-", "--n=-1"},
		{"count", "--to=-", "--concurrency=-1"},
		{"count", "--to=-", "--retries=-2"},
	} {
		if code, _, _ := run(args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	dir := t.TempDir()
	os.WriteFile(dir+"/f.jsonl", []byte("{\"t\": 1, \"u\": \"a\"}\n{\"_heartbeat_\": 2}\n"), 0o644)
	if code, out, _ := run("usagov", "--to=-", "--file="+dir+"/f.jsonl", "--speed=0", "--skip-heartbeats"); code != 0 || out != "{\"t\": 1, \"u\": \"a\"}\n" {
		t.Fatalf("usagov file: %d %q", code, out)
	}
}
