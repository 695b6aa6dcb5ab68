package pstohttp

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/testwait"
)

const wait = 20 * time.Second

// subscribed waits until the bridge is connected to ps.
func subscribed(t *testing.T, ps *fakePubsub, n int) {
	t.Helper()
	testwait.For(t, wait, fmt.Sprintf("%d subscriber(s)", n), func() bool { return ps.subscribers() == n })
}

// Test_Bridge_RequestFormats: a GET destination gets the message
// percent-encoded in place of %s, a POST destination gets it as the body
// with Content-Length and no Content-Type (spec 4.3, transcript T4.6).
func Test_Bridge_RequestFormats(t *testing.T) {
	ps := newFakePubsub(t)
	dst := newFakeDest(t, nil)
	var logs syncBuffer
	start(t, testConfig(t, &logs, []string{ps.url()}, dst.get(), dst.post()))
	subscribed(t, ps, 1)
	ps.publish("msg one", `{"a":"b c"}`)
	testwait.For(t, wait, "4 requests", func() bool { return len(dst.requests()) == 4 })

	var gets, posts []destReq
	for _, r := range dst.requests() {
		if r.method == http.MethodGet {
			gets = append(gets, r)
		} else {
			posts = append(posts, r)
		}
	}
	if len(gets) != 2 || gets[0].uri != "/put?data=msg%20one" || gets[1].uri != "/put?data=%7B%22a%22:%22b%20c%22%7D" {
		t.Fatalf("GET requests %+v", gets)
	}
	if len(posts) != 2 || posts[0].uri != "/pub" || posts[0].msg != "msg one" || posts[0].contentLength != 7 ||
		posts[1].msg != `{"a":"b c"}` || posts[1].contentLength != 11 || posts[0].contentType != "" {
		t.Fatalf("POST requests %+v", posts)
	}
}

// Test_Bridge_FanOutOrder: without --round-robin every message reaches
// every destination, each in publish order; a GET template may hold %s in
// its path too.
func Test_Bridge_FanOutOrder(t *testing.T) {
	ps := newFakePubsub(t)
	a, b := newFakeDest(t, nil), newFakeDest(t, nil)
	var logs syncBuffer
	pathDest := Destination{Method: http.MethodGet, URL: b.URL + "/x/%s?q=1"}
	r := start(t, testConfig(t, &logs, []string{ps.url()}, a.get(), a.post(), pathDest))
	subscribed(t, ps, 1)
	var msgs []string
	for i := range 50 {
		msgs = append(msgs, fmt.Sprintf("fan%d", i))
	}
	ps.publish(msgs...)
	testwait.For(t, wait, "every message everywhere", func() bool { return len(a.requests()) == 100 && len(b.requests()) == 50 })
	var gets, posts []string
	for _, req := range a.requests() {
		if req.method == http.MethodGet {
			gets = append(gets, req.msg)
		} else {
			posts = append(posts, req.msg)
		}
	}
	if joined(gets) != joined(msgs) || joined(posts) != joined(msgs) {
		t.Fatalf("order: gets %v posts %v", gets, posts)
	}
	if req := b.requests()[3]; req.uri != "/x/fan3?q=1" {
		t.Fatalf("path template: %q", req.uri)
	}
	r.waitStats(t, "50 forwarded everywhere", func(st Stats) bool {
		return st.Received == 50 && st.Destinations[0].Forwarded == 50 && st.Destinations[1].Forwarded == 50 && st.Destinations[2].Forwarded == 50
	})
}

