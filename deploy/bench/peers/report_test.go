package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// oldJSON is a report as written before CPU and 1-client puts were
// measured (trimmed to what the tables read).
const oldJSON = `{
  "duration_ns": 10000000000,
  "machine": {"cores": 2},
  "systems": [
    {"key": "quorumq1", "name": "quorumq, 1 node", "Put": {"msgs": 256000, "msgs_per_s": 25600, "latency_us": {"p50": 2330, "p99": 6410}},
     "Batch": {"msgs": 5985000, "msgs_per_s": 598500, "latency_us": {"p99": 9800}}},
    {"key": "quorumq3", "name": "quorumq, 3 nodes", "Put": {"msgs": 156000, "msgs_per_s": 15600, "latency_us": {"p50": 3960, "p99": 8810}},
     "PutFollower": {"msgs": 86300, "msgs_per_s": 8630, "latency_us": {"p50": 7000, "p99": 16100}}},
    {"key": "nats-r3", "name": "NATS JetStream 2.15.2, R3 file", "Put": {"msgs": 156000, "msgs_per_s": 15600, "latency_us": {"p50": 3790}}}
  ]
}`

// tableRows returns the rows of the markdown table under heading.
func tableRows(t *testing.T, md, heading string) []string {
	t.Helper()
	_, after, ok := strings.Cut(md, heading+"\n")
	if !ok {
		t.Fatalf("no %q in the report", heading)
	}
	var rows []string
	for _, l := range strings.Split(after, "\n") {
		if strings.HasPrefix(l, "## ") {
			break
		}
		if strings.HasPrefix(l, "| ") && !strings.HasPrefix(l, "| system |") && !strings.HasPrefix(l, "| target |") {
			rows = append(rows, l)
		}
	}
	return rows
}

// TestMarkdown_OldJSON_RendersDashesForWhatItLacks: a report written
// before CPU was measured still renders, with – for CPU and the targets
// it cannot answer.
func TestMarkdown_OldJSON_RendersDashesForWhatItLacks(t *testing.T) {
	var r report
	if err := json.Unmarshal([]byte(oldJSON), &r); err != nil {
		t.Fatal(err)
	}
	md := markdown(&r)
	cpu := tableRows(t, md, "## CPU per acknowledged message")
	if len(cpu) != 5 { // q1 put and mput, q3 put and followers, JetStream put
		t.Fatalf("exp 5 CPU rows, got %d:\n%s", len(cpu), strings.Join(cpu, "\n"))
	}
	for _, row := range cpu {
		if !strings.HasSuffix(row, "| – | – | – | – | – |") {
			t.Fatalf("exp – for every CPU figure, got %s", row)
		}
	}
	targets := tableRows(t, md, "## Targets")
	exp := []string{"–", "**no**", "**no**", "**no**", "–", "–", "–", "–", "–"}
	if len(targets) != len(exp) {
		t.Fatalf("exp %d targets, got %d:\n%s", len(exp), len(targets), strings.Join(targets, "\n"))
	}
	for i, row := range targets {
		if !strings.HasSuffix(row, "| "+exp[i]+" |") {
			t.Errorf("target %d: exp %s, got %s", i, exp[i], row)
		}
	}
}

// TestMarkdown_CPUFigures_PerAcknowledgedMessage: a sampled window shows
// its CPU per message for the system, leader, followers and generator.
func TestMarkdown_CPUFigures_PerAcknowledgedMessage(t *testing.T) {
	r := runReport(figures{q3Put: put(8000, 3000), q3CPU: leaderCPU(40)})
	r.Systems[1].Name = "quorumq, 3 nodes"
	r.Systems[1].CPU.Put.LoadGenUs = 16000
	r.LeaderCPUBaselineUs = DefaultLeaderCPUBaselineUs
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	md := markdown(&back)
	want := "| quorumq, 3 nodes | put, 64 clients | 8.00k | 120.0 | 40.0 | 80.0 | 16.0 | 0.12 |"
	if !strings.Contains(md, want) {
		t.Fatalf("exp the row %s in:\n%s", want, strings.Join(tableRows(t, md, "## CPU per acknowledged message"), "\n"))
	}
	if !strings.Contains(md, "40.0 µs per put against 50.0 µs before (-20 %) | **no** |") {
		t.Fatalf("exp the leader CPU target judged against the baseline kept in the JSON:\n%s", strings.Join(tableRows(t, md, "## Targets"), "\n"))
	}
}
