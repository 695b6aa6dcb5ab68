package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Machine describes where the run happened.
type Machine struct {
	CPU        string  `json:"cpu"`
	Cores      int     `json:"cores"`
	MemoryGiB  float64 `json:"memory_gib"`
	Kernel     string  `json:"kernel"`
	Go         string  `json:"go"`
	Filesystem string  `json:"filesystem"`
	// Fsync probe: 100-byte appends, each followed by fdatasync, one
	// thread, for probeTime.
	FsyncPerSec float64 `json:"fsync_per_s"`
	FsyncP50us  float64 `json:"fsync_p50_us"`
	FsyncP99us  float64 `json:"fsync_p99_us"`
	LoadStart   string  `json:"load_start"`
	Redis       string  `json:"redis"`
}

const probeTime = 2 * time.Second

func describeMachine(dir string) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), LoadStart: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		fmt.Sscanf(string(b), "MemTotal: %f kB", &kb)
		m.MemoryGiB = kb / (1 << 20)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("df", "-T", dir).Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if f := strings.Fields(lines[len(lines)-1]); len(f) > 1 {
			m.Filesystem = f[1] + " on " + f[0]
		}
	}
	if out, err := exec.Command("redis-server", "--version").Output(); err == nil {
		m.Redis = strings.TrimSpace(string(out))
	}
	m.FsyncPerSec, m.FsyncP50us, m.FsyncP99us = fsyncProbe(dir)
	return m
}

// fsyncProbe appends 100-byte records to a file in dir, each followed by
// fdatasync, for probeTime: the disk's serial sync rate, the floor of any
// design that syncs every write on its own.
func fsyncProbe(dir string) (perSec, p50, p99 float64) {
	f, err := os.Create(filepath.Join(dir, "fsync-probe"))
	if err != nil {
		return 0, 0, 0
	}
	defer os.Remove(f.Name())
	defer f.Close()
	rec := bytes.Repeat([]byte{'x'}, 100)
	var lat []time.Duration
	start := time.Now()
	for time.Since(start) < probeTime {
		t := time.Now()
		if _, err := f.Write(rec); err != nil {
			return 0, 0, 0
		}
		if err := fdatasync(f); err != nil {
			return 0, 0, 0
		}
		lat = append(lat, time.Since(t))
	}
	el := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e3 }
	return float64(len(lat)) / el.Seconds(), q(0.5), q(0.99)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// command runs name in dir, its output to stderr.
func command(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}
