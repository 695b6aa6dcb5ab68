package membership

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/quorumq/quorumq/cluster/internal/hclogadapter"
)

// memberlist tuning: DefaultLANConfig with shorter probes, so that a dead
// node is declared dead within about 3 s on a LAN or loopback (cluster's
// DESIGN.md, trade-offs). The cluster has a handful of nodes, so the extra packets cost
// nothing worth counting.
const (
	// gossipProbeInterval and gossipProbeTimeout: one probe every 500 ms,
	// 250 ms to answer (a LAN round trip is well under 1 ms). With
	// SuspicionMult 4 a suspect node of a cluster under 10 nodes is declared
	// dead after 4 × 500 ms = 2 s, or earlier with confirmations.
	gossipProbeInterval = 500 * time.Millisecond
	gossipProbeTimeout  = 250 * time.Millisecond
	gossipInterval      = 100 * time.Millisecond
	// gossipPushPull is the full state exchange with one random member:
	// anti-entropy for everything gossip lost, and how a member that
	// restarted on a new address gets known again (see DeadNodeReclaimTime).
	gossipPushPull = 10 * time.Second
	// gossipToTheDead: memberlist keeps gossiping to a dead member this
	// long, giving it a chance to refute, then forgets it; our member table
	// remembers it longer.
	gossipToTheDead = 15 * time.Second
	// gossipTCPTimeout bounds a push/pull or join stream, including the
	// dial: the state exchanged is a few hundred bytes per member, so a LAN
	// answers in milliseconds. A join to a silent (partitioned) address
	// blocks for this long, and so may Shutdown when one is in flight.
	gossipTCPTimeout = 3 * time.Second
	// gossipReclaim is memberlist's DeadNodeReclaimTime: after this long a
	// dead member's name may come back on another address (a container
	// restarted with a new IP). Node ids are unique and tied to a data
	// directory, so a different address under the same name is the same
	// server, and waiting longer only delays its return.
	gossipReclaim = time.Second
	// gossipUpdateTimeout bounds the wait for a meta update or leave
	// message to reach one other member.
	gossipUpdateTimeout = 3 * time.Second
	// leaveAnnounceTimeout bounds the wait for the leaving meta to be
	// gossiped before the leave message follows. Longer than
	// gossipUpdateTimeout: a leave message that overtakes the meta makes
	// peers see a failure (dead, kept in the configuration), not a leave.
	leaveAnnounceTimeout = 10 * time.Second
)

// Channel is one kind of application data carried by memberlist.
// Membership needs none (everything it needs is in NodeMeta); the pubsub
// subscriber sets (package subscriberset, type byte 1) are the first.
//
// Every user message and broadcast starts with the channel's type byte,
// which the delegate adds and strips; push/pull state is framed per channel.
// Methods may be called concurrently and must not block.
type Channel interface {
	// NotifyMsg handles one message of the channel (type byte removed).
	// msg is only valid during the call.
	NotifyMsg(msg []byte)
	// Broadcasts returns messages to piggyback on gossip, each at most
	// limit bytes after overhead, together at most limit bytes where each
	// costs len+overhead. The type byte is added by the delegate and is
	// already counted in overhead.
	Broadcasts(overhead, limit int) [][]byte
	// LocalState returns the channel's part of a push/pull exchange.
	LocalState(join bool) []byte
	// MergeRemoteState merges a peer's LocalState. buf is only valid
	// during the call.
	MergeRemoteState(buf []byte, join bool)
}

// stateFormat is the first byte of our push/pull state. After it come
// frames of: channel type byte, uvarint length, payload. Frames of unknown
// channels are skipped, so a newer node can add channels.
const stateFormat = 1

// delegate implements memberlist.Delegate: NodeMeta from the node,
// everything else dispatched to the registered channels by type byte.
type delegate struct {
	log      *slog.Logger
	meta     *metaState
	channels map[byte]Channel // fixed before memberlist starts
}

var _ memberlist.Delegate = (*delegate)(nil)

// NodeMeta implements memberlist.Delegate.
func (d *delegate) NodeMeta(limit int) []byte {
	b := d.meta.bytes()
	if len(b) > limit {
		// Open checks the size, so this cannot happen; memberlist would
		// panic on a longer meta, so degrade instead.
		d.log.Error("node meta exceeds memberlist's limit; sending none", "bytes", len(b), "limit", limit)
		return nil
	}
	return b
}

