package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/netns"
	"github.com/quorumq/quorumq/internal/testkit"
)

// FaultKind names a fault of the nemesis.
type FaultKind string

// The faults. Partitions need network namespaces (root on Linux).
const (
	KillLeader      FaultKind = "kill-leader"      // kill -9 of the leader, restarted at heal
	KillRandom      FaultKind = "kill-random"      // kill -9 of a random node, restarted at heal
	KillMajority    FaultKind = "kill-majority"    // kill -9 of a majority at once, restarted together
	PauseLeader     FaultKind = "pause-leader"     // SIGSTOP of the leader, SIGCONT at heal
	PauseRandom     FaultKind = "pause-random"     // SIGSTOP of a random node
	Restart         FaultKind = "restart"          // SIGTERM (graceful) and start again at once
	PartitionHalves FaultKind = "partition-halves" // random minority | majority
	PartitionLeader FaultKind = "partition-leader" // the leader alone | the rest
	PartitionBridge FaultKind = "partition-bridge" // two halves that both see one bridge node
	Membership      FaultKind = "membership"       // planned: add or remove, decided by the current size
	MemberAdd       FaultKind = "member-add"       // a fresh node joins (non-voter, then promoted)
	MemberRemove    FaultKind = "member-remove"    // POST /cluster/leave on a node, which then exits
	FinalHeal       FaultKind = "final-heal"       // not a fault: the heal of everything at the end
	partitionPrefix           = "partition-"
)

// AllFaults lists the plannable kinds with their weights in a schedule.
var AllFaults = []struct {
	Kind   FaultKind
	Weight int
}{
	{KillLeader, 2}, {KillRandom, 2}, {KillMajority, 1},
	{PauseLeader, 2}, {PauseRandom, 1}, {Restart, 1},
	{PartitionHalves, 2}, {PartitionLeader, 2}, {PartitionBridge, 1},
	{Membership, 2},
}

// PlannedFault is one step of a schedule.
type PlannedFault struct {
	At   time.Duration `json:"at_ns"`  // since the schedule started
	Kind FaultKind     `json:"kind"`   // as planned (Membership is decided when it runs)
	For  time.Duration `json:"for_ns"` // how long the fault holds before it heals
}

// ScheduleConfig shapes a schedule.
type ScheduleConfig struct {
	Seed     uint64
	Duration time.Duration // faults start within [0, Duration)
	// Faults enabled (nil: all of AllFaults).
	Faults []FaultKind
	// Hold of a fault, uniform in [HoldMin, HoldMax]; quiet time after
	// its heal uniform in [GapMin, GapMax].
	HoldMin, HoldMax, GapMin, GapMax time.Duration
}

// Plan draws a schedule from the seed: the same config gives the same
// schedule. The first fault starts after GapMin of quiet.
func Plan(cfg ScheduleConfig) []PlannedFault {
	r := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	type wk struct {
		k FaultKind
		w int
	}
	var kinds []wk
	total := 0
	for _, f := range AllFaults {
		if cfg.Faults == nil || slices.Contains(cfg.Faults, f.Kind) {
			kinds = append(kinds, wk{f.Kind, f.Weight})
			total += f.Weight
		}
	}
	if total == 0 {
		return nil
	}
	between := func(a, b time.Duration) time.Duration {
		if b <= a {
			return a
		}
		return a + time.Duration(r.Int64N(int64(b-a)+1))
	}
	var plan []PlannedFault
	for t := cfg.GapMin; t < cfg.Duration; {
		x := r.IntN(total)
		var k FaultKind
		for _, c := range kinds {
			if x < c.w {
				k = c.k
				break
			}
			x -= c.w
		}
		hold := between(cfg.HoldMin, cfg.HoldMax)
		plan = append(plan, PlannedFault{At: t, Kind: k, For: hold})
		t += hold + between(cfg.GapMin, cfg.GapMax)
	}
	return plan
}

// FaultEvent is a fault as it was carried out.
type FaultEvent struct {
	Step   int           `json:"step"`
	Kind   FaultKind     `json:"kind"`
	Start  time.Duration `json:"start_ns"`  // since the history started
	Healed time.Duration `json:"healed_ns"` // heal done (0 if none)
	// Ended is when the step was over: after the nodes were ready again
	// (and, for a restart or a membership change, after the hold).
	Ended time.Duration `json:"ended_ns"`
	// ExitAfter is, for a restart, the time from SIGTERM to the exit;
	// ExitKilled says the node was killed after GracefulExitWait.
	ExitAfter  time.Duration `json:"exit_after_ns,omitempty"`
	ExitKilled bool          `json:"exit_killed,omitempty"`
	Targets    []string      `json:"targets,omitempty"`
	Detail     string        `json:"detail,omitempty"`
	Error      string        `json:"error,omitempty"`
	// Skipped says why the fault was not injected.
	Skipped string `json:"skipped,omitempty"`
}

