package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/pubsub"
)

// withPeer serves /internal/ with the env's own hub.
func withPeer(set func() []byte) func(*Options) {
	return func(o *Options) {
		hub := o.Hub.(*pubsub.Hub)
		o.Peer = &PubsubPeer{Deliver: hub.Deliver, SubscriberSet: set}
	}
}

// postDeliver sends one /internal/deliver request.
func (e *psEnv) postDeliver(target string, body []byte, hop bool) resp {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+target, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if hop {
		req.Header.Set(api.HeaderHop, "1")
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{code: res.StatusCode, header: res.Header, body: string(b)}
}

// Test_Pubsub_InternalDeliver: records reach the local subscribers in
// order, byte for byte, and the answer has one count per record; they
// count as remote messages, not as publishes; a request without the hop
// header, a bad topic or body, or a GET are refused.
func Test_Pubsub_InternalDeliver(t *testing.T) {
	e := newPubsubEnv(t, withPeer(nil))
	s := e.subscribe("GET /sub?multipart=0&topic=t HTTP/1.0\r\n\r\n")
	s.expect("\r\n")
	pollUntil(t, "the subscriber", 10*time.Second, func() bool { return e.hub.Stats().CurrentConnections == 1 })

	body := pubsub.AppendDeliveryRecord(nil, [][]byte{[]byte("a"), []byte("x\ry")})
	body = pubsub.AppendDeliveryRecord(body, [][]byte{[]byte("")})
	r := e.postDeliver("/internal/deliver?topic=t", body, true)
	e.want(r, http.StatusOK, "1\n1\n")
	s.expect("a\nx\ry\n\n")
	e.want(e.postDeliver("/internal/deliver?topic=other", body, true), http.StatusOK, "0\n0\n")
	if st := e.hub.Stats(); st.RemoteReceived != 6 || st.MessagesReceived != 0 {
		t.Fatalf("stats %+v", st)
	}

	for _, tc := range []struct {
		target string
		body   []byte
		hop    bool
		code   int
	}{
		{"/internal/deliver?topic=t", body, false, http.StatusBadRequest},
		{"/internal/deliver?topic=bad%20name", body, true, http.StatusBadRequest},
		{"/internal/deliver?topic=t", []byte{5, 1}, true, http.StatusBadRequest},
		{"/internal/deliver?topic=t", nil, true, http.StatusBadRequest},
	} {
		if r := e.postDeliver(tc.target, tc.body, tc.hop); r.code != tc.code {
			t.Errorf("%s hop=%v: %d %q", tc.target, tc.hop, r.code, r.body)
		}
	}
	if r := e.do(http.MethodGet, "/internal/deliver?topic=t", ""); r.code != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" {
		t.Fatalf("GET deliver: %d %v", r.code, r.header)
	}
	// Oversize: above 2 × MaxBodySize + 1 MiB.
	big := newPubsubEnv(t, withPeer(nil), func(o *Options) { o.MaxBodySize = 1 })
	huge := pubsub.AppendDeliveryRecord(nil, [][]byte{make([]byte, 1<<20+10)})
	if r := big.postDeliver("/internal/deliver?topic=t", huge, true); r.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversize delivery: %d", r.code)
	}
}

// Test_Pubsub_InternalSubsAndClients: /internal/subs serves the entry the
// node gossips, /internal/clients the local subscribers as JSON; without a
// Peer every /internal/ path is a 404.
func Test_Pubsub_InternalSubsAndClients(t *testing.T) {
	e := newPubsubEnv(t, withPeer(func() []byte { return []byte{1, 2, 3} }))
	r := e.do(http.MethodGet, "/internal/subs", "")
	if r.code != http.StatusOK || r.body != "\x01\x02\x03" || r.header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("/internal/subs: %d %q %v", r.code, r.body, r.header)
	}
	e.subscribe("GET /sub?topic=t HTTP/1.1\r\nHost: x\r\n\r\n")
	r = e.do(http.MethodGet, "/internal/clients", "")
	cs, err := pubsub.DecodeClients([]byte(r.body))
	if r.code != http.StatusOK || err != nil || len(cs) != 1 || cs[0].Topic != "t" {
		t.Fatalf("/internal/clients: %d %q %v", r.code, r.body, err)
	}
	e.want(e.do(http.MethodGet, "/internal/nope", ""), http.StatusNotFound, "")

	plain := newPubsubEnv(t)
	for _, p := range []string{"/internal/subs", "/internal/clients", "/internal/deliver"} {
		plain.want(plain.do(http.MethodGet, p, ""), http.StatusNotFound, "")
	}
	noSet := newPubsubEnv(t, withPeer(nil))
	noSet.want(noSet.do(http.MethodGet, "/internal/subs", ""), http.StatusNotFound, "")
}

