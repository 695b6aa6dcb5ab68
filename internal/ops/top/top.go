// Package top is `quorumq top`: a refreshing view of the cluster (its
// members as each sees itself: state, term, commit and applied index, lag
// behind the leader) and of its queues (GET /queues: depth, leases,
// deferred and dead messages, put and get rates between refreshes, age of
// the oldest ready message).
package top

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/cli"
)

// Defaults of Config.
const (
	DefaultInterval = 2 * time.Second
	// memberTimeout bounds each member's /cluster/status.
	memberTimeout = 2 * time.Second
	// clearScreen moves the cursor home and clears the terminal.
	clearScreen = "\x1b[H\x1b[2J"
)

// ErrInvalid marks bad flags (exit status 2).
var ErrInvalid = errors.New("invalid configuration")

// Config configures Run. Start from DefaultConfig.
type Config struct {
	// Addrs are queue port URLs of nodes; the members are found from them.
	Addrs client.AddrList
	// Interval is the time between refreshes; positive.
	Interval time.Duration
	// Once prints one frame (without rates) and returns.
	Once bool
	// Token and TLS reach a secured cluster (any role may look).
	Token string
	TLS   *tls.Config
	// Logger receives errors of a refresh, besides the frame.
	Logger *slog.Logger
	// Now is the clock of the frames. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns DefaultInterval, refreshing until stopped.
func DefaultConfig() Config {
	return Config{Interval: DefaultInterval, Logger: slog.Default(), Now: time.Now}
}

// RegisterFlags defines top's flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Var(&c.Addrs, "queue-addrs", "queue port URLs of one or more nodes, comma-separated or repeated (the other members are found from them)")
	fs.DurationVar(&c.Interval, "interval", c.Interval, "time between refreshes")
	fs.BoolVar(&c.Once, "once", c.Once, "print one frame, without rates, and exit (for scripts)")
	client.RegisterSecurityFlags(fs, &c.Token, &c.TLS)
}

// Member is one row of the members table.
type Member struct {
	ID, Status, QueueAddr string
	// Reached: its own /cluster/status answered; State, Term, Commit and
	// Applied are what it said.
	Reached               bool
	State                 string
	Term, Commit, Applied uint64
	// Lag is the leader's commit index minus this member's applied index
	// (-1 unknown). For a member that did not answer, Applied and Lag are
	// what the asked node last heard from it (/cluster/status).
	Lag int64
}

// Queue is one row of the queues table.
type Queue struct {
	client.QueueInfo
	// PutRate and GetRate are per second since the previous frame; -1
	// unknown (the first frame, or a counter reset).
	PutRate, GetRate float64
}

// Frame is one refresh.
type Frame struct {
	At      time.Time
	Leader  string
	Term    uint64
	Members []Member
	Queues  []Queue
	// Errs are the reads that failed; the frame shows what it has.
	Errs []error
}

// Top collects frames.
type Top struct {
	cfg     Config
	q       *client.Queue
	mu      sync.Mutex
	clients map[string]*client.Queue // one client per member address
	prev    *Frame
}

// New checks cfg and returns a Top.
func New(cfg Config) (*Top, error) {
	var errs cli.Problems
	if len(cfg.Addrs) == 0 {
		errs.Add("no --queue-addrs")
	}
	if cfg.Interval <= 0 {
		errs.Add("--interval must be positive")
	}
	if cfg.Logger == nil || cfg.Now == nil {
		errs.Add("no logger or clock")
	}
	if err := errs.Err(ErrInvalid); err != nil {
		return nil, err
	}
	q, err := client.NewQueue(cfg.Addrs, cfg.clientOptions())
	if err != nil {
		return nil, cli.Mark(err, ErrInvalid)
	}
	return &Top{cfg: cfg, q: q, clients: map[string]*client.Queue{}}, nil
}

func (c Config) clientOptions() *client.Options {
	o := client.DefaultOptions()
	o.Token, o.TLS = c.Token, c.TLS
	return &o
}

// Collect reads one frame: the cluster's status from a node, each
// member's own, and the queues (through the leader).
func (t *Top) Collect(ctx context.Context) *Frame {
	f := &Frame{At: t.cfg.Now()}
	st, err := t.q.Status(ctx)
	if err != nil {
		f.Errs = append(f.Errs, fmt.Errorf("/cluster/status: %w", err))
	} else {
		f.Leader, f.Term = st.LeaderID, st.Term
		f.Members = t.members(ctx, st)
	}
	qs, err := t.q.Queues(ctx)
	if err != nil {
		f.Errs = append(f.Errs, fmt.Errorf("/queues: %w", err))
	}
	for _, qi := range qs {
		f.Queues = append(f.Queues, Queue{QueueInfo: qi, PutRate: -1, GetRate: -1})
	}
	t.rates(f)
	return f
}

