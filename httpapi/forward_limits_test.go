package httpapi

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
)

// frozenLeader makes the fleet's leader id a listener that never accepts:
// the kernel completes TCP handshakes and takes the request bytes, and
// nothing ever answers, as with a leader stopped by SIGSTOP.
func (f *fleet) frozenLeader(id string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { ln.Close() })
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addrs[id] = ln.Addr().String()
	f.leader = id
}

// within fails the test when took is longer than the forward timeout
// plus one second, the bound of the issue; the second is a generous
// margin for a slow, busy test machine.
func within(t *testing.T, took, hold time.Duration) {
	t.Helper()
	if took > hold+time.Second {
		t.Fatalf("answered after %v, want within the forward timeout %v plus 1s", took, hold)
	}
}

// TestForward_FrozenLeader_503WithinForwardTimeout checks that a leader
// that takes connections and never answers holds a forwarded request for
// ForwardTimeout at most: a write that was sent is 503 OUTCOME_UNKNOWN
// (it may yet apply), a read 503 NO_LEADER, both with Retry-After.
func TestForward_FrozenLeader_503WithinForwardTimeout(t *testing.T) {
	const hold = 700 * time.Millisecond
	f := newFleet(t, []string{"n2"}, func(o *Options) { o.ForwardTimeout = hold })
	f.frozenLeader("frozen")
	n2 := f.nodes["n2"]

	start := time.Now()
	r := n2.post("/put", "x")
	within(t, time.Since(start), hold)
	n2.want(r, 503, api.ErrOutcomeUnknown.Text+"\n")
	wantHeader(t, r, "Retry-After", "1")

	start = time.Now()
	r = n2.get("/stats")
	within(t, time.Since(start), hold)
	if r.code != 503 || !strings.Contains(r.body, "no answer within the forward timeout of 700ms") {
		t.Fatalf("read via a frozen leader: %d %q", r.code, r.body)
	}
	wantHeader(t, r, api.HeaderErrorCode, "NO_LEADER")
	wantHeader(t, r, "Retry-After", "1")
}

// TestForward_FrozenLeaderTLS_HandshakeBoundedByForwardTimeout checks
// the same with node-to-node TLS, where the frozen leader never does the
// handshake: nothing was sent, so the answer is NO_LEADER, and it comes
// within ForwardTimeout although one handshake may take longer.
func TestForward_FrozenLeaderTLS_HandshakeBoundedByForwardTimeout(t *testing.T) {
	const hold = 700 * time.Millisecond
	f := newFleet(t, []string{"n2"}, func(o *Options) {
		o.ForwardTimeout = hold
		o.PeerTLS = &tls.Config{InsecureSkipVerify: true}
	})
	f.frozenLeader("frozen")
	n2 := f.nodes["n2"]

	start := time.Now()
	r := n2.post("/put", "x")
	within(t, time.Since(start), hold)
	if r.code != 503 || r.header.Get(api.HeaderErrorCode) != "NO_LEADER" {
		t.Fatalf("write via a frozen TLS leader: %d %s %q, want 503 NO_LEADER", r.code, r.header.Get(api.HeaderErrorCode), r.body)
	}
	wantHeader(t, r, "Retry-After", "1")
}

// TestForward_StalledAnswer_CutAfterForwardTimeout checks the relay of an
// answer that stops coming: the status was sent, and the body is cut
// once the leader has sent nothing for ForwardTimeout, so a frozen
// leader does not hold the follower's connection for as long as the
// client waits.
func TestForward_StalledAnswer_CutAfterForwardTimeout(t *testing.T) {
	const hold = 500 * time.Millisecond
	f := newFleet(t, []string{"n2"}, func(o *Options) { o.ForwardTimeout = hold })
	release := make(chan struct{})
	f.rawLeader("raw", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("first part\n"))
		http.NewResponseController(w).Flush()
		<-release
	})
	t.Cleanup(func() { close(release) }) // before the server closes: cleanups run last first
	f.setLeader("raw")
	n2 := f.nodes["n2"]

	start := time.Now()
	res, err := http.Get(n2.srv.URL + "/dump")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	within(t, time.Since(start), hold)
	if res.StatusCode != 200 || string(body) != "first part\n" || err == nil {
		t.Fatalf("stalled relay: %d %q %v, want 200, the first part, then a cut body", res.StatusCode, body, err)
	}
}

// TestForward_Relayed503WithoutRetryAfter_GetsOne checks that every 503
// the forwarder sends says when to retry, even one relayed from a leader
// (or a proxy in front of it) that did not.
func TestForward_Relayed503WithoutRetryAfter_GetsOne(t *testing.T) {
	f := newFleet(t, []string{"n2"})
	f.rawLeader("raw", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(api.HeaderErrorCode, "OUTCOME_UNKNOWN")
		w.WriteHeader(503)
		io.WriteString(w, "outcome unknown\n")
	})
	f.setLeader("raw")
	r := f.nodes["n2"].get("/put?data=x")
	if r.code != 503 || r.body != "outcome unknown\n" {
		t.Fatalf("relayed 503: %d %q", r.code, r.body)
	}
	wantHeader(t, r, "Retry-After", "1")
}
