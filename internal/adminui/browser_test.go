package adminui_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/quorumq/quorumq/analytics"
	"github.com/quorumq/quorumq/analytics/redistest"
	"github.com/quorumq/quorumq/internal/testkit"
	"github.com/quorumq/quorumq/internal/testport"
	"github.com/quorumq/quorumq/internal/testwait"
)

// update rewrites the screenshots in docs/ui (also with
// QUORUMQ_UPDATE_SCREENSHOTS=1).
var update = flag.Bool("update", false, "write the UI's screenshots to docs/ui")

// EnvChromium overrides the browser the test drives.
const EnvChromium = "QUORUMQ_CHROMIUM"

// Timeouts of the browser test: each step (a page load, a click, a
// script) is bounded by stepTimeout; each wait for the page to show
// something by waitTimeout.
const (
	stepTimeout = 30 * time.Second
	waitTimeout = 45 * time.Second
)

// sampleFile is the repository's sample of 1.usa.gov clicks.
const sampleFile = "../../data/usagov_sample.jsonl"

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	testkit.RemoveBuilt()
	os.Exit(code)
}

// need skips the test when a tool is missing, and fails it in CI, which
// installs every tool (.ci/run).
func need(t *testing.T, tool, path string) {
	t.Helper()
	if path != "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found: CI installs it", tool)
	}
	t.Skipf("%s not found: skipping the browser test", tool)
}