// GracefulExitWait is how long a restart waits for a node to exit after
// SIGTERM before it kills it (the fault then has an error). A node exits
// in well under a second unless open requests hold its shutdown (slow
// clients do, up to the node's --shutdown-timeout); waiting for that
// would make a short run minutes longer.
const GracefulExitWait = 10 * time.Second

// Nemesis carries out a schedule against a cluster.
type Nemesis struct {
	C        *testkit.Cluster
	Net      *netns.Net // nil: partitions are skipped
	H        *History
	Seed     uint64
	MinNodes int // membership never removes below this
	MaxNodes int // nor adds above this
	// ReadyTimeout bounds the wait for nodes after a heal.
	ReadyTimeout time.Duration
	Logf         Logf

	Events []FaultEvent
	// unsure are nodes asked to leave whose answer was lost and whose
	// membership the cluster has not yet told: settled by settleLeaves.
	unsure []*testkit.Node
}

// Run carries out plan, waiting for each step's time; it returns when the
// plan is done or ctx ends (the current fault is healed first).
func (n *Nemesis) Run(ctx context.Context, plan []PlannedFault) {
	t0 := time.Now()
	for i, p := range plan {
		if wait := time.Until(t0.Add(p.At)); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		if ctx.Err() != nil {
			return
		}
		r := rand.New(rand.NewPCG(n.Seed, uint64(i)+1))
		ev := n.inject(ctx, i, p, r)
		ev.Ended = n.H.Now()
		n.Events = append(n.Events, ev)
	}
}

func (n *Nemesis) log(format string, args ...any) {
	n.Logf.printf("[nemesis %7.1fs] %s", n.H.Now().Seconds(), fmt.Sprintf(format, args...))
}

