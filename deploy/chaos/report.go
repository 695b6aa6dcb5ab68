package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the result of a run, written as report.json.
type Report struct {
	OK       bool          `json:"ok"`
	Seed     uint64        `json:"seed"`
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished"`
	Duration time.Duration `json:"schedule_ns"`
	// Epoch is the wall-clock time of offset 0: every *_ns time in the
	// report and in history.jsonl is an offset from it (monotonic clock).
	Epoch   time.Time `json:"epoch"`
	Network string    `json:"network"`
	// Secure: the cluster ran with TLS, gossip keys and tokens.
	Secure      bool   `json:"secure"`
	NetworkNote string `json:"network_note,omitempty"`
	OutDir      string `json:"out_dir"`

	Nodes []NodeInfo `json:"nodes"`
	// Plan is the seeded schedule; Faults what was carried out (the last
	// one is the final heal).
	Plan        []PlannedFault       `json:"plan"`
	Faults      []FaultEvent         `json:"faults"`
	FaultCounts map[FaultKind]int    `json:"fault_counts"`
	Skipped     map[FaultKind]string `json:"skipped_faults,omitempty"`

	// Ops counts operations by kind and outcome.
	Ops    map[string]map[Outcome]int `json:"ops"`
	Checks []CheckResult              `json:"checks"`
	// Lin has one verdict per piece of each lin queue.
	Lin []LinResult `json:"lin_pieces"`
	// Hostile sums up the large mgets, the stalled subscribers and their
	// publishers, and the slow and idle clients.
	Hostile *HostileReport `json:"hostile,omitempty"`
}

// HostileReport sums up the parts of the workload that abuse the nodes.
type HostileReport struct {
	BigMGets BigMGetReport `json:"big_mgets"`
	Pubs     PubReport     `json:"pubs"`
	// Conns are the hostile connections by kind and port.
	Conns []ConnReport `json:"conns"`
	// PubsubStats is each member's pubsub /stats?format=json once the
	// queues were drained, the stalled subscribers still attached.
	PubsubStats map[string]map[string]int64 `json:"pubsub_stats,omitempty"`
	// PubsubStatsErrors says why a member's /stats is missing.
	PubsubStatsErrors map[string]string `json:"pubsub_stats_errors,omitempty"`
	// Restarts counts the graceful restarts, RestartsKilled those whose
	// node did not exit within GracefulExitWait of SIGTERM (open
	// requests, such as the slow clients', hold a shutdown), and
	// SlowestExit the longest from SIGTERM to exit.
	Restarts       int           `json:"restarts"`
	RestartsKilled int           `json:"restarts_killed"`
	SlowestExit    time.Duration `json:"slowest_exit_ns"`
}

// BigMGetReport counts the large mgets.
type BigMGetReport struct {
	Requests map[Outcome]int `json:"requests"`
	// Messages the answered ones returned, on WorkQueue and on the lin
	// queues.
	WorkMessages int `json:"work_messages"`
	LinMessages  int `json:"lin_messages"`
	// Largest answer, in messages and in bytes; AtCap answers held
	// exactly Cap messages.
	Largest      int `json:"largest"`
	LargestBytes int `json:"largest_bytes"`
	AtCap        int `json:"at_cap"`
	Cap          int `json:"cap"`
}

// PubReport counts the publishes to the stalled subscribers' topic.
type PubReport struct {
	Requests map[Outcome]int `json:"requests"`
	// MaxLatency of any /pub; Quiet /pubs were sent with no fault in
	// effect, with QuietP99 and QuietMax latencies.
	MaxLatency time.Duration `json:"max_latency_ns"`
	Quiet      int           `json:"quiet"`
	QuietP99   time.Duration `json:"quiet_p99_ns"`
	QuietMax   time.Duration `json:"quiet_max_ns"`
	Bound      time.Duration `json:"bound_ns"`
	// MaxSubscribers is the largest <C> answered: subscribers the
	// message was sent to, cluster-wide.
	MaxSubscribers int `json:"max_subscribers"`
}

// ConnReport sums up the hostile connections of one kind on one port.
type ConnReport struct {
	Kind HostileKind `json:"kind"`
	Port string      `json:"port"`
	// Opened counts the connections made (refused ones not included).
	Opened int             `json:"opened"`
	Ended  map[ConnEnd]int `json:"ended"`
	// Closed* are the lifetimes of the ones the nodes closed (but those
	// only seen closed at the end: HostileConn.EndSeenLate); Longest is
	// the longest any stayed open.
	ClosedMin    time.Duration `json:"closed_min_ns"`
	ClosedMedian time.Duration `json:"closed_median_ns"`
	ClosedMax    time.Duration `json:"closed_max_ns"`
	Longest      time.Duration `json:"longest_ns"`
	// Answers counts the first lines the nodes sent.
	Answers map[string]int `json:"answers,omitempty"`
}