// NotifyMsg implements memberlist.Delegate.
func (d *delegate) NotifyMsg(b []byte) {
	if len(b) == 0 {
		return
	}
	ch, ok := d.channels[b[0]]
	if !ok {
		d.log.Debug("dropping gossip message of unknown channel", "channel", b[0], "bytes", len(b))
		return
	}
	ch.NotifyMsg(b[1:])
}

// GetBroadcasts implements memberlist.Delegate.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	var out [][]byte
	for _, t := range d.channelTypes() {
		// The type byte we prepend counts as overhead for the channel.
		msgs := d.channels[t].Broadcasts(overhead+1, limit)
		for _, m := range msgs {
			cost := overhead + 1 + len(m)
			if cost > limit {
				break
			}
			limit -= cost
			out = append(out, append([]byte{t}, m...))
		}
	}
	return out
}

// LocalState implements memberlist.Delegate.
func (d *delegate) LocalState(join bool) []byte {
	b := []byte{stateFormat}
	for _, t := range d.channelTypes() {
		s := d.channels[t].LocalState(join)
		if len(s) == 0 {
			continue
		}
		b = append(b, t)
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// MergeRemoteState implements memberlist.Delegate.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	if len(buf) == 0 {
		return
	}
	if buf[0] != stateFormat {
		d.log.Debug("ignoring push/pull state of unknown format", "format", buf[0])
		return
	}
	rest := buf[1:]
	for len(rest) > 0 {
		t := rest[0]
		n, k := binary.Uvarint(rest[1:])
		if k <= 0 || n > uint64(len(rest)-1-k) {
			d.log.Debug("ignoring truncated push/pull state", "channel", t)
			return
		}
		payload := rest[1+k : 1+k+int(n)]
		rest = rest[1+k+int(n):]
		if ch, ok := d.channels[t]; ok {
			ch.MergeRemoteState(payload, join)
		}
	}
}

