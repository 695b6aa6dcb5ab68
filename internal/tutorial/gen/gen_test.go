package gen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumq/quorumq/analytics"
	"github.com/quorumq/quorumq/client"
)

// fakeClock advances only when Run sleeps.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1e9, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

// timedLines records each line written and the fake time it was written.
type timedLines struct {
	clock *fakeClock
	start time.Time
	lines []string
	at    []time.Duration
}

func (w *timedLines) Write(p []byte) (int, error) {
	for l := range strings.SplitSeq(strings.TrimSuffix(string(p), "\n"), "\n") {
		w.lines = append(w.lines, l)
		w.at = append(w.at, w.clock.Now().Sub(w.start))
	}
	return len(p), nil
}

// runTimed writes src to lines at the times a fake clock gives, paced by
// the rate, count and speed of pace (a zero speed: as fast as possible).
func runTimed(t *testing.T, pace SendConfig, src Source) *timedLines {
	t.Helper()
	clock := newFakeClock()
	w := &timedLines{clock: clock, start: clock.Now()}
	cfg := DefaultSendConfig()
	cfg.Rate, cfg.N, cfg.Speed = pace.Rate, pace.N, pace.Speed
	cfg.To, cfg.Out, cfg.Clock, cfg.Progress = "-", w, clock, 0
	if _, err := Run(context.Background(), cfg, src); err != nil {
		t.Fatal(err)
	}
	return w
}