// hold waits d, or until ctx ends.
func hold(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// inject carries out one step: inject, hold, heal.
func (n *Nemesis) inject(ctx context.Context, step int, p PlannedFault, r *rand.Rand) FaultEvent {
	ev := FaultEvent{Step: step, Kind: p.Kind, Start: n.H.Now()}
	fail := func(err error) FaultEvent {
		ev.Error = err.Error()
		n.log("%s: %v", ev.Kind, err)
		return ev
	}
	if strings.HasPrefix(string(p.Kind), partitionPrefix) && n.Net == nil {
		ev.Skipped = "partitions need network namespaces (root on Linux with iproute2)"
		return ev
	}
	n.retireLeft()
	n.settleLeaves(ctx)
	running := n.C.Healthy()
	if len(running) == 0 {
		ev.Skipped = "no running node"
		return ev
	}
	shuffled := slices.Clone(running)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	leader := func() (*testkit.Node, error) {
		l, err := n.C.WaitLeader(ctx, running, nil, 15*time.Second)
		if err != nil {
			return nil, fmt.Errorf("no leader to target: %w", err)
		}
		return l, nil
	}
	switch p.Kind {
	case KillLeader, KillRandom, KillMajority:
		var victims []*testkit.Node
		switch p.Kind {
		case KillLeader:
			l, err := leader()
			if err != nil {
				return fail(err)
			}
			victims = []*testkit.Node{l}
		case KillRandom:
			victims = shuffled[:1]
		case KillMajority:
			victims = shuffled[:min(len(n.C.Members())/2+1, len(shuffled))]
		}
		ev.Targets = testkit.IDs(victims)
		n.log("%s: kill -9 %v for %v", p.Kind, ev.Targets, p.For)
		for _, v := range victims {
			v.Kill()
		}
		hold(ctx, p.For)
		ev.Healed, ev.Error = n.restart(ctx, victims)
	case PauseLeader, PauseRandom:
		v := shuffled[0]
		if p.Kind == PauseLeader {
			l, err := leader()
			if err != nil {
				return fail(err)
			}
			v = l
		}
		ev.Targets = []string{v.ID}
		n.log("%s: SIGSTOP %s for %v", p.Kind, v.ID, p.For)
		if err := v.Pause(); err != nil {
			return fail(err)
		}
		hold(ctx, p.For)
		if err := v.Resume(); err != nil {
			ev.Error = err.Error()
		}
		n.log("%s: SIGCONT %s", p.Kind, v.ID)
		ev.Healed = n.H.Now()
		n.waitReady(ctx, []*testkit.Node{v}, &ev)
	case Restart:
		v := shuffled[0]
		ev.Targets = []string{v.ID}
		n.log("restart: SIGTERM %s and start again", v.ID)
		sent := time.Now()
		code, err := v.Terminate(GracefulExitWait)
		ev.ExitAfter = time.Since(sent)
		if err != nil {
			ev.Error, ev.ExitKilled = err.Error(), true
		} else if code != 0 {
			ev.Error = fmt.Sprintf("%s exited with status %d after SIGTERM", v.ID, code)
		}
		n.log("restart: %s ended %v after SIGTERM (killed: %v)", v.ID, ev.ExitAfter.Round(time.Millisecond), ev.ExitKilled)
		ev.Healed, ev.Detail = n.restart(ctx, []*testkit.Node{v})
		if ev.Detail != "" {
			ev.Error = strings.TrimPrefix(ev.Error+"; "+ev.Detail, "; ")
			ev.Detail = ""
		}
		hold(ctx, p.For)
	case PartitionHalves, PartitionLeader, PartitionBridge:
		members := n.C.Members()
		var groups [][]*testkit.Node
		switch p.Kind {
		case PartitionHalves:
			all := slices.Clone(members)
			r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
			k := len(all) / 2
			groups = [][]*testkit.Node{all[:k], all[k:]}
		case PartitionLeader:
			l, err := leader()
			if err != nil {
				return fail(err)
			}
			groups = [][]*testkit.Node{{l}, testkit.Without(members, l)}
		case PartitionBridge:
			if len(members) < 3 {
				ev.Skipped = "a bridge needs three nodes"
				return ev
			}
			all := slices.Clone(members)
			r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
			b, rest := all[0], all[1:]
			k := len(rest) / 2
			groups = [][]*testkit.Node{append([]*testkit.Node{b}, rest[:k]...), append([]*testkit.Node{b}, rest[k:]...)}
		}
		slots := make([][]int, len(groups))
		names := make([]string, len(groups))
		for gi, g := range groups {
			for _, nd := range g {
				slots[gi] = append(slots[gi], nd.Slot)
			}
			names[gi] = strings.Join(testkit.IDs(g), ",")
		}
		ev.Targets = testkit.IDs(groups[0])
		ev.Detail = strings.Join(names, " | ")
		n.log("%s: %s for %v", p.Kind, ev.Detail, p.For)
		if err := n.Net.Partition(slots...); err != nil {
			ev.Error = err.Error()
		}
		hold(ctx, p.For)
		if err := n.Net.Heal(); err != nil {
			ev.Error = strings.TrimPrefix(ev.Error+"; heal: "+err.Error(), "; ")
		}
		n.log("%s: healed", p.Kind)
		ev.Healed = n.H.Now()
		n.waitReady(ctx, n.C.Running(), &ev)
	case Membership, MemberAdd, MemberRemove:
		kind := p.Kind
		if kind == Membership {
			switch size := len(n.C.Members()); {
			case size <= n.MinNodes:
				kind = MemberAdd
			case size >= n.MaxNodes:
				kind = MemberRemove
			case r.IntN(2) == 0:
				kind = MemberAdd
			default:
				kind = MemberRemove
			}
		}
		ev.Kind = kind
		if kind == MemberAdd && len(n.C.Members()) >= n.MaxNodes || kind == MemberRemove && len(n.C.Members()) <= n.MinNodes {
			ev.Skipped = fmt.Sprintf("cluster size %d, bounds [%d, %d]", len(n.C.Members()), n.MinNodes, n.MaxNodes)
			return ev
		}
		if kind == MemberAdd {
			n.addNode(ctx, &ev)
		} else {
			n.removeNode(ctx, shuffled[0], &ev)
		}
		ev.Healed = n.H.Now()
		hold(ctx, p.For)
	default:
		return fail(fmt.Errorf("unknown fault kind %q", p.Kind))
	}
	return ev
}

// restart starts the nodes (together) and waits until they are ready.
func (n *Nemesis) restart(ctx context.Context, nodes []*testkit.Node) (time.Duration, string) {
	n.log("restart %v", testkit.IDs(nodes))
	if err := testkit.StartTogether(nodes); err != nil {
		return n.H.Now(), err.Error()
	}
	at := n.H.Now()
	var ev FaultEvent
	n.waitReady(ctx, nodes, &ev)
	return at, ev.Error
}

// waitReady waits until nodes are ready; a timeout is noted in ev (the
// run goes on: the final heal checks recovery strictly).
func (n *Nemesis) waitReady(ctx context.Context, nodes []*testkit.Node, ev *FaultEvent) {
	var errs []error
	for _, nd := range nodes {
		if err := nd.WaitReady(ctx, n.ReadyTimeout); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		ev.Error = strings.TrimPrefix(ev.Error+"; not ready after heal: "+err.Error(), "; ")
		n.log("%s: %v", ev.Kind, err)
	}
}

// addNode starts a fresh node and waits until the leader lists it as a
// voter.
func (n *Nemesis) addNode(ctx context.Context, ev *FaultEvent) {
	nd, err := n.C.AddNode()
	if nd != nil {
		ev.Targets = []string{nd.ID}
	}
	if err != nil {
		ev.Error = err.Error()
		return
	}
	n.log("member-add: %s joins", nd.ID)
	start := time.Now()
	sawNonvoter := false
	err = testkit.Poll(ctx, 2*n.ReadyTimeout, nd.ID+" promoted to voter", func(ctx context.Context) error {
		l, err := n.C.Leader(ctx)
		if err != nil {
			return err
		}
		st, err := l.Status(ctx)
		if err != nil {
			return err
		}
		for _, m := range st.Members {
			if m.ID == nd.ID {
				if !m.Voter {
					sawNonvoter = true
					return fmt.Errorf("%s is a non-voter", nd.ID)
				}
				return nil
			}
		}
		return fmt.Errorf("%s not in the leader's configuration", nd.ID)
	})
	if err != nil {
		ev.Error = err.Error()
		n.log("member-add: %v", err)
		return
	}
	ev.Detail = fmt.Sprintf("voter after %v (seen as non-voter first: %v)", time.Since(start).Round(time.Millisecond), sawNonvoter)
	n.log("member-add: %s %s", nd.ID, ev.Detail)
	n.waitReady(ctx, []*testkit.Node{nd}, ev)
}

// removeNode asks nd to leave; it must exit by itself.
func (n *Nemesis) removeNode(ctx context.Context, nd *testkit.Node, ev *FaultEvent) {
	ev.Targets = []string{nd.ID}
	n.log("member-remove: POST /cluster/leave to %s", nd.ID)
	lctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	err := nd.Leave(lctx) // marks nd left on a 200
	cancel()
	if err != nil {
		ev.Error = err.Error()
		n.log("member-remove: %v", err)
		// The node may have left anyway (the answer was lost): its data
		// directory says so if it got that far, else the cluster's
		// configuration does. Its exit alone proves nothing.
		code, werr := nd.WaitExit(20 * time.Second)
		switch {
		case nd.DirLeft():
			n.retire(nd, "its data directory says it left the cluster")
			ev.Detail = "left (its data directory says so)"
			if werr == nil {
				ev.Detail += fmt.Sprintf(", exited with status %d despite the error", code)
			} else {
				ev.Detail += " but did not exit; killed and retired"
			}
		default:
			// Whether it left is the cluster's to say.
			if werr == nil {
				ev.Detail = fmt.Sprintf("exited with status %d despite the error", code)
			}
			n.unsure = append(n.unsure, nd)
			n.settleLeaves(ctx)
			if nd.Left() {
				ev.Detail = strings.TrimPrefix(ev.Detail+"; the cluster's configuration no longer lists it: retired", "; ")
			}
		}
		return
	}
	code, err := nd.WaitExit(45 * time.Second)
	if err != nil {
		nd.Kill()
		ev.Error = err.Error() + " after a successful leave; killed"
	} else {
		ev.Detail = fmt.Sprintf("exited with status %d", code)
	}
	if err := n.C.WaitVoters(ctx, n.C.Healthy(), testkit.IDs(n.C.Members()), n.ReadyTimeout); err != nil {
		ev.Error = strings.TrimPrefix(ev.Error+"; "+err.Error(), "; ")
	}
	n.log("member-remove: %s %s", nd.ID, ev.Detail)
}

// retire takes nd out of the members for good: a node that left is never
// restarted on its data directory (it would refuse to start) and never
// counted among the voters again.
// why says how the nemesis knows.
func (n *Nemesis) retire(nd *testkit.Node, why string) {
	if nd.Running() {
		nd.Kill()
	}
	nd.MarkLeft()
	n.log("retire %s: %s", nd.ID, why)
}

// settleLeaves asks the cluster about every node whose leave was asked
// but not answered: one the configuration (as a live member reports it)
// no longer lists has left and is retired, one it lists is still a
// member. When no live member answers, the question stays open.
func (n *Nemesis) settleLeaves(ctx context.Context) {
	if len(n.unsure) == 0 {
		return
	}
	servers, from, err := n.configuration(ctx, n.unsure)
	if err != nil {
		n.log("membership: cannot read the configuration for %v yet: %v", testkit.IDs(n.unsure), err)
		return
	}
	for _, nd := range n.unsure {
		if slices.Contains(servers, nd.ID) {
			n.log("membership: %s reports %s still in the configuration %v: it did not leave", from, nd.ID, servers)
			continue
		}
		n.retire(nd, fmt.Sprintf("%s reports the configuration %v without it: it left", from, servers))
	}
	n.unsure = nil
}

// configuration returns the servers (voters and non-voters) of the
// configuration as the leader, else any healthy member outside skip,
// reports it, and which node said so.
func (n *Nemesis) configuration(ctx context.Context, skip []*testkit.Node) ([]string, string, error) {
	healthy := n.C.Healthy()
	for _, nd := range skip {
		healthy = testkit.Without(healthy, nd)
	}
	if len(healthy) == 0 {
		return nil, "", errors.New("no healthy member to ask")
	}
	ask := healthy
	if l, err := n.C.WaitLeader(ctx, healthy, nil, n.ReadyTimeout); err == nil {
		ask = append([]*testkit.Node{l}, testkit.Without(healthy, l)...)
	}
	var errs []error
	for _, nd := range ask {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := nd.Status(sctx)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var servers []string
		for _, m := range st.Members {
			if m.Suffrage == api.SuffrageVoter || m.Suffrage == api.SuffrageNonvoter {
				servers = append(servers, m.ID)
			}
		}
		return servers, nd.ID, nil
	}
	return nil, "", errors.Join(errs...)
}

// retireLeft retires every member whose data directory says it left,
// whatever the nemesis believed: what a node records is the truth about a
// leave whose answer was lost.
func (n *Nemesis) retireLeft() {
	for _, nd := range n.C.Members() {
		if nd.DirLeft() {
			n.retire(nd, "its data directory says it left the cluster")
		}
	}
}

// HealAll ends every fault: heals the network, resumes paused nodes,
// settles leaves whose answer was lost by the cluster's configuration,
// starts every member that is down, then waits, within timeout for all
// of it, until all members are ready, agree on a leader and list exactly
// the members as voters.
func (n *Nemesis) HealAll(ctx context.Context, timeout time.Duration) FaultEvent {
	ev := FaultEvent{Step: -1, Kind: FinalHeal, Start: n.H.Now()}
	n.retireLeft()
	var errs []error
	if n.Net != nil {
		if err := n.Net.Heal(); err != nil {
			errs = append(errs, err)
		}
	}
	// A leave whose answer was lost is settled by the configuration the
	// healed cluster reports before anything is restarted.
	n.settleLeaves(ctx)
	if len(n.unsure) > 0 {
		errs = append(errs, fmt.Errorf("the cluster never said whether %v left", testkit.IDs(n.unsure)))
		for _, nd := range n.unsure {
			n.retire(nd, "the cluster never said whether it left: never restarted on a directory that may have left")
		}
		n.unsure = nil
	}
	var down []*testkit.Node
	for _, nd := range n.C.Members() {
		switch {
		case nd.Paused():
			if err := nd.Resume(); err != nil {
				errs = append(errs, err)
			}
		case !nd.Running():
			down = append(down, nd)
		}
	}
	ev.Targets = testkit.IDs(down)
	if len(down) > 0 {
		if err := testkit.StartTogether(down); err != nil {
			errs = append(errs, err)
		}
	}
	// One wait for the whole cluster, not one per member: a member that
	// never comes back costs the heal timeout once, then it is reported.
	members := n.C.Members()
	deadline := time.Now().Add(timeout)
	left := func() time.Duration { return max(time.Until(deadline), time.Second) }
	for _, nd := range members {
		if err := nd.WaitReady(ctx, left()); err != nil {
			errs = append(errs, err)
		}
	}
	if l, err := n.C.WaitLeader(ctx, members, nil, left()); err != nil {
		errs = append(errs, err)
	} else {
		ev.Detail = "leader " + l.ID
	}
	if err := n.C.WaitVoters(ctx, members, testkit.IDs(members), left()); err != nil {
		errs = append(errs, err)
	}
	ev.Healed = n.H.Now()
	ev.Ended = ev.Healed
	if err := errors.Join(errs...); err != nil {
		ev.Error = err.Error()
	}
	n.log("final heal: %v down restarted, %s %s", ev.Targets, ev.Detail, ev.Error)
	return ev
}