func (d *delegate) channelTypes() []byte {
	ts := make([]byte, 0, len(d.channels))
	for t := range d.channels {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

// metaState holds this node's NodeMeta and its encoding.
type metaState struct {
	mu  sync.Mutex
	m   NodeMeta
	enc []byte
}

func (s *metaState) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enc
}

func (s *metaState) get() NodeMeta {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m
}

// set applies edit and reports whether the meta changed.
func (s *metaState) set(edit func(*NodeMeta)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.m
	edit(&m)
	if m == s.m && s.enc != nil {
		return false
	}
	s.m = m
	s.enc = m.Encode(nil)
	return true
}

// gossipEndpoints works out where memberlist binds and what it advertises.
// advPort 0 means "the bound port".
func gossipEndpoints(ctx context.Context, o Options) (bindHost string, bindPort int, advHost string, advPort int, err error) {
	bind := o.GossipBind
	if bind == "" {
		host, _, _ := net.SplitHostPort(o.RaftBind)
		bind = net.JoinHostPort(host, "0")
	}
	host, port, err := net.SplitHostPort(bind)
	if err != nil {
		return "", 0, "", 0, err
	}
	bindPort, _ = strconv.Atoi(port)
	bindHost = host
	if bindHost == "" {
		bindHost = "0.0.0.0"
	}
	switch {
	case o.GossipAdvertise != "":
		h, p, _ := net.SplitHostPort(o.GossipAdvertise)
		advHost = h
		advPort, _ = strconv.Atoi(p)
	case ConcreteIP(bindHost):
		advHost = bindHost
	case o.RaftAdvertise != "":
		advHost, _, _ = net.SplitHostPort(o.RaftAdvertise)
	default:
		return "", 0, "", 0, fmt.Errorf("%w: GossipBind %q; set GossipAdvertise", ErrNotDialable, bind)
	}
	if net.ParseIP(advHost) == nil {
		// memberlist advertises an IP; resolve a name (a compose service) once.
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ips, err := net.DefaultResolver.LookupIP(ctx, "ip", advHost)
		if err != nil || len(ips) == 0 {
			return "", 0, "", 0, fmt.Errorf("resolve gossip advertise host %q: %v", advHost, err)
		}
		advHost = preferIPv4(ips).String()
	}
	if advPort == 0 {
		advPort = bindPort
	}
	return bindHost, bindPort, advHost, advPort, nil
}

func preferIPv4(ips []net.IP) net.IP {
	for _, ip := range ips {
		if ip.To4() != nil {
			return ip
		}
	}
	return ips[0]
}

// newMemberlist creates (starts) memberlist for n. Events arrive from the
// moment it returns, including this node's own join.
func (n *Membership) newMemberlist(ctx context.Context) (*memberlist.Memberlist, error) {
	bindHost, bindPort, advHost, advPort, err := gossipEndpoints(ctx, n.opts)
	if err != nil {
		return nil, err
	}
	c := memberlist.DefaultLANConfig()
	c.Name = n.id
	c.BindAddr, c.BindPort = bindHost, bindPort
	// With BindPort 0, memberlist advertises the port it bound.
	c.AdvertiseAddr, c.AdvertisePort = advHost, advPort
	c.ProbeInterval = gossipProbeInterval
	c.ProbeTimeout = gossipProbeTimeout
	c.GossipInterval = gossipInterval
	c.PushPullInterval = gossipPushPull
	c.GossipToTheDeadTime = gossipToTheDead
	c.TCPTimeout = gossipTCPTimeout
	c.DeadNodeReclaimTime = gossipReclaim
	c.Delegate = n.gossip
	c.Events = eventDelegate{t: n.members, next: n.opts.Events}
	if keys := n.opts.GossipKeys; len(keys) > 0 {
		if c.Keyring, err = memberlist.NewKeyring(keys, keys[0]); err != nil {
			return nil, fmt.Errorf("gossip keys: %w", err)
		}
		c.GossipVerifyIncoming, c.GossipVerifyOutgoing = true, true
		n.keyring = c.Keyring
	}
	hcl := hclogadapter.New(n.log, "memberlist", n.opts.GossipLogLevel)
	c.Logger = log.New(hcl.StandardWriter(nil), "", 0)
	if n.opts.GossipConfig != nil {
		n.opts.GossipConfig(c)
	}
	ml, err := memberlist.Create(c)
	if err != nil {
		return nil, fmt.Errorf("gossip on %s: %w", net.JoinHostPort(bindHost, strconv.Itoa(bindPort)), err)
	}
	return ml, nil
}

// ErrGossipPlain: gossip runs without keys, and keys cannot be added to
// a running node (every member would have to switch at the same moment).
var ErrGossipPlain = errors.New("gossip runs unencrypted; start every node with a gossip key to encrypt it")

// SetGossipKeys installs keys (the first the primary) in place of the
// ones in use, for a rotation without a restart: keys added, the primary
// switched, keys no longer listed removed.
func (n *Membership) SetGossipKeys(keys [][]byte) error {
	if n.keyring == nil {
		return ErrGossipPlain
	}
	if len(keys) == 0 {
		return errors.New("gossip keys: none given; a running node cannot turn encryption off")
	}
	for _, k := range keys {
		if err := n.keyring.AddKey(k); err != nil {
			return fmt.Errorf("gossip keys: %w", err)
		}
	}
	if err := n.keyring.UseKey(keys[0]); err != nil {
		return fmt.Errorf("gossip keys: %w", err)
	}
	for _, old := range n.keyring.GetKeys() {
		if !slices.ContainsFunc(keys, func(k []byte) bool { return bytes.Equal(k, old) }) {
			if err := n.keyring.RemoveKey(old); err != nil {
				return fmt.Errorf("gossip keys: %w", err)
			}
		}
	}
	return nil
}

// UpdateMeta edits this node's NodeMeta and, if it changed, announces it
// (waiting at most gossipUpdateTimeout for one member to hear it).
func (n *Membership) UpdateMeta(edit func(*NodeMeta)) {
	n.UpdateMetaWithin(edit, gossipUpdateTimeout)
}

// UpdateMetaWithin is UpdateMeta waiting at most timeout. The error says
// the update was not yet gossiped (push/pull carries it later).
func (n *Membership) UpdateMetaWithin(edit func(*NodeMeta), timeout time.Duration) error {
	if !n.meta.set(edit) {
		return nil
	}
	n.gossipMu.Lock()
	defer n.gossipMu.Unlock()
	if n.gossipDown || n.gossipLeft {
		// After memberlist's Leave our alive messages are dropped, so
		// UpdateNode would only wait for its timeout.
		return nil
	}
	if err := n.ml.UpdateNode(timeout); err != nil {
		n.log.Debug("node meta update not yet broadcast", "err", err)
		return err
	}
	return nil
}
