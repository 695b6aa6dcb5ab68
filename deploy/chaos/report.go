package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
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
	Epoch       time.Time `json:"epoch"`
	Network     string    `json:"network"`
	NetworkNote string    `json:"network_note,omitempty"`
	OutDir      string    `json:"out_dir"`

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
	Lin    []LinResult                `json:"lin_queues"`
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
