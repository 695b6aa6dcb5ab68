package node

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/cluster"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/cli"
	"github.com/quorumq/quorumq/pubsub"
)

func parseServeFlags(t *testing.T, args []string, env map[string]string) (Config, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	c := DefaultConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c.RegisterFlags(fs)
	err := cli.Parse(fs, args, io.Discard, "QUORUMQ_")
	return c, err
}

// TestRegisterFlags_DefaultsAreThePartsDefaults: with no flags the config
// is DefaultConfig, whose values are each part's own defaults.
func TestRegisterFlags_DefaultsAreThePartsDefaults(t *testing.T) {
	c, err := parseServeFlags(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster.HeartbeatTimeout != cluster.DefaultHeartbeatTimeout || c.Cluster.ElectionTimeout != cluster.DefaultElectionTimeout ||
		c.Cluster.LeaderLeaseTimeout != cluster.DefaultLeaderLeaseTimeout || c.Cluster.MaxPendingApplies != cluster.DefaultMaxPendingApplies {
		t.Errorf("raft timing %+v is not the cluster defaults", c.Cluster)
	}
	if c.Cluster.DataDir != DefaultDataDir || c.Cluster.RaftBind != DefaultRaftAddr || c.Cluster.GossipBind != DefaultGossipAddr ||
		c.QueueAddr != DefaultQueueAddr || c.PubsubAddr != DefaultPubsubAddr || len(c.Cluster.Join) != 0 {
		t.Errorf("addresses: %+v", c)
	}
	if c.Fanout.Timeout != pubsub.DefaultDeliverTimeout || c.Fanout.QueueLen != pubsub.DefaultPeerQueue ||
		c.Hub.MaxPendingBytes != pubsub.DefaultMaxPendingBytes || c.HTTP.Limits != (fsm.Limits{}) || len(c.Router.Routes) != 0 {
		t.Errorf("pubsub and limits: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

// TestRegisterFlags_HeartbeatMovesTheOtherTimeoutsUnlessGiven: the
// heartbeat timeout alone raises the election timeout and sets the lease to
// half; an election timeout or lease given explicitly wins whatever the
// order, on the command line or in the environment.
func TestRegisterFlags_HeartbeatMovesTheOtherTimeoutsUnlessGiven(t *testing.T) {
	tests := []struct {
		name             string
		args             []string
		env              map[string]string
		hb, elect, lease time.Duration
	}{
		{"heartbeat alone", []string{"--raft-heartbeat-timeout=2s"}, nil, 2 * time.Second, 2 * time.Second, time.Second},
		{"lower heartbeat keeps election", []string{"--raft-heartbeat-timeout=100ms"}, nil, 100 * time.Millisecond, cluster.DefaultElectionTimeout, 50 * time.Millisecond},
		{"election before heartbeat", []string{"--raft-election-timeout=5s", "--raft-heartbeat-timeout=2s"}, nil, 2 * time.Second, 5 * time.Second, time.Second},
		{"election after heartbeat", []string{"--raft-heartbeat-timeout=2s", "--raft-election-timeout=5s"}, nil, 2 * time.Second, 5 * time.Second, time.Second},
		{"lease before heartbeat", []string{"--raft-leader-lease-timeout=300ms", "--raft-heartbeat-timeout=2s"}, nil, 2 * time.Second, 2 * time.Second, 300 * time.Millisecond},
		{"environment", nil, map[string]string{"QUORUMQ_RAFT_HEARTBEAT_TIMEOUT": "2s", "QUORUMQ_RAFT_ELECTION_TIMEOUT": "3s", "QUORUMQ_RAFT_LEADER_LEASE_TIMEOUT": "400ms"},
			2 * time.Second, 3 * time.Second, 400 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseServeFlags(t, tt.args, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if got := [3]time.Duration{c.Cluster.HeartbeatTimeout, c.Cluster.ElectionTimeout, c.Cluster.LeaderLeaseTimeout}; got != [3]time.Duration{tt.hb, tt.elect, tt.lease} {
				t.Errorf("heartbeat, election, lease = %v, want %v", got, [3]time.Duration{tt.hb, tt.elect, tt.lease})
			}
		})
	}
}

// TestRegisterFlags_ValuesReachTheirParts: each flag lands in the option
// of the part that owns it; lists accumulate; bad values are refused.
func TestRegisterFlags_ValuesReachTheirParts(t *testing.T) {
	c, err := parseServeFlags(t, []string{
		"--join=a:1, b:2", "--join", "c:3", "--overflow-policy=evict-oldest", "--max-depth=7",
		"--route=t:q,u:r", "--fanout-timeout=250ms", "--fanout-queue=9", "--max-pending-bytes=10",
		"--forward-timeout=2s", "--raft-addr=127.0.0.1:1", "--raft-pending-entries=2",
		"--forward-batch=false", "--forward-batch-queue=8",
	}, map[string]string{"QUORUMQ_NODE_ID": "n7", "QUORUMQ_ROUTE": "ignored:x", "QUORUMQ_FORWARD_BATCH_QUEUE_BYTES": "1024"})
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case !slices.Equal(c.Cluster.Join, []string{"a:1", "b:2", "c:3"}):
		t.Errorf("join %q", c.Cluster.Join)
	case c.HTTP.Limits != fsm.Limits{MaxDepth: 7, Policy: fsm.OverflowEvictOldest}:
		t.Errorf("limits %+v", c.HTTP.Limits)
	case !slices.Equal(c.Router.Routes, []pubsub.Route{{Topic: "t", Queue: "q"}, {Topic: "u", Queue: "r"}}):
		t.Errorf("routes %v (the command line wins over QUORUMQ_ROUTE)", c.Router.Routes)
	case c.Fanout.Timeout != 250*time.Millisecond || c.Fanout.QueueLen != 9 || c.Hub.MaxPendingBytes != 10:
		t.Errorf("fan-out %v %d, pending %d", c.Fanout.Timeout, c.Fanout.QueueLen, c.Hub.MaxPendingBytes)
	case c.HTTP.ForwardTimeout != 2*time.Second || c.Cluster.RaftBind != "127.0.0.1:1" || c.Cluster.MaxPendingApplies != 2:
		t.Errorf("forward %v, raft %q, pending %d", c.HTTP.ForwardTimeout, c.Cluster.RaftBind, c.Cluster.MaxPendingApplies)
	case c.HTTP.ForwardBatch || c.HTTP.ForwardBatchQueue != 8 || c.HTTP.ForwardBatchQueueBytes != 1024:
		t.Errorf("forward batch %v, queue %d, bytes %d", c.HTTP.ForwardBatch, c.HTTP.ForwardBatchQueue, c.HTTP.ForwardBatchQueueBytes)
	case c.Cluster.NodeID != "n7":
		t.Errorf("node id %q from QUORUMQ_NODE_ID", c.Cluster.NodeID)
	}

	for _, args := range [][]string{
		{"--overflow-policy=drop"}, {"--route=no-colon"}, {"--raft-heartbeat-timeout=soon"}, {"--max-depth=x"},
	} {
		if _, err := parseServeFlags(t, args, nil); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

// TestRegisterFlags_RaftLogStore: --raft-log-store and
// QUORUMQ_RAFT_LOG_STORE choose the raft log store (auto by default),
// the command line wins, and any other value is refused with an error
// that names the choices.
func TestRegisterFlags_RaftLogStore(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    cluster.LogStore
		wantErr bool
	}{
		{name: "default", want: cluster.LogStoreAuto},
		{name: "auto", args: []string{"--raft-log-store=auto"}, want: cluster.LogStoreAuto},
		{name: "wal", args: []string{"--raft-log-store=wal"}, want: cluster.LogStoreWAL},
		{name: "boltdb", args: []string{"--raft-log-store", "boltdb"}, want: cluster.LogStoreBoltDB},
		{name: "environment", env: map[string]string{"QUORUMQ_RAFT_LOG_STORE": "wal"}, want: cluster.LogStoreWAL},
		{name: "flag beats environment", args: []string{"--raft-log-store=boltdb"}, env: map[string]string{"QUORUMQ_RAFT_LOG_STORE": "wal"}, want: cluster.LogStoreBoltDB},
		{name: "unknown", args: []string{"--raft-log-store=rocksdb"}, wantErr: true},
		{name: "empty", args: []string{"--raft-log-store="}, wantErr: true},
		{name: "unknown in environment", env: map[string]string{"QUORUMQ_RAFT_LOG_STORE": "bolt"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseServeFlags(t, tt.args, tt.env)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "want auto, boltdb or wal") {
					t.Fatalf("err = %v, want one naming auto, boltdb and wal", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Cluster.LogStore != tt.want {
				t.Errorf("log store = %v, want %v", c.Cluster.LogStore, tt.want)
			}
		})
	}
}

// TestStart_RefusesAnInvalidConfig: Start validates before it opens
// anything.
func TestStart_RefusesAnInvalidConfig(t *testing.T) {
	for _, edit := range []func(*Config){
		func(c *Config) { c.QueueAddr = "" },
		func(c *Config) { c.ShutdownTimeout = 0 },
		func(c *Config) { c.Logger = nil },
	} {
		c := DefaultConfig()
		c.Cluster.DataDir = t.TempDir()
		edit(&c)
		if _, err := Start(c); !errors.Is(err, ErrInvalid) {
			t.Errorf("Start = %v, want ErrInvalid", err)
		}
	}
}
