package systemtest

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/quorumq/quorumq/internal/testkit"
)

// mode is how a test runs its nodes: open, as the tutorial runs them on
// loopback, or secured, as a cluster on a network runs: HTTPS on both
// ports, mutual TLS on raft and on every node-to-node call, an encrypted
// gossip, and a token with every request (see README, Security). The
// tests whose paths differ between the two (forwarding, fan-out,
// membership, raft, the clients and tools) run in both modes, through
// inModes.
type mode struct {
	name   string
	secure bool
}

var (
	open    = mode{name: "open"}
	secured = mode{name: "secured", secure: true}
)

// inModes runs f as one subtest per mode, open first.
func inModes(t *testing.T, f func(t *testing.T, m mode)) {
	t.Helper()
	for _, m := range []mode{open, secured} {
		t.Run(m.name, func(t *testing.T) { f(t, m) })
	}
}

// withMode runs the cluster in mode m: a secured one with fresh
// security material in the test's temporary directory.
func withMode(t testing.TB, m mode) clusterOption {
	if !m.secure {
		return func(*testkit.ClusterOptions) {}
	}
	return withSecurity(mustSecurity(t))
}

// mustRefuseAnonymous checks that secured nodes are what the test takes
// them for, so that a secured run cannot pass as an open one: each one
// answers a request without a token with a 401, on both ports.
func (u *user) mustRefuseAnonymous(nodes ...*node) {
	u.t.Helper()
	for _, nd := range nodes {
		for _, url := range []string{nd.QueueURL + "/stats", nd.PubsubURL + "/stats"} {
			if !strings.HasPrefix(url, "https://") {
				u.t.Fatalf("%s: a secured node at %s", nd.ID, url)
			}
			req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
			if err != nil {
				u.t.Fatal(err)
			}
			resp, err := u.client.Do(req)
			if err != nil {
				u.t.Fatalf("GET %s without a token: %v", url, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				u.t.Fatalf("GET %s without a token: %d, want 401", url, resp.StatusCode)
			}
		}
	}
}
