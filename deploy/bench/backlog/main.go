// Command backlog measures a backlog larger than the node's memory: it
// fills one node, started with GOMEMLIMIT, with many small messages
// through /mput while it samples the node's RSS, restarts it after
// SIGKILL and times it to ready, then drains the queue and checks that
// every message comes out intact and in order. With --followers it then
// fills a three-node cluster, replaces a follower by a new node with an
// empty data directory, and times its catch-up.
//
//	go run ./deploy/bench/backlog --messages=20000000 --out=docs/BACKLOG.md
//
// Every record is "P:SEQ:FILLER:CRC": producer, sequence number, filler
// up to --size bytes and the CRC-32 of what precedes it, so a damaged,
// lost, repeated or reordered message shows.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/testkit"
)

type options struct {
	binary    string
	work      string
	out       string
	messages  int
	size      int
	batch     int
	producers int
	memLimit  string
	followers bool
	serveArgs []string
}

func main() {
	var o options
	var extra string
	flag.StringVar(&o.binary, "quorumq", "", "quorumq binary (default: build one)")
	flag.StringVar(&o.work, "work", "", "directory for the data directories (default: a temporary one, removed afterwards)")
	flag.StringVar(&o.out, "out", "", "also write the report (Markdown) to this file")
	flag.IntVar(&o.messages, "messages", 20_000_000, "messages to put")
	flag.IntVar(&o.size, "size", 100, "bytes per message (at least 40)")
	flag.IntVar(&o.batch, "batch", 10_000, "messages per /mput")
	flag.IntVar(&o.producers, "producers", 4, "concurrent /mput clients")
	flag.StringVar(&o.memLimit, "memlimit", "1GiB", "GOMEMLIMIT of the nodes")
	flag.BoolVar(&o.followers, "followers", true, "also run the three-node part: a follower replaced by an empty one catches up")
	flag.StringVar(&extra, "serve-args", "", "extra flags for every node, space-separated")
	flag.Parse()
	o.serveArgs = strings.Fields(extra)
	if o.size < 40 || o.batch <= 0 || o.producers <= 0 || o.messages < o.producers {
		fmt.Fprintln(os.Stderr, "backlog: --size must be at least 40, --batch and --producers positive, --messages at least --producers")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "backlog:", err)
		os.Exit(1)
	}
}

