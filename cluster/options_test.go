package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/fsm"
)

// Every bad option is an error wrapping ErrInvalidOptions, found before any
// file or port is touched.
func TestOptions_Validation(t *testing.T) {
	base := func() Options {
		return Options{DataDir: t.TempDir(), RaftBind: "127.0.0.1:0"}
	}
	cases := []struct {
		name string
		edit func(*Options)
	}{
		{"no data dir", func(o *Options) { o.DataDir = "" }},
		{"no raft bind", func(o *Options) { o.RaftBind = "" }},
		{"raft bind without port", func(o *Options) { o.RaftBind = "127.0.0.1" }},
		{"raft bind bad port", func(o *Options) { o.RaftBind = "127.0.0.1:99999" }},
		{"unspecified bind without advertise", func(o *Options) { o.RaftBind = "0.0.0.0:0" }},
		{"bad advertise", func(o *Options) { o.RaftAdvertise = "nope" }},
		{"bad node id", func(o *Options) { o.NodeID = "has space" }},
		{"bootstrap expect negative", func(o *Options) { o.BootstrapExpect = -1 }},
		{"bootstrap expect too large", func(o *Options) { o.BootstrapExpect = 16 }},
		{"gossip bind without port", func(o *Options) { o.GossipBind = "127.0.0.1" }},
		{"gossip bind host name", func(o *Options) { o.GossipBind = "localhost:0" }},
		{"bad gossip advertise", func(o *Options) { o.GossipAdvertise = "nope" }},
		{"bad join address", func(o *Options) { o.Join = []string{"127.0.0.1:7946", "no-port"} }},
		{"negative reconcile interval", func(o *Options) { o.ReconcileInterval = -time.Second }},
		{"tiny reconcile interval", func(o *Options) { o.ReconcileInterval = time.Millisecond }},
		{"negative promote after", func(o *Options) { o.PromoteAfter = -time.Second }},
		{"negative reap timeout", func(o *Options) { o.ReapTimeout = -time.Hour }},
		{"negative reconnect timeout", func(o *Options) { o.ReconnectTimeout = -time.Hour }},
		{"negative min voters", func(o *Options) { o.MinVoters = -1 }},
		{"queue addr too long for gossip", func(o *Options) { o.QueueAddr = strings.Repeat("a", 200) + ":8081" }},
		{"negative heartbeat", func(o *Options) { o.HeartbeatTimeout = -time.Second }},
		{"tiny heartbeat", func(o *Options) { o.HeartbeatTimeout = time.Millisecond }},
		{"lease above heartbeat", func(o *Options) { o.LeaderLeaseTimeout = 2 * time.Second }},
		{"election below heartbeat", func(o *Options) { o.HeartbeatTimeout, o.ElectionTimeout = 2*time.Second, time.Second }},
		{"commit timeout below 1ms", func(o *Options) { o.CommitTimeout = time.Microsecond }},
		{"negative apply timeout", func(o *Options) { o.ApplyTimeout = -1 }},
		{"max append entries above 1024", func(o *Options) { o.MaxAppendEntries = 2000 }},
		{"negative max append entries", func(o *Options) { o.MaxAppendEntries = -1 }},
		{"batch above 512 KiB", func(o *Options) { o.MaxBatchBytes = 1 << 20 }},
		{"negative batch", func(o *Options) { o.MaxBatchBytes = -1 }},
		{"negative pending applies", func(o *Options) { o.MaxPendingApplies = -1 }},
		{"pending applies above max append entries", func(o *Options) { o.MaxAppendEntries, o.MaxPendingApplies = 8, 9 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := base()
			tc.edit(&o)
			n, err := Open(o, fsm.New())
			if err == nil {
				n.Shutdown(t.Context())
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("err = %v, want ErrInvalidOptions", err)
			}
		})
	}
	t.Run("nil fsm", func(t *testing.T) {
		if _, err := Open(base(), nil); !errors.Is(err, ErrInvalidOptions) {
			t.Fatalf("err = %v, want ErrInvalidOptions", err)
		}
	})
}

// Zero values select the documented defaults.
func TestOptions_Defaults(t *testing.T) {
	o, err := Options{DataDir: "d", RaftBind: "127.0.0.1:0"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.BootstrapExpect != 1 || o.HeartbeatTimeout != DefaultHeartbeatTimeout ||
		o.ElectionTimeout != DefaultElectionTimeout || o.LeaderLeaseTimeout != DefaultLeaderLeaseTimeout ||
		o.CommitTimeout != DefaultCommitTimeout || o.MaxAppendEntries != DefaultMaxAppendEntries ||
		o.SnapshotThreshold != DefaultSnapshotThreshold || o.SnapshotInterval != DefaultSnapshotInterval ||
		o.TrailingLogs != DefaultTrailingLogs || o.MaxBatchBytes != DefaultMaxBatchBytes ||
		o.MaxPendingApplies != DefaultMaxPendingApplies || o.ApplyTimeout != DefaultApplyTimeout ||
		o.Now == nil || o.Logger == nil || o.RaftLogLevel == nil || o.GossipLogLevel == nil ||
		o.GossipBind != "127.0.0.1:0" || o.ReconcileInterval != DefaultReconcileInterval ||
		o.PromoteAfter != DefaultPromoteAfter || o.ReapTimeout != DefaultReapTimeout ||
		o.ReconnectTimeout != DefaultReconnectTimeout || o.MinVoters != DefaultMinVoters {
		t.Fatalf("defaults not filled: %+v", o)
	}
	// Raising the heartbeat timeout alone keeps the others consistent.
	o, err = Options{DataDir: "d", RaftBind: "127.0.0.1:0", HeartbeatTimeout: 2 * time.Second}.withDefaults()
	if err != nil || o.ElectionTimeout != 2*time.Second || o.LeaderLeaseTimeout != time.Second {
		t.Fatalf("heartbeat 2s: election %v lease %v, %v", o.ElectionTimeout, o.LeaderLeaseTimeout, err)
	}
	// NeverReap survives defaulting.
	o, err = Options{DataDir: "d", RaftBind: "127.0.0.1:0", ReapTimeout: NeverReap}.withDefaults()
	if err != nil || o.ReapTimeout != NeverReap {
		t.Fatalf("ReapTimeout = %v, %v; want NeverReap", o.ReapTimeout, err)
	}
}
