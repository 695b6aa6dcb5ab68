package peer

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
)

func newTestClient(t *testing.T) *Client {
	t.Helper()
	c, err := New(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// Every call is one hop to the internal route, and a status answer is
// decoded.
func TestClient_StatusReadsTheInternalRoute(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != api.PathStatus || r.Header.Get(api.HeaderHop) == "" {
			http.Error(w, "wrong route "+r.URL.Path, http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(api.Status{NodeID: "n1", Term: 3})
	})
	st, err := newTestClient(t).Status(t.Context(), addr)
	if err != nil || st.NodeID != "n1" || st.Term != 3 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
}

// A delivery carries its topic, sender and body, and the answer gives one
// count per publish; a wrong number of counts is an error.
func TestClient_DeliverReturnsOneCountPerPublish(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path != api.PathDeliver || r.URL.Query().Get("topic") != "t" || r.Header.Get(api.HeaderFrom) != "me" || string(b) != "body" {
			http.Error(w, "bad delivery", http.StatusBadRequest)
			return
		}
		io.WriteString(w, "2\n0\n")
	})
	c := newTestClient(t)
	d := Delivery{Topic: "t", From: "me", ContentType: "x", Body: []byte("body"), Records: 2}
	counts, err := c.Deliver(t.Context(), addr, d)
	if err != nil || len(counts) != 2 || counts[0] != 2 || counts[1] != 0 {
		t.Fatalf("Deliver = %v, %v", counts, err)
	}
	d.Records = 3
	if _, err := c.Deliver(t.Context(), addr, d); err == nil {
		t.Fatal("two counts accepted for three publishes")
	}
}

// A refusal names the status and the first line of the answer; an answer
// above the route's limit is ErrTooLarge.
func TestClient_RefusalsAndOversizedAnswersAreErrors(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == api.PathSubs {
			w.Write(make([]byte, maxSubsBytes+1))
			return
		}
		http.Error(w, "not here\nmore", http.StatusServiceUnavailable)
	})
	// 16 MiB under the race detector on a loaded machine can take longer
	// than the default deadline; the limit, not the deadline, is tested.
	o := DefaultOptions()
	o.Timeout = time.Minute
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	if _, err := c.Clients(t.Context(), addr); err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "not here") {
		t.Fatalf("Clients err = %v", err)
	}
	if _, err := c.SubscriberSet(t.Context(), addr); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("SubscriberSet err = %v, want ErrTooLarge", err)
	}
}
