package membership

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"github.com/quorumq/quorumq/api"
)

const (
	// joinBackoffMin and joinBackoffMax bound the wait between attempts to
	// reach the Join seeds. Nodes started together come up within a second
	// or two of each other, so the first retries are quick.
	joinBackoffMin = 200 * time.Millisecond
	joinBackoffMax = 30 * time.Second
	// DefaultReconnectInterval is how often the reconnect loop runs (serf
	// uses 30 s; a queue cluster is small, and a healed partition should
	// merge soon).
	DefaultReconnectInterval = 15 * time.Second
)

// jitter returns d scaled by a random factor in [0.5, 1.0), so that nodes
// started together do not retry in lockstep.
func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// runGossip joins the seeds in the background, then runs the reconnect
// loop until the node stops.
func (n *Membership) runGossip() {
	defer n.bg.Done()
	if n.joinSeeds() {
		n.markJoined()
	}
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(jitter(n.opts.ReconnectInterval)):
		}
		n.reconnect()
	}
}

// markJoined records that this node is in touch with the cluster.
func (n *Membership) markJoined() {
	n.joinedOnce.Do(func() { close(n.joined) })
}

// hasJoined reports whether a seed answered or another member reached us.
func (n *Membership) hasJoined() bool {
	select {
	case <-n.joined:
		return true
	default:
		return false
	}
}

// joinSeeds tries the seeds until one answers, with exponential backoff and
// jitter. It returns false only when the node stops first. It also stops
// trying once another member has joined us: we are then in a cluster, and
// the reconnect loop keeps the seeds in mind.
func (n *Membership) joinSeeds() bool {
	if len(n.opts.Join) == 0 {
		return true
	}
	backoff := joinBackoffMin
	for attempt := 1; ; attempt++ {
		if n.ml.NumMembers() > 1 {
			n.log.Info("joined gossip: another member reached this node first", "members", n.ml.NumMembers())
			return true
		}
		seeds := n.otherSeeds()
		n.triedSeeds.Store(&seeds)
		if len(seeds) == 0 {
			// Only ourselves in the list: wait for others to join us.
			n.markJoined()
			n.log.Info("join list holds only this node; waiting for others to join it")
			return true
		}
		k, err := n.joinEach(seeds)
		if k > 0 {
			n.log.Info("joined gossip", "seeds", seeds, "reached", k, "members", n.ml.NumMembers())
			return true
		}
		// Nodes started together miss each other at first: that is news,
		// not a warning, until it goes on.
		lvl := n.log.Debug
		switch {
		case attempt%5 == 0:
			lvl = n.log.Warn
		case attempt == 1:
			lvl = n.log.Info
		}
		lvl("cannot reach any gossip seed yet; retrying", "seeds", seeds, "attempt", attempt, "retry_in", backoff, "err", err)
		select {
		case <-n.ctx.Done():
			return false
		case <-time.After(jitter(backoff)):
		}
		backoff = min(2*backoff, joinBackoffMax)
	}
}

// joinEach asks memberlist to join addrs one at a time, stopping early when
// the node stops: a join to a silent address blocks for gossipTCPTimeout,
// and Shutdown waits for this goroutine. It returns how many answered.
func (n *Membership) joinEach(addrs []string) (int, error) {
	k := 0
	var errs []error
	for _, a := range addrs {
		if n.ctx.Err() != nil {
			break
		}
		if _, err := n.ml.Join([]string{a}); err != nil {
			n.metrics.joins.WithLabelValues("error").Inc()
			errs = append(errs, err)
			continue
		}
		n.metrics.joins.WithLabelValues("ok").Inc()
		k++
	}
	if k > 0 {
		return k, nil
	}
	if len(errs) == 0 {
		return 0, n.ctx.Err()
	}
	return 0, errors.Join(errs...)
}

// UnreachedSeeds returns the join seeds other than this node while it has
// reached none of them and no member has reached it; nil once it has, or
// when it was given no seeds.
func (n *Membership) UnreachedSeeds() []string {
	if len(n.opts.Join) == 0 || n.hasJoined() {
		return nil
	}
	// The join loop's last list: otherSeeds may resolve names, which a
	// status request should not wait for.
	if p := n.triedSeeds.Load(); p != nil {
		return *p
	}
	return n.opts.Join
}

// otherSeeds returns the Join addresses that are not this node's own.
func (n *Membership) otherSeeds() []string {
	var out []string
	for _, s := range n.opts.Join {
		if !n.isOwnGossipAddr(s) {
			out = append(out, s)
		}
	}
	return out
}

// isOwnGossipAddr reports whether hostport names this node's gossip port:
// same port, and a host that is our advertised IP, or resolves to it.
func (n *Membership) isOwnGossipAddr(hostport string) bool {
	if hostport == n.gossipAddr {
		return true
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	ownHost, ownPort, _ := net.SplitHostPort(n.gossipAddr)
	if p, _ := strconv.Atoi(port); strconv.Itoa(p) != ownPort {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.Equal(net.ParseIP(ownHost))
	}
	ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
	if err != nil {
		return false
	}
	for _, ip := range ips {
		if ip.Equal(net.ParseIP(ownHost)) {
			return true
		}
	}
	return false
}

// reconnect is serf's reconnect loop, one round: memberlist forgets a dead
// member after a while and never contacts it again, so two halves of a
// partition that healed would stay apart. Each round it re-joins one
// random member that failed (not one that left) less than ReconnectTimeout
// ago, and the seeds when fewer members are alive than the cluster should
// have (BootstrapExpect, or the raft configuration's size). It also
// forgets members gone for longer than ReconnectTimeout that are not in
// the raft configuration.
func (n *Membership) reconnect() {
	now := time.Now()
	members := n.members.snapshot()
	inConfig := map[string]bool{}
	for _, s := range n.host.ConfigServers() {
		inConfig[string(s.ID)] = true
	}
	var dead []Member
	alive := 0
	for _, m := range members {
		switch {
		case m.Status == api.MemberAlive:
			alive++
		case m.Status == api.MemberDead && now.Sub(m.Since) < n.opts.ReconnectTimeout:
			dead = append(dead, m)
		}
	}
	n.members.forget(func(m Member) bool {
		return m.Status != api.MemberAlive && !inConfig[m.ID] && now.Sub(m.Since) >= n.opts.ReconnectTimeout
	})

	if len(dead) > 0 {
		m := dead[rand.IntN(len(dead))]
		if _, err := n.joinEach([]string{m.Addr}); err == nil {
			n.log.Info("reconnected to failed member", "member", m.ID, "addr", m.Addr)
		} else {
			n.log.Debug("failed member still unreachable", "member", m.ID, "addr", m.Addr, "err", err)
		}
	}
	expected := max(n.opts.BootstrapExpect, len(inConfig))
	if alive < expected {
		if seeds := n.otherSeeds(); len(seeds) > 0 {
			k, err := n.joinEach(seeds)
			n.log.Debug("re-joined seeds: cluster looks smaller than expected",
				"alive", alive, "expected", expected, "reached", k, "err", err)
		}
	}
}
