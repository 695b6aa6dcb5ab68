package main

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"testing"
	"time"
)

// TestParseStatTicks_CountsFieldsFromTheLastParenthesis: comm may hold
// spaces and parentheses; utime, stime, cutime and cstime are still
// fields 14 to 17.
func TestParseStatTicks_CountsFieldsFromTheLastParenthesis(t *testing.T) {
	const rest = " S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 75 20 5 20 0 12 0 100 5000000 300 18446744073709551615\n"
	tests := []struct {
		name string
		stat string
		exp  uint64
		err  error
	}{
		{"plain comm", "1234 (quorumq)" + rest, 350, nil},
		{"comm with spaces", "1234 (nats node 2)" + rest, 350, nil},
		{"comm with parentheses", "1234 (a) b (c))" + rest, 350, nil},
		{"comm that looks like fields", "1234 (x) S 1 2 3 4 5 6 7 8 9 10 11 12)" + rest, 350, nil},
		{"no parenthesis", "1234 quorumq S 1", 0, errStatFormat},
		{"too few fields", "1234 (quorumq) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 75 20", 0, errStatFormat},
		{"not a number", "1234 (quorumq) S 1 1234 1234 0 -1 4194560 1000 0 0 0 x 75 20 5 20", 0, errStatFormat},
		{"negative child time", "1234 (quorumq) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 75 -1 5 20", 0, errStatFormat},
		{"empty", "", 0, errStatFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatTicks([]byte(tt.stat))
			if !errors.Is(err, tt.err) {
				t.Fatalf("exp error %v, got %v", tt.err, err)
			}
			if got != tt.exp {
				t.Fatalf("exp %d ticks, got %d", tt.exp, got)
			}
		})
	}
}

// TestProcCPU_ReadsThisProcess: the parser accepts the kernel's own line.
func TestProcCPU_ReadsThisProcess(t *testing.T) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if _, err := parseStatTicks(b); err != nil {
		t.Fatalf("/proc/self/stat %q: %v", b, err)
	}
	if us, err := procCPU(os.Getpid()); err != nil || us < 0 {
		t.Fatalf("procCPU of this process: %v µs, %v", us, err)
	}
	if selfCPU() <= 0 {
		t.Fatalf("getrusage reports no CPU for a running test")
	}
}

func auxv(wordSize int, pairs ...uint64) []byte {
	var b []byte
	for _, v := range pairs {
		if wordSize == 4 {
			b = binary.NativeEndian.AppendUint32(b, uint32(v))
		} else {
			b = binary.NativeEndian.AppendUint64(b, v)
		}
	}
	return b
}

// TestParseAuxvClkTck_FindsTheTickRate: AT_CLKTCK is found among other
// entries, in 8- and 4-byte words; a vector that ends (AT_NULL) or runs
// out first has none.
func TestParseAuxvClkTck_FindsTheTickRate(t *testing.T) {
	tests := []struct {
		name     string
		auxv     []byte
		wordSize int
		exp      uint64
		ok       bool
	}{
		{"64-bit", auxv(8, 6, 4096, atClkTck, 100, 0, 0), 8, 100, true},
		{"32-bit", auxv(4, 6, 4096, atClkTck, 250, 0, 0), 4, 250, true},
		{"after AT_NULL", auxv(8, 6, 4096, 0, 0, atClkTck, 100), 8, 0, false},
		{"absent", auxv(8, 6, 4096), 8, 0, false},
		{"zero rate", auxv(8, atClkTck, 0, 0, 0), 8, 0, false},
		{"truncated", auxv(8, 6, 4096, atClkTck)[:20], 8, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseAuxvClkTck(tt.auxv, tt.wordSize)
			if got != tt.exp || ok != tt.ok {
				t.Fatalf("exp %d %v, got %d %v", tt.exp, tt.ok, got, ok)
			}
		})
	}
	if hz := clockTicks(); hz == 0 {
		t.Fatalf("clock ticks per second: 0")
	}
	if us := ticksToUs(250, 100); us != 2.5e6 {
		t.Fatalf("250 ticks at 100 Hz: exp 2.5e6 µs, got %v", us)
	}
}

// TestCPUProbe_Usage_SplitsRolesAndDividesByMessages: deltas are summed
// over the system, split leader/followers, and divided by the messages
// acknowledged in the window.
func TestCPUProbe_Usage_SplitsRolesAndDividesByMessages(t *testing.T) {
	at := time.Unix(1000, 0)
	p := newCPUProbe([]sysProc{{"node1", 11, roleFollower}, {"node2", 12, roleLeader}, {"node3", 13, roleFollower}})
	p.first = cpuSample{at: at, procs: []float64{1000, 50000, 2000}, self: 100}
	p.last = cpuSample{at: at.Add(time.Second), procs: []float64{6000, 70000, 7000}, self: 4100}
	u, err := p.usage(400)
	if err != nil {
		t.Fatal(err)
	}
	exp := CPUUsage{Msgs: 400, WindowUs: 1e6, SystemUs: 30000, LeaderUs: 20000, FollowersUs: 10000, LoadGenUs: 4000}
	if *u != exp {
		t.Fatalf("exp %+v, got %+v", exp, *u)
	}
	for _, c := range []struct {
		name    string
		cpuUs   float64
		expUsPM float64
	}{{"system", u.SystemUs, 75}, {"leader", u.LeaderUs, 50}, {"followers", u.FollowersUs, 25}, {"load generator", u.LoadGenUs, 10}} {
		if got, ok := u.PerMsg(c.cpuUs); !ok || math.Abs(got-c.expUsPM) > 1e-9 {
			t.Fatalf("%s: exp %v µs per message, got %v (%v)", c.name, c.expUsPM, got, ok)
		}
	}
	if cores, ok := u.Cores(); !ok || math.Abs(cores-0.03) > 1e-9 {
		t.Fatalf("exp 0.03 cores, got %v (%v)", cores, ok)
	}
}

// TestCPUUsage_PerMsg_NothingAcknowledged: no division by zero, and a
// missing usage (an old report) has no figures.
func TestCPUUsage_PerMsg_NothingAcknowledged(t *testing.T) {
	if _, ok := (&CPUUsage{SystemUs: 5000}).PerMsg(5000); ok {
		t.Fatalf("a window without acknowledged messages has a per-message figure")
	}
	var u *CPUUsage
	if _, ok := u.PerMsg(1); ok {
		t.Fatalf("a nil usage has a per-message figure")
	}
	if _, ok := u.Cores(); ok {
		t.Fatalf("a nil usage has a core count")
	}
}

// TestCPUProbe_Usage_RefusesIncompleteWindows: a window not sampled at
// both ends, or a process gone at either end, gives no usage.
func TestCPUProbe_Usage_RefusesIncompleteWindows(t *testing.T) {
	p := newCPUProbe(nil)
	if _, err := p.usage(1); !errors.Is(err, errNotSampled) {
		t.Fatalf("exp errNotSampled before begin, got %v", err)
	}
	p.begin()
	if _, err := p.usage(1); !errors.Is(err, errNotSampled) {
		t.Fatalf("exp errNotSampled before end, got %v", err)
	}
	p.end()
	if _, err := p.usage(1); err != nil {
		t.Fatalf("a probe of no process: %v", err)
	}

	gone := newCPUProbe([]sysProc{{Name: "gone", PID: 1 << 30}})
	gone.begin()
	gone.end()
	if u, err := gone.usage(1); err == nil {
		t.Fatalf("exp an error for a process that does not exist, got %+v", u)
	}
}