func output(t *testing.T, n int64, src Source) string {
	t.Helper()
	var b bytes.Buffer
	if _, err := Run(context.Background(), sendConfig(SendConfig{To: "-", Out: &b, N: n, Progress: -1}), src); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// Test_Gen_DeterministicForASeed: every source gives the same stream for
// the same seed and another one for another seed; count counts.
func Test_Gen_DeterministicForASeed(t *testing.T) {
	if got := output(t, 5, NewCount(1)); got != "1\n2\n3\n4\n5\n" {
		t.Fatalf("count: %q", got)
	}
	sources := map[string]func(seed uint64) Source{
		"synth": func(seed uint64) Source { return NewSynth(seed, false) },
	}
	for _, d := range Distributions {
		for _, secret := range []bool{false, true} {
			sources[d+"/secret="+strconv.FormatBool(secret)] = func(seed uint64) Source {
				c, _ := RandomDefaults(d)
				c.Seed, c.Secret = seed, secret
				g, err := NewRandom(c)
				if err != nil {
					t.Fatal(err)
				}
				return g
			}
		}
	}
	for name, mk := range sources {
		a, b, c := output(t, 300, mk(42)), output(t, 300, mk(42)), output(t, 300, mk(43))
		if a != b {
			t.Errorf("%s: two runs with seed 42 differ", name)
		}
		if a == c {
			t.Errorf("%s: seeds 42 and 43 give the same stream", name)
		}
		if n := strings.Count(a, "\n"); n != 300 {
			t.Errorf("%s: %d lines", name, n)
		}
	}
}

// Test_Gen_RandomDistributionsHaveTheirMoments: 20,000 draws of each
// distribution have the sample mean the parameters say (within 5 standard
// errors), and the sample variance within 15% for the light-tailed ones;
// integer distributions write integers.
func Test_Gen_RandomDistributionsHaveTheirMoments(t *testing.T) {
	for _, d := range Distributions {
		for _, secret := range []bool{false, true} {
			c, _ := RandomDefaults(d)
			c.Seed, c.Secret = 7, secret
			g, err := NewRandom(c)
			if err != nil {
				t.Fatal(err)
			}
			mean, variance := g.Truth()
			const n = 20000
			var sum, sum2 float64
			for range n {
				m, _ := g.Next()
				x, err := strconv.ParseFloat(string(m.Data), 64)
				if err != nil {
					t.Fatalf("%s: %q", d, m.Data)
				}
				if d == "poisson" || d == "zipf" || d == "ints" {
					if _, err := strconv.ParseInt(string(m.Data), 10, 64); err != nil {
						t.Fatalf("%s wrote %q", d, m.Data)
					}
				}
				sum += x
				sum2 += x * x
			}
			m := sum / n
			v := (sum2 - sum*sum/n) / (n - 1)
			if se := math.Sqrt(variance / n); math.Abs(m-mean) > 5*se {
				t.Errorf("%s (secret %v, %s): sample mean %v, true %v (se %v)", d, secret, g.Secret(), m, mean, se)
			}
			if d != "lognormal" && d != "zipf" && math.Abs(v-variance) > 0.15*variance {
				t.Errorf("%s (secret %v): sample variance %v, true %v", d, secret, v, variance)
			}
		}
	}
}

// Test_Gen_SecretParameters: --secret draws parameters from the seed (not
// the defaults), reproducibly, and describes them with the true mean and
// variance.
func Test_Gen_SecretParameters(t *testing.T) {
	c, _ := RandomDefaults("normal")
	c.Seed, c.Secret = 11, true
	a, _ := NewRandom(c)
	b, _ := NewRandom(c)
	if a.Config() != b.Config() || a.Config().Mean == 0 || a.Config().StdDev == 1 {
		t.Fatalf("secret params %+v vs %+v", a.Config(), b.Config())
	}
	c.Seed = 12
	other, _ := NewRandom(c)
	if other.Config() == a.Config() {
		t.Fatal("the secret does not depend on the seed")
	}
	mean, variance := a.Truth()
	s := a.Secret()
	if !strings.Contains(s, "mean="+fmtNum(mean)) || !strings.Contains(s, "variance="+fmtNum(variance)) {
		t.Fatalf("secret %q", s)
	}
	for _, bad := range []RandomConfig{{Dist: "uniform", Min: 1, Max: 1}, {Dist: "zipf", S: 1, V: 1}, {Dist: "poisson"}, {Dist: "cauchy"},
		{Dist: "ints", Min: 0.5, Max: 3}, {Dist: "normal", StdDev: -1}} {
		if _, err := NewRandom(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// Test_Gen_RateIsHonoured: with a rate, message i is sent at i/rate
// (on a fake clock, exactly); on the real clock, loosely.
func Test_Gen_RateIsHonoured(t *testing.T) {
	w := runTimed(t, SendConfig{Rate: 10, N: 25}, NewCount(0))
	if len(w.lines) != 25 {
		t.Fatalf("%d lines", len(w.lines))
	}
	for i, at := range w.at {
		if want := time.Duration(i) * 100 * time.Millisecond; at != want {
			t.Fatalf("message %d at %v, want %v", i, at, want)
		}
	}

	var mu sync.Mutex
	got := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got += bytes.Count(b, []byte{'\n'}) + 1
		mu.Unlock()
	}))
	defer srv.Close()
	st, err := Run(context.Background(), sendConfig(SendConfig{To: srv.URL + "/mput", Rate: 200, N: 100, Progress: -1}), NewCount(0))
	if err != nil || st.Sent != 100 || got != 100 {
		t.Fatalf("%v, %v, server got %d", st, err, got)
	}
	// The last message is due at 99/200 s; allow a generous upper bound.
	if st.Elapsed < 450*time.Millisecond || st.Elapsed > 20*time.Second {
		t.Fatalf("100 messages at 200/s took %v", st.Elapsed)
	}
}

const tinyUsagov = `{"t": 1000, "u": "a"}
{"_heartbeat_": 1001}
{"t": 1002, "u": "b"}

{"t": 1001, "u": "c"}
not json
{"t": 1010, "u": "d"}
`

// Test_Gen_UsagovSpeedUsesRecordTimes: a replay sends each record at its
// own timestamp minus the first, divided by the speed; records out of
// order and lines without a time go with the line before; speed 0 sends
// everything at once; heartbeats can be skipped.
func Test_Gen_UsagovSpeedUsesRecordTimes(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		speed float64
		skip  bool
		lines []string
		at    []time.Duration
	}{
		{2, false, []string{"a", "hb", "b", "c", "nj", "d"}, []time.Duration{0, s / 2, s, s, s, 5 * s}},
		{1, false, []string{"a", "hb", "b", "c", "nj", "d"}, []time.Duration{0, s, 2 * s, 2 * s, 2 * s, 10 * s}},
		{2, true, []string{"a", "b", "c", "nj", "d"}, []time.Duration{0, s, s, s, 5 * s}},
		{0, false, []string{"a", "hb", "b", "c", "nj", "d"}, []time.Duration{0, 0, 0, 0, 0, 0}},
	} {
		w := runTimed(t, SendConfig{Speed: tc.speed}, NewReplay(strings.NewReader(tinyUsagov), tc.skip))
		var names []string
		for _, l := range w.lines {
			switch {
			case strings.Contains(l, "_heartbeat_"):
				names = append(names, "hb")
			case l == "not json":
				names = append(names, "nj")
			default:
				var rec struct{ U string }
				json.Unmarshal([]byte(l), &rec)
				names = append(names, rec.U)
			}
		}
		if !slices.Equal(names, tc.lines) || !slices.Equal(w.at, tc.at) {
			t.Errorf("speed %v skip %v: %v at %v, want %v at %v", tc.speed, tc.skip, names, w.at, tc.lines, tc.at)
		}
	}
	// Lines are sent byte for byte.
	w := runTimed(t, SendConfig{}, NewReplay(strings.NewReader("{ \"t\": 5, \"u\": \"x\\/y\" }\r\n"), false))
	if len(w.lines) != 1 || w.lines[0] != `{ "t": 5, "u": "x\/y" }` {
		t.Fatalf("%q", w.lines)
	}
}

