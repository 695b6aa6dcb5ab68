package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// CPUUsage is the CPU time spent during one measured window, as deltas in
// microseconds, and the messages acknowledged in that window. Per-message
// figures are derived (PerMsg) rather than stored, so that the JSON holds
// only what was measured.
type CPUUsage struct {
	// Msgs is the messages acknowledged in the window (the run's Msgs).
	Msgs uint64 `json:"msgs"`
	// WindowUs is the wall time between the two samples.
	WindowUs float64 `json:"window_us"`
	// SystemUs sums every process of the system under test.
	SystemUs float64 `json:"system_us"`
	// LeaderUs and FollowersUs split SystemUs for quorumq: the node that
	// led when the run started, and the others summed. Zero for peers.
	LeaderUs    float64 `json:"leader_us,omitempty"`
	FollowersUs float64 `json:"followers_us,omitempty"`
	// LoadGenUs is this process: the load generator's own CPU.
	LoadGenUs float64 `json:"loadgen_us"`
}

// PerMsg returns cpuUs divided by the acknowledged messages; ok is false
// for a nil usage or a window that acknowledged nothing.
func (u *CPUUsage) PerMsg(cpuUs float64) (us float64, ok bool) {
	if u == nil || u.Msgs == 0 {
		return 0, false
	}
	return cpuUs / float64(u.Msgs), true
}

// Cores is how many cores the system's processes kept busy on average.
func (u *CPUUsage) Cores() (float64, bool) {
	if u == nil || u.WindowUs <= 0 {
		return 0, false
	}
	return u.SystemUs / u.WindowUs, true
}

// Roles of a quorumq node's process, as /cluster/status states them.
const (
	roleLeader   = "leader"
	roleFollower = "follower"
)

// sysProc is one process of a system under test.
type sysProc struct {
	Name string
	PID  int
	// Role is roleLeader or roleFollower for quorumq; empty for a peer,
	// whose processes are only summed.
	Role string
}

var (
	// errStatFormat is returned for a /proc/PID/stat line that cannot be read.
	errStatFormat = errors.New("malformed /proc stat line")
	// errNotSampled is returned for a window whose hooks did not both fire.
	errNotSampled = errors.New("the measured window was not sampled")
)

// Field positions in /proc/PID/stat after the ")" that ends comm: the
// state is field 3 of proc(5), utime 14, stime 15, cutime 16, cstime 17.
const (
	statFirst = 3
	statUtime = 14 - statFirst
	statLast  = 17 - statFirst
)

// parseStatTicks returns utime+stime+cutime+cstime, in clock ticks, from
// the contents of /proc/PID/stat: the process's own CPU and that of the
// children it has reaped, so that work a server forks off (Redis's AOF
// rewrite) counts as the server's. comm (field 2) may hold spaces and
// parentheses, so the fields are counted from the last ")".
func parseStatTicks(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errStatFormat
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) <= statLast {
		return 0, errStatFormat
	}
	var sum uint64
	for _, v := range f[statUtime : statLast+1] {
		// cutime and cstime are signed in the kernel's format, never
		// negative in practice: a negative one is a malformed line.
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			return 0, errStatFormat
		}
		sum += n
	}
	return sum, nil
}

// atClkTck is the auxiliary-vector key of the clock tick rate (USER_HZ),
// the unit of /proc/PID/stat's times; defaultClkTck is what it is on
// almost every Linux, for when auxv cannot be read.
const (
	atNull        = 0
	atClkTck      = 17
	defaultClkTck = 100
)

// parseAuxvClkTck finds AT_CLKTCK in an auxiliary vector of native-endian
// (key, value) pairs of wordSize bytes each.
func parseAuxvClkTck(auxv []byte, wordSize int) (uint64, bool) {
	word := func(b []byte) uint64 {
		if wordSize == 4 {
			return uint64(binary.NativeEndian.Uint32(b))
		}
		return binary.NativeEndian.Uint64(b)
	}
	for len(auxv) >= 2*wordSize {
		k, v := word(auxv), word(auxv[wordSize:])
		auxv = auxv[2*wordSize:]
		switch {
		case k == atNull:
			return 0, false
		case k == atClkTck && v > 0:
			return v, true
		}
	}
	return 0, false
}

// clockTicks is the kernel's clock tick rate, read once.
var clockTicks = sync.OnceValue(func() uint64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return defaultClkTck
	}
	if hz, ok := parseAuxvClkTck(b, strconv.IntSize/8); ok {
		return hz
	}
	return defaultClkTck
})

// ticksToUs converts clock ticks at hz per second to microseconds.
func ticksToUs(ticks, hz uint64) float64 { return float64(ticks) * 1e6 / float64(hz) }

// procCPU is the CPU time (user and system) that process pid has used.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	t, err := parseStatTicks(b)
	if err != nil {
		return 0, fmt.Errorf("pid %d: %w", pid, err)
	}
	return ticksToUs(t, clockTicks()), nil
}

// selfCPU is the CPU time this process (the load generator) has used, in
// microseconds; getrusage has finer resolution than the tick counts.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e3
}

// cpuSample is every process's CPU time at one instant.
type cpuSample struct {
	at    time.Time
	procs []float64 // in the order of cpuProbe.procs
	self  float64
	err   error
}

// cpuProbe samples a system's processes and this process around one
// measured window: begin and end are the load generator's measure hooks.
type cpuProbe struct {
	procs       []sysProc
	first, last cpuSample
}

func newCPUProbe(procs []sysProc) *cpuProbe { return &cpuProbe{procs: procs} }

func (p *cpuProbe) sample() cpuSample {
	s := cpuSample{at: time.Now(), self: selfCPU(), procs: make([]float64, len(p.procs))}
	for i, pr := range p.procs {
		s.procs[i], s.err = procCPU(pr.PID)
		if s.err != nil {
			break
		}
	}
	return s
}

func (p *cpuProbe) begin() { p.first = p.sample() }
func (p *cpuProbe) end()   { p.last = p.sample() }

// usage is what was spent between begin and end, with msgs acknowledged
// in the window; nil when either sample failed or was never taken.
func (p *cpuProbe) usage(msgs uint64) (*CPUUsage, error) {
	switch {
	case p.first.at.IsZero() || p.last.at.IsZero():
		return nil, errNotSampled
	case p.first.err != nil:
		return nil, p.first.err
	case p.last.err != nil:
		return nil, p.last.err
	}
	u := &CPUUsage{
		Msgs:      msgs,
		WindowUs:  float64(p.last.at.Sub(p.first.at)) / 1e3,
		LoadGenUs: p.last.self - p.first.self,
	}
	for i, pr := range p.procs {
		d := p.last.procs[i] - p.first.procs[i]
		u.SystemUs += d
		switch pr.Role {
		case roleLeader:
			u.LeaderUs += d
		case roleFollower:
			u.FollowersUs += d
		}
	}
	return u, nil
}