// chromium returns the browser to drive, or "".
func chromium() string {
	if p := os.Getenv(EnvChromium); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestBrowser_AdminUIShowsTheClusterAndActsOnIt starts a real cluster of
// three node processes with live analytics on a real Redis, fills some
// queues, feeds the 1.usa.gov sample through `quorumq analyze`, and
// drives the UI in headless Chromium: every node, queue and number is
// shown as the API answers it, the click graph is drawn, a purge and a
// dead-letter redrive made on the page take effect, and a refused action
// shows the node's error line.
func TestBrowser_AdminUIShowsTheClusterAndActsOnIt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and a browser")
	}
	browser := chromium()
	need(t, "chromium", browser)
	need(t, "redis-server", redistest.Binary())
	rs := redistest.Start(t)
	bin, kc := startCluster(t, 3, testkit.ClusterOptions{ServeArgs: []string{"--analytics-redis=" + rs.Addr}})
	ctx := context.Background()
	leader, err := kc.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	followers, err := kc.Followers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	q := leader.QueueURL

	// Queues with something in every column.
	var orders []string
	for i := range 25 {
		orders = append(orders, fmt.Sprintf("order %d <b>not bold</b>", i+1))
	}
	mustDo(t, "POST", q+"/mput?queue=orders", strings.Join(orders, "\n"))
	mustDo(t, "POST", q+"/mput?queue=emails", "a\nb\nc")
	mustDo(t, "GET", q+"/get?queue=emails&lease=10m", "")
	mustDo(t, "POST", q+"/put?queue=later&delay=10m", "soon")
	mustDo(t, "POST", q+"/mput?queue=purge-me", "1\n2\n3\n4\n5")
	mustDo(t, "POST", q+"/config?queue=jobs&max_attempts=1&dead_letter=jobs.dead&max_depth=1000", "")
	mustDo(t, "POST", q+"/mput?queue=jobs", "job-1\njob-2")
	// job-1 is nacked to death: one attempt allowed.
	_, h, _ := mustDo(t, "GET", q+"/get?queue=jobs&lease=1m", "")
	mustDo(t, "POST", q+"/nack?id="+h.Get("X-Message-Id")+"&reason="+url.QueryEscape("bad payload"), "")
	testwait.For(t, waitTimeout, "job-1 in jobs.dead", func() bool { return depth(t, q, "jobs.dead") == 1 })

	clicks := feedAnalytics(t, bin, q, rs.URL)
	t.Logf("fed %d clicks through analyze", clicks)

	b := newBrowser(t, browser)

	// Cluster, on a follower: every node, alive, and who leads.
	b.open(followers[0].QueueURL + "/ui/#/cluster")
	b.waitFor("the three members and a leader", `document.querySelectorAll('#members tbody tr').length === 3 && document.querySelector('#no-leader').hidden`)
	b.waitFor("every member's applied index and lag", `[...document.querySelectorAll('#members tbody tr')].every(tr =>
		tr.querySelector('[data-field=applied_index]').textContent !== '-' && tr.querySelector('[data-field=lag]').textContent !== '-')`)
	members := b.rows("#members tbody tr", "member")
	for _, nd := range kc.Nodes() {
		m, ok := members[nd.ID]
		if !ok || m["status"] != "alive" {
			t.Fatalf("member %s: %v (all %v)", nd.ID, m, members)
		}
		if want := map[bool]string{true: "leader", false: "follower"}[nd == leader]; m["role"] != want {
			t.Fatalf("member %s: role %q, want %q", nd.ID, m["role"], want)
		}
	}
	b.shot("cluster")

	// Queues: every queue with the numbers /queues answers.
	b.open(q + "/ui/#/queues")
	var want map[string]map[string]string
	b.waitFor("every queue with /queues's numbers", func() bool {
		want = queueCells(t, q)
		got := b.rows("#queues tbody tr", "queue")
		return equalCells(got, want)
	})
	for _, name := range []string{"orders", "emails", "later", "jobs", "jobs.dead", "purge-me", "clicks", "urllen"} {
		if _, ok := want[name]; !ok {
			t.Fatalf("queue %s missing from /queues: %v", name, want)
		}
	}
	b.waitFor("a rate and a depth line", `document.querySelectorAll('#queues td[data-field=put_rate]')[0].textContent !== '-'`)
	b.shot("queues")

	// Peek with paging: 20 a page, the next page, bodies shown as text.
	b.open(q + "/ui/#/queue/orders")
	b.waitFor("the first page of orders", `document.querySelector('#peek-info').textContent === '1–20 of 25' &&
		document.querySelector('#messages [data-field=data]').textContent === 'order 1 <b>not bold</b>'`)
	b.click("#peek-next")
	b.waitFor("the second page of orders", `document.querySelector('#peek-info').textContent === '21–25 of 25' &&
		document.querySelectorAll('#messages tbody tr').length === 5 && document.querySelector('#peek-next').disabled &&
		document.querySelector('#messages b') === null`)

	// Purge through the page: its depth goes to 0.
	b.open(q + "/ui/#/queue/purge-me")
	b.waitFor("the page of purge-me", `document.querySelector('#queue-facts [data-field=depth]')?.textContent === '5'`)
	b.click("#purge")
	b.click("#purge-confirm")
	b.waitFor("the purge's answer", `document.querySelector('#purge-result').textContent === 'Purged 5 messages.'`)
	testwait.For(t, waitTimeout, "purge-me empty in /queues", func() bool { return depth(t, q, "purge-me") == 0 })

	// A refused action shows the node's one-line error.
	b.open(q + "/ui/#/queue/jobs.dead")
	b.waitFor("job-1 dead-lettered from jobs", `[...document.querySelectorAll('#messages tbody tr')].some(tr =>
		tr.querySelector('[data-field=data]').textContent === 'job-1' &&
		tr.querySelector('[data-field=dead_from]').textContent === 'jobs' &&
		tr.querySelector('[data-field=error]').textContent === 'bad payload')`)
	b.shot("queue")
	b.setValue("#redrive-to", "no such/queue")
	b.click("#redrive")
	b.waitFor("the 400 line", `document.querySelector('#redrive-result.error')?.textContent.startsWith('400: ')`)
	if depth(t, q, "jobs.dead") != 1 {
		t.Fatal("a refused redrive moved messages")
	}
	// Redrive through the page: job-1 goes back to jobs.
	b.setValue("#redrive-to", "")
	b.click("#redrive")
	b.waitFor("the redrive's answer", `document.querySelector('#redrive-result').textContent === 'Moved 1, 0 left.'`)
	testwait.For(t, waitTimeout, "job-1 back in jobs", func() bool { return depth(t, q, "jobs.dead") == 0 && depth(t, q, "jobs") == 2 })

	// Settings through the page: only the changed field is sent.
	b.open(q + "/ui/#/queue/jobs")
	b.waitFor("the settings of jobs", `document.querySelector('#cfg-max_attempts').value === '1' && document.querySelector('#cfg-dead_letter').value === 'jobs.dead'`)
	b.setValue("#cfg-max_attempts", "3")
	b.click("#settings-save")
	b.waitFor("the saved settings", `document.querySelector('#settings-result').textContent === 'Saved.'`)
	var cfg struct {
		MaxAttempts int    `json:"max_attempts"`
		DeadLetter  string `json:"dead_letter"`
		MaxDepth    int    `json:"max_depth"`
	}
	getJSON(t, q+"/config?queue=jobs", &cfg)
	if cfg.MaxAttempts != 3 || cfg.DeadLetter != "jobs.dead" || cfg.MaxDepth != 1000 {
		t.Fatalf("/config after the page saved max_attempts=3: %+v", cfg)
	}

	// Pubsub: subscribers on two nodes.
	subscribe(t, followers[0].PubsubURL, "news")
	subscribe(t, followers[1].PubsubURL, "news")
	subscribe(t, followers[1].PubsubURL, "alerts")
	b.open(q + "/ui/#/pubsub")
	b.waitFor("the topics", `document.querySelector('#topics tr[data-topic=news] [data-field=subscribers]')?.textContent === '2' &&
		document.querySelector('#topics tr[data-topic=alerts] [data-field=subscribers]')?.textContent === '1' &&
		document.querySelectorAll('#pubsub-nodes tbody tr').length === 3`)
	b.shot("pubsub")

	// Analytics: moments, histograms and the click graph as /analytics
	// answers them.
	testwait.For(t, waitTimeout, "two samples of the moments", func() bool {
		var rep analytics.LiveReport
		getJSON(t, q+"/analytics", &rep)
		return len(rep.Moments) == 1 && len(rep.Moments[0].History) >= 2 && rep.Moments[0].N == int64(clicks)
	})
	var rep analytics.LiveReport
	getJSON(t, q+"/analytics?top=20", &rep)
	if len(rep.Graph.Edges) == 0 || len(rep.Histograms) != 1 {
		t.Fatalf("/analytics: %+v", rep)
	}
	b.open(q + "/ui/#/analytics")
	b.waitFor("the moments and the histogram", fmt.Sprintf(`document.querySelector('[data-moments=moments] [data-field=n]')?.textContent === %q &&
		document.querySelector('[data-histogram=urllen] canvas') !== null`, commas(int64(clicks))))
	b.waitFor("every edge of the graph drawn", func() bool {
		drawn := eval[[]analytics.WeightedEdge](b, `[...document.querySelectorAll('svg.graph line[data-from]')].map(l => ({from: l.dataset.from, to: l.dataset.to, weight: +l.dataset.weight}))`)
		return slices.Equal(drawn, rep.Graph.Edges)
	})
	nodes := eval[[]string](b, `[...document.querySelectorAll('svg.graph [data-node]')].map(n => n.dataset.node)`)
	if len(nodes) != len(rep.Graph.Nodes) {
		t.Fatalf("graph nodes drawn %v, /analytics has %d", nodes, len(rep.Graph.Nodes))
	}
	b.shot("analytics")
	// A node's strongest links: click the heaviest referrer.
	sel := rep.Graph.Edges[0].From
	eval[bool](b, fmt.Sprintf(`[...document.querySelectorAll('svg.graph [data-node]')].find(n => n.dataset.node === %q).dispatchEvent(new MouseEvent('click', {bubbles: true}))`, sel))
	var links analytics.LiveReport
	getJSON(t, q+"/analytics?top=20&node="+url.QueryEscape(sel), &links)
	b.waitFor("the referrer's links", func() bool {
		drawn := eval[[]analytics.WeightedEdge](b, `document.querySelector('svg.graph .node.selected')?.dataset.node === `+strconv.Quote(sel)+` ?
			[...document.querySelectorAll('svg.graph line[data-from]')].map(l => ({from: l.dataset.from, to: l.dataset.to, weight: +l.dataset.weight})) : []`)
		return len(drawn) > 1 && slices.Equal(drawn, links.Graph.Edges)
	})
	b.shot("analytics-node")
}