func logf(format string, a ...any) {
	fmt.Printf("%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}

func run(o options) error {
	ctx := context.Background()
	if o.binary == "" {
		bin, err := testkit.BuildOnce()
		if err != nil {
			return err
		}
		defer testkit.RemoveBuilt()
		o.binary = bin
	}
	if o.work == "" {
		dir, err := os.MkdirTemp("", "backlog-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.work = dir
	}
	// The nodes inherit it.
	if err := os.Setenv("GOMEMLIMIT", o.memLimit); err != nil {
		return err
	}
	var rep strings.Builder
	args := ""
	if len(o.serveArgs) > 0 {
		args = " and `" + strings.Join(o.serveArgs, " ") + "`"
	}
	fmt.Fprintf(&rep, "# A backlog larger than memory\n\nMeasured by `go run ./deploy/bench/backlog %s` on %s: %d messages of %d bytes (%s of payload) through `/mput` batches of %d from %d clients, nodes run with `GOMEMLIMIT=%s`%s.\n\n",
		strings.Join(os.Args[1:], " "), time.Now().UTC().Format("2006-01-02 15:04 MST"), o.messages, o.size,
		api.FormatBytes(int64(o.messages)*int64(o.size)), o.batch, o.producers, o.memLimit, args)
	fmt.Fprintf(&rep, "RSS is the node's VmRSS, sampled every 100 ms; anonymous is its RssAnon, the memory the process owns, without the pages of files it maps (raft-boltdb maps its log file: those pages are page cache the kernel can take back).\n\n")
	if err := oneNode(ctx, o, &rep); err != nil {
		return err
	}
	if o.followers {
		if err := threeNodes(ctx, o, &rep); err != nil {
			return err
		}
	}
	fmt.Println()
	fmt.Print(rep.String())
	if o.out != "" {
		return os.WriteFile(o.out, []byte(rep.String()), 0o644)
	}
	return nil
}

func newCluster(o options, name string) (*testkit.Cluster, error) {
	args := append([]string{"--log-level=warn"}, o.serveArgs...)
	return testkit.NewCluster(testkit.ClusterOptions{Binary: o.binary, Dir: filepath.Join(o.work, name), ServeArgs: args,
		Logf: func(format string, a ...any) { logf(format, a...) }})
}

func oneNode(ctx context.Context, o options, rep *strings.Builder) error {
	c, err := newCluster(o, "one")
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Start(ctx, 1, time.Minute); err != nil {
		return err
	}
	n := c.Nodes()[0]
	rss := startRSS(n)
	defer rss.stop()

	// The first million alone, then the RSS it holds once the collector
	// has caught up.
	first := min(1_000_000, o.messages)
	if _, err := fill(ctx, o, n, 0, first); err != nil {
		return err
	}
	time.Sleep(3 * time.Second) // let a collection run: the figure is what stays
	rssAt1M := rss.now()
	logf("%d queued: RSS %s", first, rssAt1M)

	t0 := time.Now()
	sent, err := fill(ctx, o, n, first, o.messages)
	if err != nil {
		return err
	}
	fillTime := time.Since(t0)
	peakFill := rss.peak()
	logf("%d queued: RSS %s, peak %s, %.0f msgs/s", o.messages, rss.now(), peakFill, float64(sent)/fillTime.Seconds())
	disk := dirSize(filepath.Join(o.work, "one"))

	n.Kill()
	t1 := time.Now()
	if err := n.Start(); err != nil {
		return err
	}
	rss.follow(n)
	if err := n.WaitReady(ctx, 5*time.Minute); err != nil {
		return err
	}
	restart := time.Since(t1)
	logf("restart after SIGKILL: ready in %v", restart.Round(time.Millisecond))
	rssRestart := rss.now()

	t2 := time.Now()
	got, err := drain(ctx, o, n)
	if err != nil {
		return err
	}
	drainTime := time.Since(t2)
	logf("drained %d messages in %v, all intact and in order; peak RSS %s", got, drainTime.Round(time.Millisecond), rss.peak())

	fmt.Fprintf(rep, "## One node\n\n| what | measured |\n|---|---|\n")
	fmt.Fprintf(rep, "| RSS with %d messages queued | %s |\n", first, rssAt1M)
	if o.messages > first {
		fmt.Fprintf(rep, "| put through `/mput` after those | %d messages in %v, %.0f msgs/s |\n", o.messages-first, fillTime.Round(time.Millisecond), float64(o.messages-first)/fillTime.Seconds())
	}
	fmt.Fprintf(rep, "| peak RSS while filling | %s |\n", peakFill)
	fmt.Fprintf(rep, "| data directory when full | %s |\n", api.FormatBytes(disk))
	fmt.Fprintf(rep, "| restart after SIGKILL to ready (`/readyz`) | %v (RSS then %s) |\n", restart.Round(time.Millisecond), rssRestart)
	fmt.Fprintf(rep, "| drain through `/mget?items=1000`, one client | %d messages in %v, every one intact and in its producer's order |\n", got, drainTime.Round(time.Millisecond))
	fmt.Fprintf(rep, "| peak RSS over the whole run | %s |\n\n", rss.peak())
	return nil
}

func threeNodes(ctx context.Context, o options, rep *strings.Builder) error {
	c, err := newCluster(o, "three")
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Start(ctx, 3, time.Minute); err != nil {
		return err
	}
	leader, err := c.Leader(ctx)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if _, err := fill(ctx, o, leader, 0, o.messages); err != nil {
		return err
	}
	fillTime := time.Since(t0)
	logf("3 nodes: %d queued in %v", o.messages, fillTime.Round(time.Millisecond))
	followers, err := c.Followers(ctx)
	if err != nil {
		return err
	}
	old := followers[0]
	if err := old.Leave(ctx); err != nil {
		return fmt.Errorf("%s leave: %w", old.Name(), err)
	}
	if _, err := old.WaitExit(time.Minute); err != nil {
		return err
	}
	if err := os.RemoveAll(old.DataDir); err != nil {
		return err
	}
	t1 := time.Now()
	nd, err := c.AddNode()
	if err != nil {
		return err
	}
	rss := startRSS(nd)
	defer rss.stop()
	want, err := leader.Status(ctx)
	if err != nil {
		return err
	}
	for {
		st, err := nd.Status(ctx)
		if err == nil && st.AppliedIndex >= want.CommitIndex {
			break
		}
		if time.Since(t1) > 30*time.Minute {
			return fmt.Errorf("%s did not catch up in 30 minutes: %+v %v", nd.Name(), st, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	catchUp := time.Since(t1)
	byTransfer := metric(ctx, nd, `quorumq_snapshot_restores_total{kind="segments"}`)
	logf("new node %s caught up in %v (snapshots taken up with their segments: %s), peak RSS %s", nd.Name(), catchUp.Round(time.Millisecond), byTransfer, rss.peak())
	// A consistent read of the whole queue on the new node, compared with
	// the leader's.
	a, err := dumpDigest(ctx, nd)
	if err != nil {
		return err
	}
	b, err := dumpDigest(ctx, leader)
	if err != nil {
		return err
	}
	if a != b {
		return fmt.Errorf("the new node's /dump (%s) differs from the leader's (%s)", a, b)
	}
	logf("its /dump equals the leader's: %s", a)
	fmt.Fprintf(rep, "## Three nodes: a follower replaced by an empty one\n\n| what | measured |\n|---|---|\n")
	fmt.Fprintf(rep, "| fill through the leader | %d messages in %v, %.0f msgs/s |\n", o.messages, fillTime.Round(time.Millisecond), float64(o.messages)/fillTime.Seconds())
	fmt.Fprintf(rep, "| a follower leaves; a new node with an empty data directory joins and applies the leader's commit index | %v; snapshots it took up with their segments: %s |\n", catchUp.Round(time.Millisecond), byTransfer)
	fmt.Fprintf(rep, "| peak RSS of the new node while catching up | %s |\n", rss.peak())
	fmt.Fprintf(rep, "| `/dump` on the new node (a consistent read) | equal to the leader's: %s |\n\n", a)
	return nil
}

// record is message seq of producer p, o.size bytes with its checksum.
func record(buf []byte, p, seq, size int) []byte {
	start := len(buf)
	buf = strconv.AppendInt(buf, int64(p), 10)
	buf = append(buf, ':')
	buf = strconv.AppendInt(buf, int64(seq), 10)
	buf = append(buf, ':')
	for len(buf)-start < size-9 {
		buf = append(buf, byte('a'+(seq+len(buf))%26))
	}
	buf = append(buf, ':')
	return fmt.Appendf(buf, "%08x", crc32.ChecksumIEEE(buf[start:]))
}

// check parses an intact record, or says what is wrong with it.
func check(rec []byte) (p, seq int, err error) {
	i := bytes.LastIndexByte(rec, ':')
	if i < 0 || fmt.Sprintf("%08x", crc32.ChecksumIEEE(rec[:i+1])) != string(rec[i+1:]) {
		return 0, 0, fmt.Errorf("damaged record %.60q", rec)
	}
	parts := bytes.SplitN(rec, []byte(":"), 3)
	p, err1 := strconv.Atoi(string(parts[0]))
	seq, err2 := strconv.Atoi(string(parts[1]))
	return p, seq, errors.Join(err1, err2)
}

// fill puts messages [from, to) of the global sequence, spread over the
// producers: producer p sends those with index % producers == p, in order.
func fill(ctx context.Context, o options, n *testkit.Node, from, to int) (int, error) {
	var sent atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, o.producers)
	client := &http.Client{Timeout: 2 * time.Minute}
	for p := range o.producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body []byte
			seq := (from + o.producers - 1 - p) / o.producers // first index >= from with index % producers == p
			for {
				body = body[:0]
				k := 0
				for ; k < o.batch && seq*o.producers+p < to; k++ {
					if k > 0 {
						body = append(body, '\n')
					}
					body = record(body, p, seq, o.size)
					seq++
				}
				if k == 0 {
					return
				}
				if err := post(ctx, client, n.QueueURL+"/mput?queue=backlog", body); err != nil {
					errc <- err
					return
				}
				sent.Add(int64(k))
			}
		}()
	}
	wg.Wait()
	close(errc)
	return int(sent.Load()), <-errc
}

func post(ctx context.Context, c *http.Client, url string, body []byte) error {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			return nil
		case resp.Header.Get(api.HeaderErrorCode) == "NO_LEADER" && attempt < 20:
			// An election: nothing was stored, so the /mput is retried.
			time.Sleep(time.Second)
		default:
			return fmt.Errorf("mput: %d %s", resp.StatusCode, bytes.TrimSpace(msg))
		}
	}
}

// drain pops the whole queue with /mget and checks every record: intact,
// and each producer's sequence complete and in order.
func drain(ctx context.Context, o options, n *testkit.Node) (int, error) {
	next := make([]int, o.producers)
	client := &http.Client{Timeout: 2 * time.Minute}
	got := 0
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.QueueURL+"/mget?queue=backlog&items=1000", nil)
		if err != nil {
			return got, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return got, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return got, err
		}
		if resp.StatusCode != http.StatusOK {
			return got, fmt.Errorf("mget: %d %s", resp.StatusCode, bytes.TrimSpace(body))
		}
		if len(body) == 0 {
			break
		}
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			p, seq, err := check(sc.Bytes())
			if err != nil {
				return got, err
			}
			if p < 0 || p >= o.producers || seq != next[p] {
				return got, fmt.Errorf("producer %d: message %d came when %d was due", p, seq, next[p%o.producers])
			}
			next[p]++
			got++
		}
	}
	if got != o.messages {
		return got, fmt.Errorf("drained %d messages, put %d", got, o.messages)
	}
	return got, nil
}