// Test_Pubsub_StatsRemoteLines: with a Fanout, /stats adds the remote
// counters after the reference's five lines and keys.
func Test_Pubsub_StatsRemoteLines(t *testing.T) {
	e := newPubsubEnv(t, func(o *Options) {
		o.Fanout = fakeFanout(func(context.Context, string, [][]byte) (int, error) { return 0, nil })
	})
	e.hub.RecordRemoteFailure(3)
	e.hub.RecordRemoteSent(5)
	e.hub.Deliver("t", [][]byte{[]byte("x")})
	e.mustGet("/stats", "Active connections: 0\nTotal connections: 0\nMessages received: 0\nMessages sent: 0\nKicked clients: 0\n"+
		"Remote messages received: 1\nRemote failures: 1\nRemote messages dropped: 3\nRemote messages sent: 5\n")
	e.mustGet("/stats?format=json", `{"current_connections": 0,"total_connections": 0,"messages_received": 0,"messages_sent": 0,"kicked_clients": 0,`+
		`"remote_messages_received": 1,"remote_failures": 1,"remote_messages_dropped": 3,"remote_messages_sent": 5}`+"\n")
}

// Test_Pubsub_Route: the route runs before anything is published, with
// the split messages; its failure is a 503 (413 when too large) and
// nothing reaches the subscribers.
func Test_Pubsub_Route(t *testing.T) {
	var (
		mu   sync.Mutex
		fail error
		seen []string
	)
	e := newPubsubEnv(t, func(o *Options) {
		o.Route = func(ctx context.Context, topic string, msgs [][]byte) error {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, fmt.Sprintf("%s:%q", topic, msgs))
			return fail
		}
	})
	s := e.subscribe("GET /sub?multipart=0&topic=t HTTP/1.0\r\n\r\n")
	s.expect("\r\n")
	e.mustPub("/pub?topic=t", "a\nb", "Published 2 messages to 1 clients.\n")
	s.expect("a\nb\n")
	mu.Lock()
	fail = fmt.Errorf("%w: queue q: no leader", pubsub.ErrRoute)
	mu.Unlock()
	r := e.do(http.MethodPost, "/pub?topic=t", "c")
	if r.code != http.StatusServiceUnavailable || r.header.Get(api.HeaderErrorCode) != "ROUTE_FAILED" || !strings.Contains(r.body, "nothing was published") || r.header.Get("Retry-After") != "1" {
		t.Fatalf("route failure: %d %v %q", r.code, r.header, r.body)
	}
	mu.Lock()
	fail = fmt.Errorf("%w: 413", pubsub.ErrRouteTooLarge)
	mu.Unlock()
	if r := e.do(http.MethodPost, "/pub?topic=t", "d"); r.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("too large: %d %q", r.code, r.body)
	}
	mu.Lock()
	fail = errors.New("anything else")
	mu.Unlock()
	if r := e.do(http.MethodPost, "/pub?topic=t", "e"); r.code != http.StatusServiceUnavailable {
		t.Fatalf("other error: %d %q", r.code, r.body)
	}
	mu.Lock()
	fail = nil
	mu.Unlock()
	e.mustPub("/pub?topic=t", "f", "Published 1 messages to 1 clients.\n")
	s.expect("f\n") // c, d and e never reached the subscriber
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 5 || seen[0] != `t:["a" "b"]` {
		t.Fatalf("route saw %q", seen)
	}
}

// Test_Pubsub_InternalDeliverWithin: a delivery whose X-Quorumq-Deliver-
// Within is up once its body has arrived is refused (503) and delivered to
// nobody, so that its sender, which has stopped waiting, and this node
// count it alike; one in time is delivered; a bad value is a 400.
func Test_Pubsub_InternalDeliverWithin(t *testing.T) {
	e := newPubsubEnv(t, withPeer(nil))
	body := pubsub.AppendDeliveryRecord(nil, [][]byte{[]byte("m")})
	deliver := func(within string, slow time.Duration) resp {
		t.Helper()
		// The body arrives after slow: the receiver's clock starts with
		// the request.
		pr, pw := io.Pipe()
		go func() {
			time.Sleep(slow)
			pw.Write(body)
			pw.Close()
		}()
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/internal/deliver?topic=t", pr)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(api.HeaderHop, "1")
		req.Header.Set(api.HeaderDeliverWithin, within)
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return resp{code: res.StatusCode, header: res.Header, body: string(b)}
	}
	r := deliver("20", 200*time.Millisecond)
	if r.code != http.StatusServiceUnavailable || !strings.Contains(r.body, "delivery not made") {
		t.Fatalf("late delivery: %d %q", r.code, r.body)
	}
	if st := e.hub.Stats(); st.RemoteReceived != 0 {
		t.Fatalf("a late delivery was counted: %+v", st)
	}
	if r := deliver("60000", 0); r.code != http.StatusOK || r.body != "0\n" {
		t.Fatalf("delivery in time: %d %q", r.code, r.body)
	}
	if st := e.hub.Stats(); st.RemoteReceived != 1 {
		t.Fatalf("the delivery in time was not counted: %+v", st)
	}
	for _, bad := range []string{"0", "-5", "1s", "x"} {
		if r := deliver(bad, 0); r.code != http.StatusBadRequest || !strings.Contains(r.body, api.HeaderDeliverWithin) {
			t.Fatalf("within %q: %d %q", bad, r.code, r.body)
		}
	}
}