// TestBrowser_TokensOfTheUIAndRefusedActions runs the UI against a
// secured node (TLS, tokens): without a token every call is refused and
// the page says why; with a monitor token from the token box the
// counters show, and a purge is refused with the node's 403 line; the
// analytics page says the node has none.
func TestBrowser_TokensOfTheUIAndRefusedActions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node and a browser")
	}
	browser := chromium()
	need(t, "chromium", browser)
	sec, err := testkit.OpenSecurity(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const monitor = "monitor-token-0123456789"
	f, err := os.OpenFile(sec.TokensFile, os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = fmt.Fprintf(f, "prom monitor %s\n", monitor)
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	_, kc := startCluster(t, 1, testkit.ClusterOptions{Security: sec})
	ctx := context.Background()
	nd := kc.Nodes()[0]
	if body, code, err := nd.Call(ctx, "POST", nd.QueueURL+"/put?queue=jobs&data=x"); err != nil || code != 200 {
		t.Fatalf("put: %d %v %s", code, err, body)
	}

	b := newBrowser(t, browser, chromedp.Flag("ignore-certificate-errors", true))
	b.open(nd.QueueURL + "/ui/#/queue/jobs")
	b.waitFor("the 401 line", `document.querySelector('#status.error')?.textContent.startsWith('401: missing token')`)
	b.setValue("#token", monitor)
	b.click("#token-form button[type=submit]")
	b.waitFor("the counters with the monitor token", `document.querySelector('#queue-facts [data-field=depth]')?.textContent === '1'`)
	b.waitFor("the peek refused", `document.querySelector('#peek-error')?.textContent.startsWith('403: ')`)
	b.click("#purge")
	b.click("#purge-confirm")
	b.waitFor("the purge refused", `document.querySelector('#purge-result.error')?.textContent === '403: token "prom" has role monitor; /purge needs admin'`)
	if got := eval[string](b, `sessionStorage.getItem('quorumq.token')`); got != monitor {
		t.Fatalf("sessionStorage holds %q", got)
	}
	b.shot("refused")
	// No --analytics-redis: the page says so.
	b.open(nd.QueueURL + "/ui/#/analytics")
	b.waitFor("the analytics page's note", `document.querySelector('#analytics-off')?.textContent === 'no analytics on this node: start it with --analytics-redis=ADDR'`)
	if body, _, _ := nd.Call(ctx, "GET", nd.QueueURL+"/stats?queue=jobs&format=json"); !strings.Contains(body, `"depth": 1`) && !strings.Contains(body, `"depth":1`) {
		t.Fatalf("the refused purge changed the queue: %s", body)
	}
}

// startCluster starts n nodes of the quorumq binary with o (Binary, Dir
// and Port filled in), killed when the test ends, and returns the binary
// and the cluster once it has a leader.
func startCluster(t *testing.T, n int, o testkit.ClusterOptions) (string, *testkit.Cluster) {
	t.Helper()
	bin, err := testkit.BuildOnce()
	if err != nil {
		t.Fatal(err)
	}
	o.Binary, o.Dir = bin, t.TempDir()
	o.Port = func() (int, error) { return testport.Reserve(t), nil }
	kc, err := testkit.NewCluster(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	if err := kc.Start(context.Background(), n, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	return bin, kc
}

// feedAnalytics puts the sample's clicks into the queue clicks and the
// length of each clicked URL into urllen and urllen.hist, runs `quorumq
// analyze` graph, moments and histogram over them until the queues are
// empty, and returns the number of clicks.
func feedAnalytics(t *testing.T, bin, q, redisURL string) int {
	t.Helper()
	f, err := os.Open(sampleFile)
	if err != nil {
		t.Fatalf("the repository's 1.usa.gov sample: %v", err)
	}
	defer f.Close()
	var records, lengths []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		e, err := analytics.ParseClick(sc.Bytes())
		if err != nil {
			continue
		}
		records = append(records, sc.Text())
		lengths = append(lengths, strconv.Itoa(len(e.To)))
	}
	if len(records) < 100 {
		t.Fatalf("%s: %d clicks", sampleFile, len(records))
	}
	mustDo(t, "POST", q+"/mput?queue=clicks", strings.Join(records, "\n"))
	mustDo(t, "POST", q+"/mput?queue=urllen", strings.Join(lengths, "\n"))
	mustDo(t, "POST", q+"/mput?queue=urllen.hist", strings.Join(lengths, "\n"))
	common := []string{"--queue-addr=" + q, "--redis=" + redisURL, "--exit-when-empty", "--empty-for=1s", "--progress-interval=0"}
	runs := [][]string{
		{"graph", "--queue=clicks"},
		{"moments", "--queue=urllen", "--key=moments"},
		{"histogram", "--queue=urllen.hist", "--key=urllen", "--min=0", "--width=20", "--bins=10"},
	}
	errs := make(chan error, len(runs))
	for _, r := range runs {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, append(append([]string{"analyze"}, r...), common...)...).CombinedOutput()
			if err != nil {
				err = fmt.Errorf("analyze %s: %v\n%s", r[0], err, out)
			}
			errs <- err
		}()
	}
	for range runs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return len(records)
}