// hostileReport sums up the history's hostile parts.
func hostileReport(h *History, cfg WorkloadConfig, events []FaultEvent) *HostileReport {
	r := &HostileReport{
		BigMGets: BigMGetReport{Requests: map[Outcome]int{}, Cap: cfg.MGetCap},
		Pubs:     PubReport{Requests: map[Outcome]int{}, Bound: cfg.LatencyBound},
	}
	for _, m := range h.BigMGets {
		b := &r.BigMGets
		b.Requests[m.Outcome]++
		if m.Outcome != OK {
			continue
		}
		if m.Queue == WorkQueue {
			b.WorkMessages += m.Returned
		} else {
			b.LinMessages += m.Returned
		}
		b.Largest, b.LargestBytes = max(b.Largest, m.Returned), max(b.LargestBytes, m.Bytes)
		if cfg.MGetCap > 0 && m.Returned == cfg.MGetCap {
			b.AtCap++
		}
	}
	for _, ev := range events {
		if ev.Kind == Restart && ev.Skipped == "" {
			r.Restarts++
			if ev.ExitKilled {
				r.RestartsKilled++
			}
			r.SlowestExit = max(r.SlowestExit, ev.ExitAfter)
		}
	}
	fw := newFaultWindows(events)
	var quiet []time.Duration
	for _, p := range h.Pubs {
		pr := &r.Pubs
		pr.Requests[p.Outcome]++
		pr.MaxLatency = max(pr.MaxLatency, p.Latency())
		pr.MaxSubscribers = max(pr.MaxSubscribers, p.Subscribers)
		if !p.Probe && fw.quiet(p.Start, p.End) {
			quiet = append(quiet, p.Latency())
		}
	}
	if len(quiet) > 0 {
		slices.Sort(quiet)
		r.Pubs.Quiet, r.Pubs.QuietMax = len(quiet), quiet[len(quiet)-1]
		r.Pubs.QuietP99 = quiet[min(len(quiet)-1, len(quiet)*99/100)]
	}
	type key struct {
		kind HostileKind
		port string
	}
	byKey := map[key]*ConnReport{}
	closed := map[key][]time.Duration{}
	var keys []key
	for _, c := range h.Hostile {
		k := key{c.Kind, c.Port}
		cr := byKey[k]
		if cr == nil {
			cr = &ConnReport{Kind: c.Kind, Port: c.Port, Ended: map[ConnEnd]int{}, Answers: map[string]int{}}
			byKey[k] = cr
			keys = append(keys, k)
		}
		cr.Ended[c.Ended]++
		if c.Answer != "" {
			cr.Answers[c.Answer]++
		}
		if c.Ended == EndRefused {
			continue
		}
		cr.Opened++
		cr.Longest = max(cr.Longest, c.Lasted())
		if c.Ended == EndClosedByServer && !c.EndSeenLate {
			closed[k] = append(closed[k], c.Lasted())
		}
	}
	slices.SortFunc(keys, func(a, b key) int { return strings.Compare(string(a.kind)+"/"+a.port, string(b.kind)+"/"+b.port) })
	for _, k := range keys {
		cr := byKey[k]
		if ls := closed[k]; len(ls) > 0 {
			slices.Sort(ls)
			cr.ClosedMin, cr.ClosedMedian, cr.ClosedMax = ls[0], ls[len(ls)/2], ls[len(ls)-1]
		}
		r.Conns = append(r.Conns, *cr)
	}
	return r
}

// NodeInfo is one node of the run.
type NodeInfo struct {
	ID       string `json:"id"`
	QueueURL string `json:"queue_url"`
	Log      string `json:"log"`
	Starts   int    `json:"starts"`
	Left     bool   `json:"left,omitempty"`
}