// Test_Bridge_RoundRobin: with --round-robin message k goes to destination
// k mod n in command-line order (transcript T4.3); dropped short lines do
// not shift the rotation.
func Test_Bridge_RoundRobin(t *testing.T) {
	ps := newFakePubsub(t)
	d := []*fakeDest{newFakeDest(t, nil), newFakeDest(t, nil), newFakeDest(t, nil)}
	var logs syncBuffer
	cfg := testConfig(t, &logs, []string{ps.url()}, d[0].get(), d[1].post(), d[2].get())
	cfg.RoundRobin = true
	r := start(t, cfg)
	subscribed(t, ps, 1)
	ps.publish("rr1", "ab", "rr2", "rr3", "", "rr4", "rr5", "rr6", "rr7")
	testwait.For(t, wait, "7 deliveries", func() bool {
		return len(d[0].requests())+len(d[1].requests())+len(d[2].requests()) == 7
	})

	want := []string{"rr1|rr4|rr7", "rr2|rr5", "rr3|rr6"}
	for i := range d {
		if got := joined(d[i].accepted()); got != want[i] {
			t.Errorf("destination %d got %q, want %q", i, got, want[i])
		}
	}
	if st := r.b.Stats(); st.Received != 9 || st.Skipped != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// Test_Bridge_MinLineLength: lines shorter than 3 bytes are dropped by
// default (transcript T4.1: "ab"); --min-line-length=0 forwards every
// message, empty ones included, and a trailing "\r" is kept.
func Test_Bridge_MinLineLength(t *testing.T) {
	ps := newFakePubsub(t)
	def, all := newFakeDest(t, nil), newFakeDest(t, nil)
	var logs syncBuffer
	start(t, testConfig(t, &logs, []string{ps.url()}, def.post()))
	cfg := testConfig(t, &logs, []string{ps.url()}, all.post())
	cfg.MinLineLength = 0
	start(t, cfg)
	subscribed(t, ps, 2)
	ps.publish("hello world", "ab", "", "abc", "crlf\r")
	testwait.For(t, wait, "deliveries", func() bool { return len(def.requests()) == 3 && len(all.requests()) == 5 })
	if got := joined(def.accepted()); got != "hello world|abc|crlf\r" {
		t.Fatalf("default: %q", got)
	}
	if got := joined(all.accepted()); got != "hello world|ab||abc|crlf\r" {
		t.Fatalf("min 0: %q", got)
	}
}

// Test_Bridge_RetryUntilRecovered: a destination that fails several times
// (5xx, a cut connection, 429) then recovers receives every message once,
// in order; the retries are counted. (Go's transport itself resends a GET
// once when a kept-alive connection is cut, so the cut may cost the bridge
// no retry of its own.)
func Test_Bridge_RetryUntilRecovered(t *testing.T) {
	ps := newFakePubsub(t)
	dst := newFakeDest(t, func(n int, msg string) int {
		switch n {
		case 1:
			return http.StatusServiceUnavailable
		case 2:
			return 0 // connection closed, no answer
		case 3:
			return http.StatusTooManyRequests
		case 4:
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	var logs syncBuffer
	r := start(t, testConfig(t, &logs, []string{ps.url()}, dst.get()))
	subscribed(t, ps, 1)
	msgs := []string{"msg1", "msg2", "msg3", "msg4", "msg5"}
	ps.publish(msgs...)
	testwait.For(t, wait, "every message accepted", func() bool { return len(dst.accepted()) == 5 })
	if got := joined(dst.accepted()); got != joined(msgs) {
		t.Fatalf("accepted %q", got)
	}
	r.waitStats(t, "5 forwarded after retries", func(st Stats) bool {
		d := st.Destinations[0]
		return d.Forwarded == 5 && d.Retried >= 3 && d.Retried <= 4 && d.Failed == 0 && d.Dropped == 0
	})
	// The four failures were all for msg1: it was retried, not skipped.
	for i, req := range dst.requests()[:5] {
		if req.msg != "msg1" {
			t.Fatalf("request %d carried %q", i+1, req.msg)
		}
	}
}

// Test_Bridge_PermanentRejection: a 4xx other than 408/425/429 is not
// retried; the message is logged and counted as failed, and the next
// messages go through. --max-retries bounds retries of 5xx.
func Test_Bridge_PermanentRejection(t *testing.T) {
	ps := newFakePubsub(t)
	dst := newFakeDest(t, func(n int, msg string) int {
		switch msg {
		case "bad":
			return http.StatusBadRequest
		case "flaky":
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	var logs syncBuffer
	cfg := testConfig(t, &logs, []string{ps.url()}, dst.post())
	cfg.MaxRetries = 2
	r := start(t, cfg)
	subscribed(t, ps, 1)
	ps.publish("good1", "bad", "flaky", "good2")
	testwait.For(t, wait, "good2", func() bool { return joined(dst.accepted()) == "good1|good2" })
	r.waitStats(t, "2 forwarded, 2 failed", func(st Stats) bool {
		d := st.Destinations[0]
		return d.Forwarded == 2 && d.Failed == 2 && d.Retried == 2
	})
	if n := len(dst.requests()); n != 6 {
		t.Fatalf("%d requests, want 6", n)
	}
	out := logs.String()
	if !strings.Contains(out, `reason="rejected: 400`) || !strings.Contains(out, `reason="gave up after 3 attempts: 502`) || !strings.Contains(out, "message=flaky") {
		t.Fatalf("logs:\n%s", out)
	}
}

// Test_Bridge_SourceReconnect: when the source drops mid-stream and cannot
// be reached for a while, the bridge keeps reconnecting; once the source
// is back, every message it delivers reaches the destination, in order
// after the ones before the drop.
func Test_Bridge_SourceReconnect(t *testing.T) {
	ps := newFakePubsub(t)
	dst := newFakeDest(t, nil)
	var logs syncBuffer
	r := start(t, testConfig(t, &logs, []string{ps.url()}, dst.get()))
	subscribed(t, ps, 1)
	ps.publish("before1", "before2")
	testwait.For(t, wait, "first messages", func() bool { return len(dst.accepted()) == 2 })

	ps.stop() // mid-stream: no final chunk, then connection refused
	testwait.For(t, wait, "failed reconnection attempts", func() bool { return r.b.Stats().SourceErrors >= 3 })
	ps.start()
	subscribed(t, ps, 1)
	ps.publish("after1", "after2", "after3")
	testwait.For(t, wait, "messages after the reconnect", func() bool { return len(dst.accepted()) == 5 })
	if got := joined(dst.accepted()); got != "before1|before2|after1|after2|after3" {
		t.Fatalf("accepted %q", got)
	}
	st := r.b.Stats()
	if st.Reconnects != 1 || st.Connects != 2 || st.Source != ps.url() {
		t.Fatalf("stats %+v", st)
	}
	if !strings.Contains(logs.String(), "source stream ended") {
		t.Fatalf("logs:\n%s", logs.String())
	}
}

// Test_Bridge_SourceFailover: with several --pubsub-url the bridge moves
// past one that cannot be reached, and to the next one when its source
// goes away.
func Test_Bridge_SourceFailover(t *testing.T) {
	a, b := newFakePubsub(t), newFakePubsub(t)
	a.stop() // a refuses connections
	dst := newFakeDest(t, nil)
	var logs syncBuffer
	r := start(t, testConfig(t, &logs, []string{a.url(), b.url()}, dst.post()))
	subscribed(t, b, 1)
	b.publish("from-b")
	testwait.For(t, wait, "from-b", func() bool { return len(dst.accepted()) == 1 })
	if st := r.b.Stats(); st.Source != b.url() || st.SourceErrors < 1 {
		t.Fatalf("stats %+v", st)
	}

	a.start()
	b.stop()
	subscribed(t, a, 1)
	a.publish("from-a")
	testwait.For(t, wait, "from-a", func() bool { return len(dst.accepted()) == 2 })
	if got := joined(dst.accepted()); got != "from-b|from-a" {
		t.Fatalf("accepted %q", got)
	}
	if st := r.b.Stats(); st.Source != a.url() || st.Reconnects != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Test_Bridge_SourceTimeout: with --source-timeout a stream that sends
// nothing for that long is treated as dead and replaced.
func Test_Bridge_SourceTimeout(t *testing.T) {
	ps := newFakePubsub(t)
	dst := newFakeDest(t, nil)
	var logs syncBuffer
	cfg := testConfig(t, &logs, []string{ps.url()}, dst.post())
	cfg.SourceTimeout = 200 * time.Millisecond
	start(t, cfg)
	testwait.For(t, wait, "three connections", func() bool { return ps.connections() >= 3 })
	if !strings.Contains(logs.String(), "stream idle timeout") {
		t.Fatalf("logs:\n%s", logs.String())
	}
}

// Test_Bridge_BufferOverflow: when a destination is stuck, its buffer
// fills and further messages for it are dropped, logged and counted; the
// source is not blocked, and once the destination recovers it gets the
// messages it buffered, in order.
func Test_Bridge_BufferOverflow(t *testing.T) {
	ps := newFakePubsub(t)
	arrived := make(chan struct{}, 100)
	release := make(chan struct{})
	stuck := newFakeDest(t, func(n int, msg string) int {
		arrived <- struct{}{}
		<-release
		return http.StatusOK
	})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the fake destination closes
	var logs syncBuffer
	cfg := testConfig(t, &logs, []string{ps.url()}, stuck.post())
	cfg.BufferSize = 2
	r := start(t, cfg)
	subscribed(t, ps, 1)
	ps.publish("msg1")
	<-arrived // msg1 is in flight; the buffer is empty
	ps.publish("msg2", "msg3", "msg4", "msg5", "msg6")
	r.waitStats(t, "3 dropped, 2 buffered", func(st Stats) bool {
		d := st.Destinations[0]
		return st.Received == 6 && d.Dropped == 3 && d.Buffered == 2 && d.Forwarded == 0
	})
	for _, m := range []string{"msg4", "msg5", "msg6"} {
		if !strings.Contains(logs.String(), `reason="buffer full" bytes=4 message=`+m) {
			t.Fatalf("drop of %s not logged:\n%s", m, logs.String())
		}
	}
	unblock()
	testwait.For(t, wait, "the buffered messages", func() bool { return len(stuck.accepted()) == 3 })
	if got := joined(stuck.accepted()); got != "msg1|msg2|msg3" {
		t.Fatalf("accepted %q", got)
	}
	r.waitStats(t, "the buffer delivered", func(st Stats) bool {
		d := st.Destinations[0]
		return d.Forwarded == 3 && d.Dropped == 3 && d.Buffered == 0
	})
}

// Test_Bridge_MaxSilence: Run ends with a *SilenceError once no message
// was forwarded for --max-silence; messages keep it running, short lines
// do not.
func Test_Bridge_MaxSilence(t *testing.T) {
	ps := newFakePubsub(t)
	dst := newFakeDest(t, nil)
	var logs syncBuffer
	cfg := testConfig(t, &logs, []string{ps.url()}, dst.post())
	cfg.MaxSilence = 400 * time.Millisecond
	begin := time.Now()
	r := start(t, cfg)
	subscribed(t, ps, 1)
	// Messages every 100 ms for a second keep it running.
	var lastPub time.Time
	for tick := time.NewTicker(100 * time.Millisecond); time.Since(begin) < time.Second; <-tick.C {
		ps.publish("tick")
		lastPub = time.Now()
		select {
		case err := <-r.done:
			t.Fatalf("Run returned while messages flowed: %v", err)
		default:
		}
	}
	ps.publish("ab", "x") // short lines are not messages
	var err error
	select {
	case err = <-r.done:
		r.done <- err
	case <-time.After(wait):
		t.Fatal("Run did not return")
	}
	var se *SilenceError
	if !errors.As(err, &se) || se.Limit != cfg.MaxSilence || se.Silent < cfg.MaxSilence {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(lastPub); d < cfg.MaxSilence {
		t.Fatalf("returned %v after the last message", d)
	}
	if !strings.Contains(logs.String(), "Exiting: No messages received for") {
		t.Fatalf("logs:\n%s", logs.String())
	}
	if e := (&SilenceError{Silent: 4 * time.Second, Limit: 2 * time.Second}).Error(); e != "No messages received for 4 seconds (limit: 2 seconds)" {
		t.Fatalf("message %q", e)
	}
}

// Test_Bridge_ShutdownDrains: on cancel the bridge stops reading, delivers
// what it buffered (retrying on the way) and returns nil; a destination
// that stays down is given up after --drain-timeout and its messages are
// counted as dropped.
func Test_Bridge_ShutdownDrains(t *testing.T) {
	ps := newFakePubsub(t)
	var down atomic.Bool
	down.Store(true)
	slow := newFakeDest(t, func(n int, msg string) int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	var logs syncBuffer
	cfg := testConfig(t, &logs, []string{ps.url()}, slow.post())
	r := start(t, cfg)
	subscribed(t, ps, 1)
	ps.publish("dmsg1", "dmsg2", "dmsg3")
	testwait.For(t, wait, "retries", func() bool { return r.b.Stats().Destinations[0].Retried >= 2 })
	r.cancel()
	testwait.For(t, wait, "the source closed", func() bool { return ps.subscribers() == 0 })
	down.Store(false)
	var err error
	select {
	case err = <-r.done:
		r.done <- err
	case <-time.After(wait):
		t.Fatal("Run did not return")
	}
	if err != nil || joined(slow.accepted()) != "dmsg1|dmsg2|dmsg3" {
		t.Fatalf("err %v, accepted %q", err, slow.accepted())
	}

	ps2 := newFakePubsub(t)
	dead := newFakeDest(t, func(int, string) int { return http.StatusServiceUnavailable })
	cfg = testConfig(t, &logs, []string{ps2.url()}, dead.post())
	cfg.DrainTimeout = 300 * time.Millisecond
	r = start(t, cfg)
	subscribed(t, ps2, 1)
	ps2.publish("xmsg1", "xmsg2", "xmsg3")
	testwait.For(t, wait, "received", func() bool { return r.b.Stats().Received == 3 })
	begin := time.Now()
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Fatalf("stop took %v", d)
	}
	if st := r.b.Stats().Destinations[0]; st.Dropped != 3 || st.Forwarded != 0 {
		t.Fatalf("stats %+v", st)
	}
	if !strings.Contains(logs.String(), "not delivered before exit") || !strings.Contains(logs.String(), "msg=final") {
		t.Fatalf("logs:\n%s", logs.String())
	}
}

// Test_Bridge_IdempotentPut: --idempotent-put adds a key to /put
// destinations, the same for every retry of one message and different per
// message and destination; other destinations are left alone.
func Test_Bridge_IdempotentPut(t *testing.T) {
	ps := newFakePubsub(t)
	dst := newFakeDest(t, func(n int, msg string) int {
		if n == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	other := newFakeDest(t, nil)
	var logs syncBuffer
	post := Destination{Method: http.MethodPost, URL: other.URL + "/put"}
	cfg := testConfig(t, &logs, []string{ps.url()}, dst.get(), post, other.post())
	cfg.IdempotentPut = true
	start(t, cfg)
	subscribed(t, ps, 1)
	ps.publish("kmsg1", "kmsg2")
	testwait.For(t, wait, "deliveries", func() bool { return len(dst.accepted()) == 2 && len(other.accepted()) == 4 })
	idOf := func(uri string) string {
		m := regexp.MustCompile(`[?&]id=(p2h-[0-9a-f]{16}-\d+-\d+)$`).FindStringSubmatch(uri)
		if m == nil {
			return ""
		}
		return m[1]
	}
	reqs := dst.requests()
	first, retry, second := idOf(reqs[0].uri), idOf(reqs[1].uri), idOf(reqs[2].uri)
	if first == "" || first != retry || second == first || !strings.HasSuffix(first, "-0-0") || !strings.HasSuffix(second, "-0-1") {
		t.Fatalf("ids %q %q %q (uris %q %q %q)", first, retry, second, reqs[0].uri, reqs[1].uri, reqs[2].uri)
	}
	if !strings.HasPrefix(reqs[0].uri, "/put?data=kmsg1&id=") {
		t.Fatalf("uri %q", reqs[0].uri)
	}
	for _, req := range other.requests() {
		switch {
		case strings.HasPrefix(req.uri, "/put"):
			if !strings.HasSuffix(idOf(req.uri), "-1-0") && !strings.HasSuffix(idOf(req.uri), "-1-1") {
				t.Fatalf("POST /put uri %q", req.uri)
			}
		case req.uri != "/pub":
			t.Fatalf("/pub was rewritten: %q", req.uri)
		}
	}
}

// Test_Bridge_RequestLog: --enable-logging writes simplehttp's request-log
// line per request, status 0 when no answer came (transcript T4.3).
func Test_Bridge_RequestLog(t *testing.T) {
	ps := newFakePubsub(t)
	dst := newFakeDest(t, func(n int, msg string) int {
		if n == 1 {
			return 0
		}
		return http.StatusOK
	})
	var logs, reqLog syncBuffer
	cfg := testConfig(t, &logs, []string{ps.url()}, dst.get())
	cfg.RequestLog = &reqLog
	start(t, cfg)
	subscribed(t, ps, 1)
	ps.publish("hello world")
	testwait.For(t, wait, "two log lines", func() bool { return strings.Count(reqLog.String(), "\n") == 2 })
	host := strings.TrimPrefix(dst.URL, "http://")
	re := regexp.MustCompile(`^\[I \d{6} \d\d:\d\d:\d\d 0:0\] 0 GET ` + regexp.QuoteMeta(host) + `/put\?data=hello%20world \d+\.\d{3}ms\n` +
		`\[I \d{6} \d\d:\d\d:\d\d 0:1\] 200 GET ` + regexp.QuoteMeta(host) + `/put\?data=hello%20world \d+\.\d{3}ms\n$`)
	if !re.MatchString(reqLog.String()) {
		t.Fatalf("request log:\n%s", reqLog.String())
	}
}

// Test_Bridge_StatsLine: the periodic counters line names every counter.
func Test_Bridge_StatsLine(t *testing.T) {
	ps := newFakePubsub(t)
	dst := newFakeDest(t, nil)
	var logs syncBuffer
	cfg := testConfig(t, &logs, []string{ps.url()}, dst.post())
	cfg.StatsInterval = 50 * time.Millisecond
	start(t, cfg)
	subscribed(t, ps, 1)
	ps.publish("abc")
	testwait.For(t, wait, "a progress line with the message", func() bool {
		return strings.Contains(logs.String(), "msg=progress received=1 skipped=0 reconnects=0 source_errors=0 source="+strconv.Quote(ps.url())+" d0.forwarded=1 d0.retried=0 d0.failed=0 d0.dropped=0 d0.buffered=0")
	})

}
