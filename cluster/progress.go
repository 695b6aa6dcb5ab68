package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/wait"
)

// progress is what a node knows of the other members' progress: the
// applied index each last reported, polled through the peer client every
// Options.ProgressInterval (see DESIGN.md, "Members' progress"), and the
// leader changes this node saw. /cluster/status and the operator metrics
// read it.
type progress struct {
	n *Node

	mu      sync.Mutex
	reports map[string]report // by member id

	leaderChanges atomic.Uint64

	stop context.CancelFunc
	done chan struct{}
}

// report is one member's answer to a status poll.
type report struct {
	applied uint64
	at      time.Time
}

// startProgress sets n.progress, counts leader changes and, with a
// positive ProgressInterval, starts the poll loop; stopProgress ends it.
func startProgress(n *Node) {
	p := &progress{n: n, reports: map[string]report{}, done: make(chan struct{})}
	n.progress = p // before the loop, which reads it through Status
	// A filter that never lets an observation through: raft calls it
	// synchronously and nothing is queued, so no goroutine drains it.
	n.raft.RegisterObserver(raft.NewObserver(nil, false, func(o *raft.Observation) bool {
		if lo, ok := o.Data.(raft.LeaderObservation); ok && lo.LeaderID != "" {
			p.leaderChanges.Add(1)
		}
		return false
	}))
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	if n.opts.ProgressInterval <= 0 {
		close(p.done)
		return
	}
	go p.loop(ctx, n.opts.ProgressInterval)
}

func (p *progress) stopProgress() {
	p.stop()
	<-p.done
}

func (p *progress) loop(ctx context.Context, every time.Duration) {
	defer close(p.done)
	wait.Every(ctx, every, func() { p.poll(ctx, every) })
}

// poll asks every other member of the raft configuration that gossip
// shows with a queue address for its status, at once, each bounded by
// every (and by the peer client's own timeout), and forgets members that
// left the configuration.
func (p *progress) poll(ctx context.Context, every time.Duration) {
	st := p.n.Status()
	ctx, cancel := context.WithTimeout(ctx, every)
	defer cancel()
	var wg sync.WaitGroup
	keep := map[string]bool{}
	for _, m := range st.Members {
		if m.Suffrage == api.SuffrageNone {
			continue
		}
		keep[m.ID] = true
		if m.ID == st.NodeID || m.QueueAddr == "" || m.Status == api.MemberDead || m.Status == api.MemberLeft {
			continue
		}
		wg.Go(func() {
			rs, err := p.n.opts.Peer.Status(ctx, m.QueueAddr)
			if err != nil || rs.NodeID != m.ID {
				return // the last report stands; its age shows
			}
			p.mu.Lock()
			p.reports[m.ID] = report{applied: rs.AppliedIndex, at: time.Now()}
			p.mu.Unlock()
		})
	}
	wg.Wait()
	p.mu.Lock()
	for id := range p.reports {
		if !keep[id] {
			delete(p.reports, id)
		}
	}
	p.mu.Unlock()
}

// fill sets each member's applied_index and lag in st: this node's own
// from its FSM, the others' as last reported (lag -1 when none came yet).
func (p *progress) fill(st *api.Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range st.Members {
		m := &st.Members[i]
		m.Lag = -1
		applied, ok := st.AppliedIndex, m.ID == st.NodeID
		if !ok {
			var r report
			r, ok = p.reports[m.ID]
			applied = r.applied
		}
		if ok {
			m.AppliedIndex = applied
			m.Lag = int64(st.CommitIndex) - int64(applied)
		}
	}
}

var (
	descHasLeader     = prometheus.NewDesc("quorumq_has_leader", "1 if this node knows a raft leader, else 0.", nil, nil)
	descIsLeader      = prometheus.NewDesc("quorumq_is_leader", "1 if this node is the raft leader, else 0.", nil, nil)
	descLeaderChanges = prometheus.NewDesc("quorumq_leader_changes_total", "Times this node learned of a leader: once per election it saw end (a new term's leader, or the same one again after losing it).", nil, nil)
	descLastContact   = prometheus.NewDesc("quorumq_raft_last_contact_seconds", "On a follower, seconds since it last heard from the leader; 0 on the leader.", nil, nil)
	peerLabel         = []string{"peer"}
	descLag           = prometheus.NewDesc("quorumq_replication_lag_entries", "On the leader, per other member: its commit index minus the applied index that member last reported.", peerLabel, nil)
	descReportAge     = prometheus.NewDesc("quorumq_peer_report_age_seconds", "On the leader, per other member: seconds since that member last answered the status poll.", peerLabel, nil)
	descMembersPolled = prometheus.NewDesc("quorumq_peer_reports", "Other members whose applied index this node knows.", nil, nil)
	progressDescs     = []*prometheus.Desc{descHasLeader, descIsLeader, descLeaderChanges, descLastContact, descLag, descReportAge, descMembersPolled}
)

// Describe implements prometheus.Collector.
func (p *progress) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range progressDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (p *progress) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	bit := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	leader := p.n.IsLeader()
	gauge(descHasLeader, bit(p.n.leaderID() != ""))
	gauge(descIsLeader, bit(leader))
	ch <- prometheus.MustNewConstMetric(descLeaderChanges, prometheus.CounterValue, float64(p.leaderChanges.Load()))
	contact := 0.0
	if !leader {
		if last := p.n.raft.LastContact(); !last.IsZero() {
			contact = time.Since(last).Seconds()
		}
	}
	gauge(descLastContact, contact)
	commit := p.n.raft.CommitIndex()
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	gauge(descMembersPolled, float64(len(p.reports)))
	if !leader {
		return
	}
	for id, r := range p.reports {
		gauge(descLag, float64(int64(commit)-int64(r.applied)), id)
		gauge(descReportAge, now.Sub(r.at).Seconds(), id)
	}
}

// OperatorCollectors returns the collectors an operator watches beside
// Collectors: quorumq_has_leader, quorumq_is_leader,
// quorumq_leader_changes_total, quorumq_raft_last_contact_seconds, on the
// leader quorumq_replication_lag_entries{peer} and
// quorumq_peer_report_age_seconds{peer}, and raft's own timings
// (quorumq_raft_*, see raftSinkCollector).
func (n *Node) OperatorCollectors() []prometheus.Collector {
	return []prometheus.Collector{n.progress, raftSinkCollector()}
}