// Test_Gen_SynthSchema: synthesised records have the 1.usa.gov fields,
// non-decreasing times, a heartbeat every 30 s of stream time, and are
// clicks the analytics package reads; the times drive --speed.
func Test_Gen_SynthSchema(t *testing.T) {
	g := NewSynth(1, false)
	var lastT int64
	beats, clicks := 0, 0
	countries := map[string]bool{}
	var lastAt time.Duration
	for range 2000 {
		m, ok := g.Next()
		if !ok || !m.Timed || m.At < lastAt {
			t.Fatalf("message %+v", m)
		}
		lastAt = m.At
		var rec map[string]any
		if err := json.Unmarshal(m.Data, &rec); err != nil {
			t.Fatalf("%s: %v", m.Data, err)
		}
		if hb, ok := rec["_heartbeat_"].(float64); ok {
			beats++
			if int64(hb-SynthStart)%30 != 0 || time.Duration(hb-SynthStart)*time.Second != m.At {
				t.Fatalf("heartbeat %v at %v", hb, m.At)
			}
			continue
		}
		clicks++
		for _, f := range []string{"a", "c", "nk", "tz", "g", "h", "l", "hh", "r", "u", "t", "hc"} {
			if _, ok := rec[f]; !ok {
				t.Fatalf("record without %q: %s", f, m.Data)
			}
		}
		ts := int64(rec["t"].(float64))
		if ts < lastT || time.Duration(ts-SynthStart)*time.Second != m.At {
			t.Fatalf("t %d after %d, at %v", ts, lastT, m.At)
		}
		lastT = ts
		countries[rec["c"].(string)] = true
		if _, err := analytics.ParseClick(m.Data); err != nil {
			t.Fatalf("%s: %v", m.Data, err)
		}
	}
	if clicks < 1800 || beats < 40 || len(countries) < 4 {
		t.Fatalf("%d clicks, %d heartbeats, countries %v", clicks, beats, countries)
	}
	// Skipping heartbeats leaves only clicks.
	out := output(t, 500, NewSynth(1, true))
	if strings.Contains(out, "_heartbeat_") {
		t.Fatal("heartbeat with skipHeartbeats")
	}
}