// dumpDigest is the count and CRC-32 of a node's /dump of the queue.
func dumpDigest(ctx context.Context, n *testkit.Node) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.QueueURL+"/dump?queue=backlog", nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Minute}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s /dump: %d", n.Name(), resp.StatusCode)
	}
	h := crc32.NewIEEE()
	lines := 0
	br := bufio.NewReaderSize(resp.Body, 1<<20)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			h.Write(line)
			lines++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%d messages, CRC-32 %08x", lines, h.Sum32()), nil
}

// metric is the value of one sample of n's /metrics, as written there.
func metric(ctx context.Context, n *testkit.Node, sample string) string {
	body, _, err := n.Call(ctx, http.MethodGet, n.QueueURL+"/metrics")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	return "none"
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// rssSampler reads a node's VmRSS every 100 ms and keeps the peak.
type rssSampler struct {
	mu         sync.Mutex
	pid        int
	last, max  int64 // VmRSS
	anon, amax int64 // RssAnon: the process's own memory, without mapped files
	done       chan struct{}
}

func startRSS(n *testkit.Node) *rssSampler {
	s := &rssSampler{pid: n.PID(), done: make(chan struct{})}
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
				s.mu.Lock()
				s.sample()
				s.mu.Unlock()
			}
		}
	}()
	return s
}

// follow samples n's process again (after a restart).
func (s *rssSampler) follow(n *testkit.Node) {
	s.mu.Lock()
	s.pid = n.PID()
	s.mu.Unlock()
}

func (s *rssSampler) sample() {
	if v, a := readRSS(s.pid); v > 0 {
		s.last, s.anon = v, a
		s.max, s.amax = max(s.max, v), max(s.amax, a)
	}
}

// now is the RSS now, as "VmRSS (RssAnon anonymous)".
func (s *rssSampler) now() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sample()
	return rssString(s.last, s.anon)
}

// peak is the highest RSS and anonymous RSS sampled.
func (s *rssSampler) peak() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return rssString(s.max, s.amax)
}

func rssString(rss, anon int64) string {
	return fmt.Sprintf("%s (anonymous %s)", api.FormatBytes(rss), api.FormatBytes(anon))
}

func (s *rssSampler) stop() { close(s.done) }

// readRSS returns VmRSS and RssAnon of a process, in bytes.
func readRSS(pid int) (rss, anon int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	kb := func(v string) int64 {
		n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		return n << 10
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rss = kb(v)
		} else if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			anon = kb(v)
		}
	}
	return rss, anon
}