// opCounts counts the history's operations by kind and outcome.
func opCounts(h *History) map[string]map[Outcome]int {
	m := map[string]map[Outcome]int{}
	add := func(kind string, o Outcome) {
		if m[kind] == nil {
			m[kind] = map[Outcome]int{}
		}
		m[kind][o]++
	}
	for _, p := range h.Puts {
		add("put-key", p.Final)
		for _, a := range p.Attempts {
			add("put-attempt", a.Outcome)
		}
		if p.Delay > 0 {
			add("put-key-delayed", p.Final)
		}
	}
	for o, n := range h.Mgets {
		if m["mget"] == nil {
			m["mget"] = map[Outcome]int{}
		}
		m["mget"][o] += n
	}
	for _, d := range h.Deliveries {
		if d.Consumer == "drain" {
			add("delivery-drain", OK)
		} else {
			add("delivery", OK)
		}
	}
	for _, s := range h.Settles {
		add(s.Op, s.Outcome)
	}
	for _, l := range h.Lin {
		add("lin-"+l.Op, l.Outcome)
	}
	return m
}

// WriteJSON writes the report, indented.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteTable prints the faults injected (by kind), the operations (by
// outcome) and the checks (with the first examples of any violation).
func (r *Report) WriteTable(out io.Writer) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "chaos run: seed %d, %v of faults, network %s\n", r.Seed, r.Duration, r.Network)
	if r.NetworkNote != "" {
		fmt.Fprintf(w, "  note: %s\n", r.NetworkNote)
	}
	fmt.Fprintln(w, "\nFAULT\tINJECTED\tWITH ERRORS\tSKIPPED")
	kinds := map[FaultKind]bool{}
	errs := map[FaultKind]int{}
	skipped := map[FaultKind]int{}
	for _, ev := range r.Faults {
		if ev.Kind == FinalHeal {
			continue
		}
		kinds[ev.Kind] = true
		if ev.Skipped != "" {
			skipped[ev.Kind]++
		} else if ev.Error != "" {
			errs[ev.Kind]++
		}
	}
	var names []string
	for k := range kinds {
		names = append(names, string(k))
	}
	sort.Strings(names)
	total := 0
	for _, k := range names {
		fk := FaultKind(k)
		total += r.FaultCounts[fk]
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\n", k, r.FaultCounts[fk], errs[fk], skipped[fk])
	}
	fmt.Fprintf(w, "total\t%d\t\t\n", total)
	w.Flush()
	reasons := map[string][]string{}
	for k, why := range r.Skipped {
		reasons[why] = append(reasons[why], string(k))
	}
	for _, why := range sortedKeys(reasons) {
		ks := reasons[why]
		sort.Strings(ks)
		fmt.Fprintf(out, "  skipped %s: %s\n", strings.Join(ks, ", "), why)
	}

	fmt.Fprintln(w, "\nOPERATION\tOK\tFAIL\tUNKNOWN")
	var ops []string
	for k := range r.Ops {
		ops = append(ops, k)
	}
	sort.Strings(ops)
	for _, k := range ops {
		m := r.Ops[k]
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\n", k, m[OK], m[Fail], m[Unknown])
	}

	w.Flush()
	r.writeLin(w)
	w.Flush()
	if r.Hostile != nil {
		r.Hostile.writeTable(out)
	}

	fmt.Fprintln(w, "\nCHECK\tRESULT\tCHECKED\tVIOLATIONS")
	for _, c := range r.Checks {
		res := "pass"
		if !c.Pass {
			res = "FAIL"
		} else if c.Inconclusive != "" {
			res = "pass (partly inconclusive)"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", c.Name, res, c.Checked, c.Violations)
	}
	w.Flush()
	for _, c := range r.Checks {
		if c.Inconclusive != "" {
			fmt.Fprintf(out, "  %s: inconclusive: %s\n", c.Name, c.Inconclusive)
		}
		for i, e := range c.Examples {
			if i == 5 {
				fmt.Fprintf(out, "  %s: ... %d more in report.json\n", c.Name, c.Violations-5)
				break
			}
			fmt.Fprintf(out, "  %s: %s\n", c.Name, e)
		}
	}
	verdict := "OK: no violation found"
	if !r.OK {
		var failed []string
		for _, c := range r.Checks {
			if !c.Pass {
				failed = append(failed, c.Name)
			}
		}
		verdict = "VIOLATIONS: " + strings.Join(failed, ", ")
	}
	fmt.Fprintf(out, "\n%s (took %v). Report: %s/report.json\n", verdict, r.Finished.Sub(r.Started).Round(time.Second), r.OutDir)
}