// Test_Gen_HTTPModes: /pub and /mput get newline batches (no trailing
// newline), /put one message per request from several senders; /put and
// /mput carry idempotency keys that stay the same across retries of 503s;
// a 400 is not retried and retries run out, both counted as failures.
func Test_Gen_HTTPModes(t *testing.T) {
	type req struct {
		path, id, body string
	}
	var mu sync.Mutex
	var reqs []req
	fail503 := 0
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		reqs = append(reqs, req{r.URL.Path, r.URL.Query().Get("id"), string(b)})
		if fail503 > 0 {
			fail503--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	fast := client.Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}
	reset := func(n503, st int) {
		mu.Lock()
		reqs, fail503, status = nil, n503, st
		mu.Unlock()
	}

	reset(0, 200)
	st, err := Run(context.Background(), sendConfig(SendConfig{To: srv.URL + "/pub?topic=nums", N: 250, Batch: 100, Progress: -1}), NewCount(1))
	if err != nil || st.Sent != 250 || len(reqs) != 3 {
		t.Fatalf("pub: %v %v %d requests", st, err, len(reqs))
	}
	if reqs[0].body != strings.TrimSuffix(output(t, 100, NewCount(1)), "\n") || reqs[0].id != "" {
		t.Fatalf("pub body %q id %q", reqs[0].body[:20], reqs[0].id)
	}

	reset(2, 200)
	st, err = Run(context.Background(), sendConfig(SendConfig{To: srv.URL + "/mput?queue=q", N: 10, Batch: 10, Backoff: fast, Progress: -1}), NewCount(1))
	if err != nil || st.Sent != 10 || st.Retries != 2 || len(reqs) != 3 {
		t.Fatalf("mput: %v %v %+v", st, err, reqs)
	}
	if reqs[0].id == "" || reqs[0].id != reqs[2].id || reqs[2].body != "1\n2\n3\n4\n5\n6\n7\n8\n9\n10" {
		t.Fatalf("mput retries %+v", reqs)
	}

	reset(0, 200)
	st, err = Run(context.Background(), sendConfig(SendConfig{To: srv.URL + "/put?queue=q", N: 50, Progress: -1}), NewCount(1))
	if err != nil || st.Sent != 50 || len(reqs) != 50 {
		t.Fatalf("put: %v %v %d", st, err, len(reqs))
	}
	var bodies []int
	ids := map[string]bool{}
	for _, r := range reqs {
		n, err := strconv.Atoi(r.body)
		if err != nil {
			t.Fatalf("put body %q", r.body)
		}
		bodies = append(bodies, n)
		ids[r.id] = true
	}
	slices.Sort(bodies)
	if bodies[0] != 1 || bodies[49] != 50 || len(slices.Compact(bodies)) != 50 || len(ids) != 50 {
		t.Fatalf("put bodies %v, %d ids", bodies, len(ids))
	}

	reset(0, 400)
	st, err = Run(context.Background(), sendConfig(SendConfig{To: srv.URL + "/put", N: 3, Backoff: fast, Progress: -1}), NewCount(1))
	if !errors.Is(err, ErrFailed) || st.Failed != 3 || st.Retries != 0 {
		t.Fatalf("400: %v %v", st, err)
	}

	reset(1000, 200)
	var progress bytes.Buffer
	st, err = Run(context.Background(), sendConfig(SendConfig{To: srv.URL + "/mput", N: 5, Retries: 3, Backoff: fast, Stderr: &progress}), NewCount(1))
	if !errors.Is(err, ErrFailed) || st.Failed != 5 || st.Retries != 3 || st.Sent != 0 {
		t.Fatalf("503s: %v %v", st, err)
	}
	if !strings.Contains(progress.String(), "failed=5") {
		t.Fatalf("progress %q", progress.String())
	}

	for _, bad := range []string{"http://h:1/get", "ftp://h/pub", "nohost"} {
		if _, err := Run(context.Background(), sendConfig(SendConfig{To: bad, N: 1}), NewCount(1)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// sendConfig is DefaultSendConfig with the fields c sets, so that a test
// names only what it varies; timed sources go as fast as possible unless
// c sets a speed.
func sendConfig(c SendConfig) SendConfig {
	d := DefaultSendConfig()
	d.To, d.Out, d.N, d.Rate, d.Speed = c.To, c.Out, c.N, c.Rate, c.Speed
	if c.Batch != 0 {
		d.Batch = c.Batch
	}
	if c.Retries != 0 {
		d.Retries = c.Retries
	}
	if c.Backoff != (client.Backoff{}) {
		d.Backoff = c.Backoff
	}
	if c.Progress != 0 {
		d.Progress = c.Progress
	}
	if c.Stderr != nil {
		d.Stderr = c.Stderr
	}
	return d
}

// Test_Gen_UsagovSample_ReplaysTheShippedRecords: the repository's sample
// of real 1.usa.gov records replays whole, byte for byte, and a missing
// file's error points at it.
func Test_Gen_UsagovSample_ReplaysTheShippedRecords(t *testing.T) {
	path := filepath.Join("..", "..", "..", SampleFile)
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Stream, cfg.File, cfg.To, cfg.Speed = "usagov", path, "-", 0
	var out, stderr strings.Builder
	cfg.Out = &out
	if err := Generate(context.Background(), cfg, &stderr); err != nil {
		t.Fatalf("Generate: %v (%s)", err, stderr.String())
	}
	if out.String() != string(want) || strings.Count(out.String(), "\n") != 500 {
		t.Fatalf("replayed %d lines, not the sample's 500 byte for byte", strings.Count(out.String(), "\n"))
	}

	cfg.File = "no/such/usagov.jsonl"
	err = Generate(context.Background(), cfg, &stderr)
	if err == nil || !strings.Contains(err.Error(), SampleFile) {
		t.Fatalf("Generate of a missing file: %v, want a pointer to %s", err, SampleFile)
	}
}