// browser is a headless Chromium tab bound to a test.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu         sync.Mutex
	exceptions []string // thrown by the page's scripts
}

func newBrowser(t *testing.T, path string, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900), chromedp.Flag("hide-scrollbars", true))
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser, which lives as long as that
	// run's context: it gets no timeout of its own, the wait for it does.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("starting %s: %v", path, err)
		}
	case <-time.After(stepTimeout):
		cancel()
		t.Fatalf("%s did not start within %v", path, stepTimeout)
	}
	b := &browser{t: t, ctx: ctx}
	// Any exception the page's scripts throw fails the test.
	err := chromedp.Listen(ctx, func(ev any) {
		if ev, ok := ev.(*runtime.EventExceptionThrown); ok && ev.ExceptionDetails != nil {
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				text += " " + d.Exception.Description
			}
			b.mu.Lock()
			b.exceptions = append(b.exceptions, fmt.Sprintf("%s:%d: %s", d.URL, d.LineNumber+1, text))
			b.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, e := range b.exceptions {
			t.Errorf("the page threw: %s", e)
		}
	})
	return b
}

// run runs steps within stepTimeout, failing the test on an error.
func (b *browser) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression within stepTimeout.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("browser: evaluate %s: %v", js, err)
	}
	return v
}

func (b *browser) open(u string) {
	b.t.Helper()
	// A new hash on the same page is not a load: start from a blank page.
	b.run("open "+u, chromedp.Navigate("about:blank"), chromedp.Navigate(u), chromedp.WaitReady(chromedp.CSS("#view")))
}

