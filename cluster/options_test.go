package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/peer/peertest"
)

// Every bad option is an error wrapping ErrInvalidOptions, found before any
// file or port is touched.
func TestOptions_Validation(t *testing.T) {
	base := func() Options {
		o := DefaultOptions()
		o.DataDir, o.RaftBind = t.TempDir(), "127.0.0.1:0"
		return o
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
		{"unknown log store", func(o *Options) { o.LogStore = LogStoreAuto + 1 }},
		{"bootstrap expect zero", func(o *Options) { o.BootstrapExpect = 0 }},
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
		{"zero min voters", func(o *Options) { o.MinVoters = 0 }},
		{"zero reap timeout", func(o *Options) { o.ReapTimeout = 0 }},
		{"zero heartbeat", func(o *Options) { o.HeartbeatTimeout = 0 }},
		{"zero max append entries", func(o *Options) { o.MaxAppendEntries = 0 }},
		{"zero snapshot threshold", func(o *Options) { o.SnapshotThreshold = 0 }},
		{"zero pending applies", func(o *Options) { o.MaxPendingApplies = 0 }},
		{"nil clock", func(o *Options) { o.Now = nil }},
		{"nil logger", func(o *Options) { o.Logger = nil }},
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
			n, err := openWith(o, fsm.New())
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
		if _, err := openWith(base(), nil); !errors.Is(err, ErrInvalidOptions) {
			t.Fatalf("err = %v, want ErrInvalidOptions", err)
		}
	})
}

// DefaultOptions is valid once the required fields are set.
func TestOptions_DefaultsAreValid(t *testing.T) {
	o := DefaultOptions()
	o.DataDir, o.RaftBind, o.FSM, o.Peer = "d", "127.0.0.1:0", fsm.New(), peertest.Client(t)
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	if o.FSM = nil; !errors.Is(o.validate(), ErrInvalidOptions) {
		t.Fatal("no FSM accepted")
	}
	// NeverReap is valid.
	o.FSM, o.ReapTimeout = fsm.New(), NeverReap
	if err := o.validate(); err != nil {
		t.Fatalf("NeverReap: %v", err)
	}
}

// Raising the heartbeat timeout alone keeps the other raft timeouts valid.
func TestOptions_SetHeartbeatTimeoutKeepsTimeoutsConsistent(t *testing.T) {
	o := DefaultOptions()
	o.SetHeartbeatTimeout(2 * time.Second)
	if o.ElectionTimeout != 2*time.Second || o.LeaderLeaseTimeout != time.Second {
		t.Fatalf("heartbeat 2s: election %v lease %v", o.ElectionTimeout, o.LeaderLeaseTimeout)
	}
}
