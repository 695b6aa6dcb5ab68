// Package sysmem finds how much memory this process may use: the
// machine's physical memory, lowered to the memory limit of the process's
// control group (a container's limit) when one is set. The node derives
// its default budget of queued bytes from it.
package sysmem

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
)

// Memory is an amount of memory and where it was read.
type Memory struct {
	Bytes uint64
	// Source says where Bytes comes from: "physical memory", or the
	// control group file that lowered it.
	Source string
}

// ErrUnknown: neither the machine's memory nor a control group limit
// could be read (not Linux, or /proc is not mounted).
var ErrUnknown = errors.New("the memory available to this process is unknown")

// Limit returns the memory this process may use: the physical memory,
// or the lowest control group limit on the way from the process's group
// up to the root when that is lower (cgroup v2 memory.max, v1
// memory.limit_in_bytes).
func Limit() (Memory, error) {
	return limit(os.DirFS("/"))
}

// limit is Limit on the file system root, for tests.
func limit(root fs.FS) (Memory, error) {
	total, err := physical(root)
	if err != nil {
		return Memory{}, fmt.Errorf("%w: %w", ErrUnknown, err)
	}
	m := Memory{Bytes: total, Source: "physical memory"}
	for _, file := range cgroupLimitFiles(root) {
		if n, ok := readLimit(root, file); ok && n < m.Bytes {
			m = Memory{Bytes: n, Source: "/" + file}
		}
	}
	return m, nil
}

// physical reads MemTotal from /proc/meminfo.
func physical(root fs.FS) (uint64, error) {
	f, err := root.Open("proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		kb, ok := strings.CutSuffix(strings.TrimSpace(rest), " kB")
		n, err := strconv.ParseUint(strings.TrimSpace(kb), 10, 64)
		if !ok || err != nil || n == 0 {
			return 0, fmt.Errorf("/proc/meminfo: unreadable MemTotal %q", rest)
		}
		return n << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("/proc/meminfo has no MemTotal")
}

// cgroupLimitFiles lists the limit files that may apply to this process,
// from /proc/self/cgroup: for its group and each parent up to the root,
// cgroup v2's memory.max under /sys/fs/cgroup and v1's
// memory.limit_in_bytes under /sys/fs/cgroup/memory. In a container the
// group's path is often not visible under the mount (a cgroup namespace
// or a bind mount of the group alone), which the mount's own root file
// covers. Files that do not exist are skipped by the caller.
func cgroupLimitFiles(root fs.FS) []string {
	b, err := fs.ReadFile(root, "proc/self/cgroup")
	if err != nil {
		return nil
	}
	var files []string
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dir, file string
		switch {
		case parts[0] == "0" && parts[1] == "":
			dir, file = "sys/fs/cgroup", "memory.max"
		case hasController(parts[1], "memory"):
			dir, file = "sys/fs/cgroup/memory", "memory.limit_in_bytes"
		default:
			continue
		}
		for p := path.Clean("/" + parts[2]); ; p = path.Dir(p) {
			files = append(files, path.Join(dir, p, file))
			if p == "/" {
				break
			}
		}
	}
	return files
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// readLimit reads a limit file: a byte count, or "max" (v2) or a huge
// number (v1's "no limit", a page-aligned 2^63-1) for none.
func readLimit(root fs.FS, file string) (uint64, bool) {
	b, err := fs.ReadFile(root, file)
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(b))
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 || n >= 1<<62 {
		return 0, false
	}
	return n, true
}