// members asks every member for its own status, at once.
func (t *Top) members(ctx context.Context, st *api.Status) []Member {
	out := make([]Member, len(st.Members))
	var wg sync.WaitGroup
	for i, m := range st.Members {
		out[i] = Member{ID: m.ID, Status: m.Status, QueueAddr: m.QueueAddr, Applied: m.AppliedIndex, Lag: m.Lag}
		if m.QueueAddr == "" || m.Status == api.MemberLeft {
			continue
		}
		mq := t.memberClient(m.QueueAddr)
		if mq == nil {
			continue
		}
		wg.Go(func() {
			mctx, cancel := context.WithTimeout(ctx, memberTimeout)
			defer cancel()
			own, err := mq.Status(mctx)
			if err != nil || own.NodeID != m.ID {
				return
			}
			out[i].Reached, out[i].State = true, own.State
			out[i].Term, out[i].Commit, out[i].Applied = own.Term, own.CommitIndex, own.AppliedIndex
		})
	}
	wg.Wait()
	var leaderCommit uint64
	for _, m := range out {
		if m.ID == st.LeaderID && m.Reached {
			leaderCommit = m.Commit
		}
	}
	for i := range out {
		if out[i].Reached && leaderCommit > 0 {
			out[i].Lag = max(int64(leaderCommit)-int64(out[i].Applied), 0)
		}
	}
	return out
}

// memberClient is the client of one member's queue port, with no retry
// on another node: its own view is wanted.
func (t *Top) memberClient(addr string) *client.Queue {
	t.mu.Lock()
	defer t.mu.Unlock()
	if q, ok := t.clients[addr]; ok {
		return q
	}
	o := t.cfg.clientOptions()
	o.MaxAttempts = 1
	q, err := client.NewQueue([]string{addr}, o)
	if err != nil {
		t.cfg.Logger.Debug("member address", "addr", addr, "err", err)
	}
	t.clients[addr] = q
	return q
}

// rates fills the rates of f from the previous frame.
func (t *Top) rates(f *Frame) {
	prev := t.prev
	t.prev = f
	if prev == nil {
		return
	}
	secs := f.At.Sub(prev.At).Seconds()
	if secs <= 0 {
		return
	}
	before := map[string]client.QueueInfo{}
	for _, q := range prev.Queues {
		before[q.Name] = q.QueueInfo
	}
	for i := range f.Queues {
		q := &f.Queues[i]
		b, ok := before[q.Name]
		if !ok {
			b = client.QueueInfo{} // a new queue started from zero
		}
		if q.Puts >= b.Puts {
			q.PutRate = float64(q.Puts-b.Puts) / secs
		}
		if q.Gets >= b.Gets {
			q.GetRate = float64(q.Gets-b.Gets) / secs
		}
	}
}

// Render writes f as text: a title line, the members and the queues.
func Render(w io.Writer, f *Frame) error {
	leader := f.Leader
	if leader == "" {
		leader = "none"
	}
	fmt.Fprintf(w, "quorumq top  %s  leader %s  term %d  members %d  queues %d\n\n",
		f.At.UTC().Format("2006-01-02 15:04:05Z"), leader, f.Term, len(f.Members), len(f.Queues))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tGOSSIP\tTERM\tCOMMIT\tAPPLIED\tLAG\tQUEUE ADDR")
	for _, m := range f.Members {
		state, term, commit, applied, lag := "unreachable", "-", "-", "-", "-"
		if m.Reached {
			state, term, commit = m.State, fmt.Sprint(m.Term), fmt.Sprint(m.Commit)
		}
		if m.Reached || m.Applied > 0 {
			applied = fmt.Sprint(m.Applied)
		}
		if m.Lag >= 0 {
			lag = fmt.Sprint(m.Lag)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, state, m.Status, term, commit, applied, lag, m.QueueAddr)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "QUEUE\tDEPTH\tIN FLIGHT\tDEFERRED\tDEAD\tBYTES\tPUT/S\tGET/S\tOLDEST")
	for _, q := range f.Queues {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", q.Name, q.Depth, q.InFlight, q.Deferred, q.Dead,
			bytesText(q.Bytes), rateText(q.PutRate), rateText(q.GetRate), ageText(q.Oldest, q.OldestAge))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, err := range f.Errs {
		fmt.Fprintf(w, "\nerror: %v\n", err)
	}
	return nil
}

func rateText(r float64) string {
	if r < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", r)
}

func ageText(oldest time.Time, age time.Duration) string {
	if oldest.IsZero() {
		return "-"
	}
	return age.Round(time.Second).String()
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	v, suffix := float64(n), "KMGTPE"
	i := -1
	for v >= unit && i < len(suffix)-1 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f%ciB", v, suffix[i])
}

// Run prints frames to out every Interval until ctx ends (or one with
// Once). On a terminal (clear) each frame replaces the last; otherwise
// frames follow each other, separated by a blank line. It returns an
// error only when the one frame of Once has one.
func Run(ctx context.Context, cfg Config, out io.Writer, clear bool) error {
	t, err := New(cfg)
	if err != nil {
		return err
	}
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	for first := true; ; first = false {
		fctx, cancel := context.WithTimeout(ctx, max(cfg.Interval, 5*time.Second))
		f := t.Collect(fctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case clear && !cfg.Once:
			io.WriteString(out, clearScreen)
		case !first:
			io.WriteString(out, "\n")
		}
		if err := Render(out, f); err != nil {
			return err
		}
		if cfg.Once {
			return errors.Join(f.Errs...)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
