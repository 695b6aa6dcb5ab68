package devcluster

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPlan_PortsFollowTheDocumentedScheme: node i gets the block
// BasePort+10(i-1): pubsub +0, queue +1, raft +2, gossip +3, id node<i>,
// data BaseDir/node<i>.
func TestPlan_PortsFollowTheDocumentedScheme(t *testing.T) {
	plan, err := Plan(testConfig(Config{Nodes: 3, BaseDir: "/tmp/dc", BasePort: 9000, Binary: "/bin/quorumq"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []Node{
		{1, "node1", filepath.Join("/tmp/dc", "node1"), "127.0.0.1:9000", "127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003", false},
		{2, "node2", filepath.Join("/tmp/dc", "node2"), "127.0.0.1:9010", "127.0.0.1:9011", "127.0.0.1:9012", "127.0.0.1:9013", false},
		{3, "node3", filepath.Join("/tmp/dc", "node3"), "127.0.0.1:9020", "127.0.0.1:9021", "127.0.0.1:9022", "127.0.0.1:9023", false},
	}
	if !slices.Equal(plan, want) {
		t.Fatalf("plan:\n got  %+v\n want %+v", plan, want)
	}
	if got := plan[1].QueueURL(); got != "http://127.0.0.1:9011" {
		t.Fatalf("node2 queue URL %q", got)
	}
	if got := plan[2].PubsubURL(); got != "http://127.0.0.1:9020" {
		t.Fatalf("node3 pubsub URL %q", got)
	}
}

// TestPlan_Defaults: DefaultConfig is 3 nodes from port 9000 in
// ./devcluster-data, run with this executable.
func TestPlan_Defaults(t *testing.T) {
	cfg, err := DefaultConfig().resolved()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Nodes != 3 || cfg.BasePort != 9000 || cfg.BaseDir != "./devcluster-data" || cfg.Binary == "" ||
		cfg.StopTimeout != DefaultStopTimeout || cfg.ReadyNotice != DefaultReadyNotice {
		t.Fatalf("defaults: %+v", cfg)
	}
	plan := cfg.plan()
	if len(plan) != 3 || plan[0].QueueAddr != "127.0.0.1:9001" || plan[0].DataDir != filepath.Join("devcluster-data", "node1") {
		t.Fatalf("default plan: %+v", plan)
	}
}

// TestPlan_BadConfig_Errors: node counts and base ports that cannot work
// are refused with a message that names the problem.
func TestPlan_BadConfig_Errors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"zero nodes", func(c *Config) { c.Nodes = 0 }, "nodes=0"},
		{"negative nodes", func(c *Config) { c.Nodes = -1 }, "nodes=-1"},
		{"too many nodes", func(c *Config) { c.Nodes = MaxNodes + 1 }, "nodes=100"},
		{"negative port", func(c *Config) { c.BasePort = -5 }, "base-port=-5"},
		{"ports past 65535", func(c *Config) { c.BasePort = 65515 }, "need ports 65515 to 65538"},
		{"zero stop timeout", func(c *Config) { c.StopTimeout = 0 }, "stop-timeout=0s: must be positive"},
		{"negative stop timeout", func(c *Config) { c.StopTimeout = -1 }, "stop-timeout=-1ns: must be positive"},
		{"zero ready notice", func(c *Config) { c.ReadyNotice = 0 }, "must be positive"},
		{"empty base directory", func(c *Config) { c.BaseDir = "" }, "base-dir is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Binary = "/bin/quorumq"
			tc.change(&cfg)
			_, err := Plan(cfg)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
	if _, err := Plan(testConfig(Config{Nodes: 3, BasePort: 65512, Binary: "x"})); err != nil {
		t.Fatalf("ports up to 65535 exactly: %v", err)
	}
}

// TestServeArgs_SameClusterFlagsOnEveryNode: each node gets its own id,
// directory and ports, and every node the same --bootstrap-expect and the
// same --join list (all gossip addresses); extra flags come last so they
// override the generated ones.
func TestServeArgs_SameClusterFlagsOnEveryNode(t *testing.T) {
	plan, err := Plan(testConfig(Config{Nodes: 3, BaseDir: "d", BasePort: 7000, Binary: "q"}))
	if err != nil {
		t.Fatal(err)
	}
	got := nodeConfig("q", plan, plan[1], []string{"--log-level=debug", "--queue-addr=127.0.0.1:1"}, nil).Args()
	want := []string{
		"serve",
		"--node-id=node2",
		"--data-dir=" + filepath.Join("d", "node2"),
		"--pubsub-addr=127.0.0.1:7010",
		"--queue-addr=127.0.0.1:7011",
		"--raft-addr=127.0.0.1:7012",
		"--gossip-addr=127.0.0.1:7013",
		"--bootstrap-expect=3",
		"--join=127.0.0.1:7003,127.0.0.1:7013,127.0.0.1:7023",
		"--log-level=debug",
		"--queue-addr=127.0.0.1:1",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("args:\n got  %q\n want %q", got, want)
	}
	one, _ := Plan(testConfig(Config{Nodes: 1, BaseDir: "d", BasePort: 7000, Binary: "q"}))
	if got := nodeConfig("q", one, one[0], nil, nil).Args(); !slices.Contains(got, "--bootstrap-expect=1") || !slices.Contains(got, "--join=127.0.0.1:7003") {
		t.Fatalf("single node args: %q", got)
	}
}

// TestPrefixWriter_WholeLinesWithPrefix: output arriving in arbitrary
// pieces comes out as whole prefixed lines; a last line without newline is
// flushed; an endless line is broken at maxLine.
func TestPrefixWriter_WholeLinesWithPrefix(t *testing.T) {
	var sink strings.Builder
	out := &output{w: &sink}
	p := &prefixWriter{out: out, prefix: "[node1] "}
	for _, piece := range []string{"hel", "lo\nwor", "ld\n\nlast"} {
		if n, err := p.Write([]byte(piece)); n != len(piece) || err != nil {
			t.Fatalf("Write: %d %v", n, err)
		}
	}
	if got, want := sink.String(), "[node1] hello\n[node1] world\n[node1] \n"; got != want {
		t.Fatalf("before flush: %q, want %q", got, want)
	}
	p.flush()
	p.flush()
	if got, want := sink.String(), "[node1] hello\n[node1] world\n[node1] \n[node1] last\n"; got != want {
		t.Fatalf("after flush: %q, want %q", got, want)
	}

	sink.Reset()
	p.Write([]byte(strings.Repeat("x", maxLine+10)))
	p.flush()
	lines := strings.Split(strings.TrimSuffix(sink.String(), "\n"), "\n")
	if len(lines) != 2 || len(lines[0]) != len("[node1] ")+maxLine || lines[1] != "[node1] xxxxxxxxxx" {
		t.Fatalf("long line split into %d lines of %d bytes", len(lines), len(lines[0]))
	}
}

// testConfig is c with the fields it leaves zero taken from DefaultConfig,
// so that a test names only what it varies (tests of zero values change a
// DefaultConfig instead). Restart is c's: a test of restarts asks for
// them, the others see a node that dies stay down.
func testConfig(c Config) Config {
	d := DefaultConfig()
	if c.Nodes != 0 {
		d.Nodes = c.Nodes
	}
	if c.BaseDir != "" {
		d.BaseDir = c.BaseDir
	}
	if c.BasePort != 0 {
		d.BasePort = c.BasePort
	}
	if c.StopTimeout != 0 {
		d.StopTimeout = c.StopTimeout
	}
	if c.RestartDelay != 0 {
		d.RestartDelay = c.RestartDelay
	}
	d.Binary, d.ServeArgs, d.Restart = c.Binary, c.ServeArgs, c.Restart
	return d
}
