package pubsub

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func Test_Route_Parse(t *testing.T) {
	r, err := ParseRoute("clicks:click-queue")
	if err != nil || r != (Route{Topic: "clicks", Queue: "click-queue"}) || r.String() != "clicks:click-queue" {
		t.Fatalf("%+v, %v", r, err)
	}
	for _, bad := range []string{"", "clicks", ":q", "t:", "t:q:r", "bad topic:q", "t:" + strings.Repeat("q", 65)} {
		if _, err := ParseRoute(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	rs, err := ParseRoutes(" a:q1, ,b:q2,a:q3")
	if err != nil || len(rs) != 3 || rs[2] != (Route{"a", "q3"}) {
		t.Fatalf("ParseRoutes: %+v, %v", rs, err)
	}
	if _, err := ParseRoutes("a:q1,b"); err == nil {
		t.Fatal("ParseRoutes accepted a bad item")
	}
}

// fakeQueuePort answers /mput with the statuses of script in turn (the
// last one repeats) and records the requests.
type fakeQueuePort struct {
	srv    *httptest.Server
	mu     sync.Mutex
	script []int
	reqs   []string // "query|body"
}

func newFakeQueuePort(t *testing.T, script ...int) *fakeQueuePort {
	q := &fakeQueuePort{script: script}
	q.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		q.mu.Lock()
		q.reqs = append(q.reqs, r.URL.Path+"?"+r.URL.RawQuery+"|"+string(b))
		code := q.script[0]
		if len(q.script) > 1 {
			q.script = q.script[1:]
		}
		q.mu.Unlock()
		w.WriteHeader(code)
		if code != http.StatusOK {
			io.WriteString(w, "some reason\n")
		}
	}))
	t.Cleanup(q.srv.Close)
	return q
}

func (q *fakeQueuePort) requests() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.reqs...)
}

func newTestRouter(t *testing.T, q *fakeQueuePort, timeout time.Duration, routes ...Route) *Router {
	o := DefaultRouterOptions()
	o.Routes, o.QueueAddr, o.NodeID, o.Timeout = routes, q.srv.Listener.Addr().String(), "n1", timeout
	o.Logger = slog.New(slog.DiscardHandler)
	r, err := NewRouter(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// A routed publish is one /mput per queue with separator \n and an id=;
// a 503 is resent with the same id until it succeeds; empty messages and
// unrouted topics send nothing.
func Test_Route_EnqueueRetriesWithSameID(t *testing.T) {
	q := newFakeQueuePort(t, http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusOK)
	r := newTestRouter(t, q, 5*time.Second, Route{"t", "q1"})
	if err := r.Enqueue(context.Background(), "t", [][]byte{[]byte("a"), nil, []byte("b c")}); err != nil {
		t.Fatal(err)
	}
	reqs := q.requests()
	if len(reqs) != 3 || reqs[0] != reqs[2] {
		t.Fatalf("requests %q", reqs)
	}
	if !strings.HasPrefix(reqs[0], "/mput?id=route-n1-") || !strings.Contains(reqs[0], "&queue=q1&separator=%0A|a\nb c") {
		t.Fatalf("request %q", reqs[0])
	}
	if err := r.Enqueue(context.Background(), "t", [][]byte{[]byte("x")}); err != nil {
		t.Fatal(err)
	}
	if reqs := q.requests(); len(reqs) != 4 || reqs[3][:strings.Index(reqs[3], "&")] == reqs[0][:strings.Index(reqs[0], "&")] {
		t.Fatalf("second publish reused the id: %q", reqs)
	}
	for _, msgs := range [][][]byte{{nil}, {[]byte("x")}} {
		topic := "t"
		if msgs[0] != nil {
			topic = "unrouted"
		}
		if err := r.Enqueue(context.Background(), topic, msgs); err != nil || len(q.requests()) != 4 {
			t.Fatalf("%s %q: %v, %d requests", topic, msgs, err, len(q.requests()))
		}
	}
}

// Errors: 413 is ErrRouteTooLarge, other refusals ErrRoute at once, and
// 503s until the timeout ErrRoute.
func Test_Route_EnqueueErrors(t *testing.T) {
	for _, tc := range []struct {
		code int
		want error
	}{
		{http.StatusRequestEntityTooLarge, ErrRouteTooLarge},
		{507, ErrRoute},
		{http.StatusBadRequest, ErrRoute},
		{http.StatusServiceUnavailable, ErrRoute},
	} {
		q := newFakeQueuePort(t, tc.code)
		r := newTestRouter(t, q, 300*time.Millisecond, Route{"t", "q"})
		start := time.Now()
		err := r.Enqueue(context.Background(), "t", [][]byte{[]byte("m")})
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "some reason") {
			t.Fatalf("%d: %v", tc.code, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%d: took %v", tc.code, d)
		}
		if n := len(q.requests()); (tc.code == http.StatusServiceUnavailable) != (n > 1) {
			t.Fatalf("%d: %d requests", tc.code, n)
		}
	}
}