// writeLin prints one line per lin queue: its pieces, operations and
// verdict (the first piece that failed, if any).
func (r *Report) writeLin(w io.Writer) {
	if len(r.Lin) == 0 {
		return
	}
	fmt.Fprintln(w, "\nLIN QUEUE\tPIECES\tOPS\tUNKNOWN\tRESULT\tSLOWEST CHECK")
	type row struct {
		pieces, ops, unknown int
		result               string
		slowest              time.Duration
	}
	rows := map[string]*row{}
	var names []string
	for _, l := range r.Lin {
		x := rows[l.Queue]
		if x == nil {
			x = &row{result: LinOK}
			rows[l.Queue] = x
			names = append(names, l.Queue)
		}
		x.pieces++
		x.ops += l.Ops
		x.unknown += l.Unknown
		x.slowest = max(x.slowest, l.Took)
		if l.Result != LinOK && x.result == LinOK {
			what := "ILLEGAL"
			if l.Result == LinTimeout {
				what = "TIMED OUT (a failure)"
			}
			x.result = fmt.Sprintf("%s in piece %d (%s-%s)", what, l.Piece, at(l.From), at(l.To))
		}
	}
	for _, q := range names {
		x := rows[q]
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\t%v\n", q, x.pieces, x.ops, x.unknown, x.result, x.slowest.Round(time.Millisecond))
	}
}

// writeTable prints the large mgets, the publishes, the pubsub counters
// and the hostile connections.
func (hr *HostileReport) writeTable(out io.Writer) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	b := hr.BigMGets
	fmt.Fprintln(w, "\nLARGE MGET\tOK\tFAIL\tUNKNOWN\tMESSAGES (WORK/LIN)\tLARGEST\tAT CAP")
	fmt.Fprintf(w, "items far above the queue\t%d\t%d\t%d\t%d/%d\t%d (%d bytes)\t%d (cap %d)\n",
		b.Requests[OK], b.Requests[Fail], b.Requests[Unknown], b.WorkMessages, b.LinMessages, b.Largest, b.LargestBytes, b.AtCap, b.Cap)
	p := hr.Pubs
	fmt.Fprintln(w, "\nPUB TO STALLED\tOK\tFAIL\tUNKNOWN\tMAX LATENCY\tNO FAULT: N\tP99\tMAX\tBOUND\tMAX SUBSCRIBERS")
	fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%v\t%d\t%v\t%v\t%v\t%d\n", StallTopic, p.Requests[OK], p.Requests[Fail], p.Requests[Unknown],
		p.MaxLatency.Round(time.Millisecond), p.Quiet, p.QuietP99.Round(time.Millisecond), p.QuietMax.Round(time.Millisecond), p.Bound, p.MaxSubscribers)
	w.Flush()
	for _, id := range sortedKeys(hr.PubsubStats) {
		st := hr.PubsubStats[id]
		fmt.Fprintf(out, "  pubsub %s at the end: %d connections, %d kicked, %d messages sent\n", id, st["current_connections"], st["kicked_clients"], st["messages_sent"])
	}
	for _, id := range sortedKeys(hr.PubsubStatsErrors) {
		fmt.Fprintf(out, "  pubsub %s at the end: %s\n", id, hr.PubsubStatsErrors[id])
	}
	if len(hr.Conns) == 0 {
		return
	}
	if hr.Restarts > 0 {
		fmt.Fprintf(out, "\ngraceful restarts: %d, %d killed after no exit within %v of SIGTERM (open requests hold a shutdown); slowest exit %v\n",
			hr.Restarts, hr.RestartsKilled, GracefulExitWait, hr.SlowestExit.Round(100*time.Millisecond))
	}
	fmt.Fprintln(w, "\nHOSTILE CONN\tPORT\tOPENED\tCLOSED BY NODE\tNODE DOWN\tOPEN AT END\tREFUSED\tCLOSED AFTER (MIN/MEDIAN/MAX)\tLONGEST")
	for _, c := range hr.Conns {
		lasted := "-"
		if c.ClosedMax > 0 {
			lasted = fmt.Sprintf("%v/%v/%v", c.ClosedMin.Round(100*time.Millisecond), c.ClosedMedian.Round(100*time.Millisecond), c.ClosedMax.Round(100*time.Millisecond))
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%v\n", c.Kind, c.Port, c.Opened, c.Ended[EndClosedByServer], c.Ended[EndNodeDown],
			c.Ended[EndOpen], c.Ended[EndRefused], lasted, c.Longest.Round(time.Second))
	}
	w.Flush()
	for _, c := range hr.Conns {
		for _, a := range sortedKeys(c.Answers) {
			fmt.Fprintf(out, "  %s on %s: %d answered %q\n", c.Kind, c.Port, c.Answers[a], a)
		}
	}
}
