package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/quorumq/quorumq/internal/node/nodetest"
)

// Test_BenchCommand_AgainstANode runs `quorumq bench` in every mode but
// pubsub's against a real single-node cluster, briefly, and checks the
// JSON and text reports and the exit codes.
func Test_BenchCommand_AgainstANode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real node")
	}
	s := nodetest.StartReady(t, nil)
	target := "--targets=http://" + s.QueueAddr
	for _, c := range []struct {
		mode  string
		args  []string
		wantN uint64
	}{
		{"put", []string{"--count=200", "--concurrency=4"}, 200},
		{"mput", []string{"--count=10", "--concurrency=2", "--batch=10"}, 100},
		{"get", []string{"--count=50", "--concurrency=2", "--prefill=0"}, 50},
		{"mget", []string{"--count=5", "--concurrency=1", "--batch=10", "--prefill=0"}, 50},
		{"lease", []string{"--count=20", "--concurrency=2", "--prefill=20", "--queue=leased"}, 20},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{c.mode, target, "--json", "--warmup=0", "--quiet"}, c.args...)
		if code := runBench(args, &out, &errOut); code != 0 {
			t.Fatalf("%s: exit %d: %s", c.mode, code, errOut.String())
		}
		var rep struct {
			Mode   string `json:"mode"`
			Ops    uint64 `json:"ops"`
			Msgs   uint64 `json:"msgs"`
			Errors uint64 `json:"errors"`
			Lat    struct {
				P99 float64 `json:"p99"`
			} `json:"latency_us"`
		}
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("%s: %v: %s", c.mode, err, out.String())
		}
		if rep.Mode != c.mode || rep.Msgs != c.wantN || rep.Errors != 0 || rep.Lat.P99 <= 0 {
			t.Fatalf("%s: %+v, want %d messages", c.mode, rep, c.wantN)
		}
	}
	var out, errOut bytes.Buffer
	if code := runBench([]string{"put", target, "--duration=300ms", "--warmup=0"}, &out, &errOut); code != 0 {
		t.Fatalf("text: exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"mode put", "throughput", "p99.9"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("text report lacks %q:\n%s", want, out.String())
		}
	}
	if code := runBench([]string{"nosuchmode", target}, io.Discard, io.Discard); code == 0 {
		t.Fatal("unknown mode: exit 0")
	}
	if code := runBench([]string{"--concurrency=x"}, io.Discard, io.Discard); code != 2 {
		t.Fatalf("bad flag: exit %d, want 2", code)
	}
}
