package health

import (
	"context"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func serverConfig(t *testing.T, srv *httptest.Server, tls bool) Config {
	t.Helper()
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return Config{Addr: "0.0.0.0:" + port, TLS: tls}
}

func TestCheck_ReadyNodeIsHealthyAndOthersAreNot(t *testing.T) {
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || !ready {
			http.Error(w, "no leader", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	c := serverConfig(t, srv, false)
	if err := Check(context.Background(), c); err != nil {
		t.Fatalf("ready node: %v", err)
	}
	ready = false
	if err := Check(context.Background(), c); !errors.Is(err, ErrNotReady) {
		t.Fatalf("unready node: %v, want ErrNotReady", err)
	}
}

func TestCheck_TrustsTheGivenCAOrSkipsVerificationWithout(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	c := serverConfig(t, srv, true)
	if err := Check(context.Background(), c); err != nil {
		t.Fatalf("no CA (unverified loopback): %v", err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	block := &pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}
	if err := os.WriteFile(ca, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	c.CAFile = ca
	if err := Check(context.Background(), c); err != nil {
		t.Fatalf("with the server's CA: %v", err)
	}
}

func TestFromEnv_FollowsServesVariables(t *testing.T) {
	env := map[string]string{"QUORUMQ_QUEUE_ADDR": "0.0.0.0:9181", "QUORUMQ_TLS_CERT": "/certs/n.pem", "QUORUMQ_TLS_CA": "/certs/ca.pem"}
	c := FromEnv(func(k string) string { return env[k] })
	url, err := c.URL()
	if err != nil || url != "https://127.0.0.1:9181/readyz" || c.CAFile != "/certs/ca.pem" {
		t.Fatalf("got %q %+v %v", url, c, err)
	}
	c = FromEnv(func(string) string { return "" })
	if url, _ := c.URL(); url != "http://127.0.0.1:8081/readyz" {
		t.Fatalf("defaults: %q", url)
	}
	if _, err := (Config{Addr: "nohost"}).URL(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad addr: %v", err)
	}
}