func (b *browser) click(sel string) {
	b.t.Helper()
	b.run("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

func (b *browser) setValue(sel, v string) {
	b.t.Helper()
	eval[string](b, fmt.Sprintf(`document.querySelector(%q).value = %q`, sel, v))
}

// waitFor polls cond (a JavaScript expression, or a Go function) until
// it holds, within waitTimeout.
func (b *browser) waitFor(what string, cond any) {
	b.t.Helper()
	check, ok := cond.(func() bool)
	if !ok {
		js := cond.(string)
		check = func() bool { return eval[bool](b, "!!("+js+")") }
	}
	testwait.For(b.t, waitTimeout, "the page to show "+what, check)
}

// rows reads a table: per row (keyed by its data-<key>), the text of
// each cell that has a data-field.
func (b *browser) rows(sel, key string) map[string]map[string]string {
	b.t.Helper()
	return eval[map[string]map[string]string](b, fmt.Sprintf(`Object.fromEntries([...document.querySelectorAll(%q)].map(tr =>
		[tr.dataset[%q], Object.fromEntries([...tr.querySelectorAll('[data-field]')].map(td => [td.dataset.field, td.textContent]))]))`, sel, key))
}

// shot saves the whole page as docs/ui/<name>.png with -update.
func (b *browser) shot(name string) {
	b.t.Helper()
	if !*update && os.Getenv("QUORUMQ_UPDATE_SCREENSHOTS") == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	p := filepath.Join("..", "..", "docs", "ui", name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("wrote %s", p)
}

// queueCells is what the queues table should show of /queues: the
// counters the UI prints as they are.
func queueCells(t *testing.T, q string) map[string]map[string]string {
	t.Helper()
	var wire struct {
		Queues []map[string]any `json:"queues"`
	}
	getJSON(t, q+"/queues", &wire)
	out := map[string]map[string]string{}
	for _, w := range wire.Queues {
		cells := map[string]string{}
		for _, f := range []string{"depth", "in_flight", "deferred", "dead"} {
			cells[f] = commas(int64(w[f].(float64)))
		}
		out[w["name"].(string)] = cells
	}
	return out
}

// equalCells reports whether the page shows every queue of want, and no
// other, with want's cells.
func equalCells(got, want map[string]map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for name, cells := range want {
		for f, v := range cells {
			if got[name][f] != v {
				return false
			}
		}
	}
	return true
}

// depth is a queue's depth in /queues (0 for no such queue).
func depth(t *testing.T, q, name string) int64 {
	var ans struct {
		Queues []struct {
			Name  string `json:"name"`
			Depth int64  `json:"depth"`
		} `json:"queues"`
	}
	getJSON(t, q+"/queues", &ans)
	for _, x := range ans.Queues {
		if x.Name == name {
			return x.Depth
		}
	}
	return 0
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	b, _, _ := mustDo(t, "GET", u, "")
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v: %s", u, err, b)
	}
}

var httpc = &http.Client{Timeout: 30 * time.Second}

// streamClient opens streams: the answer's head within 10 s, its body as
// long as the request's context.
var streamClient = &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 10 * time.Second}}

// mustDo sends one request and fails the test unless it answers 200.
func mustDo(t *testing.T, method, u, body string) ([]byte, http.Header, int) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d %v: %s", method, u, resp.StatusCode, err, bytes.TrimSpace(b))
	}
	return b, resp.Header, resp.StatusCode
}

// subscribe opens a pubsub stream to topic until the test ends, and
// returns once the node took it.
func subscribe(t *testing.T, pubsubURL, topic string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", pubsubURL+"/sub?topic="+topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := streamClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("subscribe %s on %s: %v", topic, pubsubURL, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
}

// commas formats n as the UI does (en-US grouping).
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}
