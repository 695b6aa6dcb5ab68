package membership

import (
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/quorumq/quorumq/api"
)

// Member is one gossip member as this node last saw it.
type Member struct {
	ID   string
	Addr string // gossip host:port
	// Meta is the member's decoded NodeMeta; MetaOK is false when it did not
	// decode (another program on the port, or a future format), and such a
	// member is left out of bootstrap and reconcile decisions.
	Meta   NodeMeta
	MetaOK bool
	// Status is api.MemberAlive, api.MemberDead or api.MemberLeft. memberlist v0.6.0
	// does not tell its users when a node is suspect (Node.State is never
	// filled in), so a suspect member stays alive here until it is
	// declared dead.
	Status string
	Since  time.Time // when Status last changed
}

// memberTable follows memberlist's events. Unlike memberlist, which forgets
// a dead node after GossipToTheDeadTime, it keeps dead and left members
// until the reconnect loop forgets them (ReconnectTimeout, and never while
// they are in the raft configuration), because reaping and reconnecting
// need to know for how long a member has been gone.
type memberTable struct {
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	byID    map[string]*Member
	changed chan struct{} // closed and replaced on every change
}

func newMemberTable(log *slog.Logger) *memberTable {
	return &memberTable{log: log, now: time.Now, byID: map[string]*Member{}, changed: make(chan struct{})}
}

// changedCh returns a channel closed at the next change of the table.
func (t *memberTable) changedCh() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}

// notifyLocked wakes everyone waiting on changedCh.
func (t *memberTable) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// get returns a copy of the member with the given id.
func (t *memberTable) get(id string) (Member, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, ok := t.byID[id]
	if !ok {
		return Member{}, false
	}
	return *m, true
}

// snapshot returns a copy of every member, sorted by id.
func (t *memberTable) snapshot() []Member {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Member, 0, len(t.byID))
	for _, id := range slices.Sorted(maps.Keys(t.byID)) {
		out = append(out, *t.byID[id])
	}
	return out
}

// forget drops the members for which drop returns true.
func (t *memberTable) forget(drop func(Member) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, m := range t.byID {
		if drop(*m) {
			delete(t.byID, id)
			t.log.Info("forgot gossip member", "member", id, "status", m.Status, "since", m.Since)
		}
	}
}

// alive records n as alive, with its current meta.
func (t *memberTable) alive(n *memberlist.Node) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, _ := t.memberLocked(n.Name)
	t.setMetaLocked(m, n)
	t.setStatusLocked(m, api.MemberAlive)
	t.notifyLocked()
}

// update records n's new meta.
func (t *memberTable) update(n *memberlist.Node) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, created := t.memberLocked(n.Name)
	if created {
		t.setStatusLocked(m, api.MemberAlive)
	}
	t.setMetaLocked(m, n)
	t.notifyLocked()
}

// gone records that memberlist declared n dead. A member whose last meta
// announced a leave has left; any other has failed.
func (t *memberTable) gone(n *memberlist.Node) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, _ := t.memberLocked(n.Name)
	if len(n.Meta) > 0 {
		t.setMetaLocked(m, n) // the last meta memberlist heard
	}
	status := api.MemberDead
	if m.MetaOK && m.Meta.Leaving {
		status = api.MemberLeft
	}
	t.setStatusLocked(m, status)
	t.notifyLocked()
}

// memberLocked returns the entry for id, creating an empty one (created
// true) for a member not seen before.
func (t *memberTable) memberLocked(id string) (m *Member, created bool) {
	if m = t.byID[id]; m != nil {
		return m, false
	}
	m = &Member{ID: id}
	t.byID[id] = m
	return m, true
}

// setStatusLocked moves m to status, stamping Since only on a change.
func (t *memberTable) setStatusLocked(m *Member, status string) {
	if m.Status != status {
		m.Status = status
		m.Since = t.now()
	}
}

func (t *memberTable) setMetaLocked(m *Member, n *memberlist.Node) {
	m.Addr = n.Address()
	meta, err := DecodeMeta(n.Meta)
	if err != nil {
		if m.MetaOK || m.Since.IsZero() {
			t.log.Warn("ignoring gossip member with unreadable meta", "member", n.Name, "addr", m.Addr, "err", err)
		}
		m.MetaOK = false
		return
	}
	m.Meta, m.MetaOK = meta, true
}

// eventDelegate feeds memberlist's events into the member table, then
// passes them to next (if any). memberlist never calls it concurrently.
type eventDelegate struct {
	t    *memberTable
	next memberlist.EventDelegate
}

var _ memberlist.EventDelegate = eventDelegate{}

func (d eventDelegate) NotifyJoin(n *memberlist.Node) {
	d.t.alive(n)
	if d.next != nil {
		d.next.NotifyJoin(n)
	}
}

func (d eventDelegate) NotifyUpdate(n *memberlist.Node) {
	d.t.update(n)
	if d.next != nil {
		d.next.NotifyUpdate(n)
	}
}

func (d eventDelegate) NotifyLeave(n *memberlist.Node) {
	d.t.gone(n)
	if d.next != nil {
		d.next.NotifyLeave(n)
	}
}

// memberStatusCounts returns how many members have each status; every
// status is present, zero or not.
func memberStatusCounts(ms []Member) map[string]int {
	counts := map[string]int{api.MemberAlive: 0, api.MemberSuspect: 0, api.MemberDead: 0, api.MemberLeft: 0}
	for _, m := range ms {
		counts[m.Status]++
	}
	return counts
}

// sortedIDs returns the ids of ms, sorted.
func sortedIDs(ms []Member) []string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	slices.Sort(ids)
	return ids
}

func joinIDs(ids []string) string { return strings.Join(ids, ",") }
