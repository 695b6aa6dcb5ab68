package sysmem

import (
	"errors"
	"testing"
	"testing/fstest"
)

const meminfo = "MemTotal:       16384000 kB\nMemFree:        1000 kB\n"

func TestLimit_NoControlGroupLimit_IsPhysicalMemory(t *testing.T) {
	root := fstest.MapFS{
		"proc/meminfo":                        {Data: []byte(meminfo)},
		"proc/self/cgroup":                    {Data: []byte("0::/user.slice/session-1.scope\n")},
		"sys/fs/cgroup/memory.max":            {Data: []byte("max\n")},
		"sys/fs/cgroup/user.slice/memory.max": {Data: []byte("max\n")},
	}
	m, err := limit(root)
	if err != nil {
		t.Fatal(err)
	}
	if m.Bytes != 16384000<<10 || m.Source != "physical memory" {
		t.Fatalf("got %+v, want 16384000 KiB of physical memory", m)
	}
}

func TestLimit_CgroupV2LimitOnAParent_LowersIt(t *testing.T) {
	root := fstest.MapFS{
		"proc/meminfo":     {Data: []byte(meminfo)},
		"proc/self/cgroup": {Data: []byte("0::/kubepods/pod1/c1\n")},
		"sys/fs/cgroup/kubepods/pod1/c1/memory.max": {Data: []byte("max\n")},
		"sys/fs/cgroup/kubepods/pod1/memory.max":    {Data: []byte("536870912\n")},
		"sys/fs/cgroup/kubepods/memory.max":         {Data: []byte("1073741824\n")},
	}
	m, err := limit(root)
	if err != nil {
		t.Fatal(err)
	}
	if m.Bytes != 512<<20 || m.Source != "/sys/fs/cgroup/kubepods/pod1/memory.max" {
		t.Fatalf("got %+v, want 512 MiB from the pod's memory.max", m)
	}
}

func TestLimit_CgroupNamespace_ReadsTheMountRoot(t *testing.T) {
	root := fstest.MapFS{
		"proc/meminfo":             {Data: []byte(meminfo)},
		"proc/self/cgroup":         {Data: []byte("0::/\n")},
		"sys/fs/cgroup/memory.max": {Data: []byte("268435456\n")},
	}
	m, err := limit(root)
	if err != nil {
		t.Fatal(err)
	}
	if m.Bytes != 256<<20 {
		t.Fatalf("got %+v, want 256 MiB", m)
	}
}

func TestLimit_CgroupV1_UnlimitedIsIgnoredAndALimitApplies(t *testing.T) {
	root := fstest.MapFS{
		"proc/meminfo":     {Data: []byte(meminfo)},
		"proc/self/cgroup": {Data: []byte("5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n")},
		"sys/fs/cgroup/memory/memory.limit_in_bytes":            {Data: []byte("9223372036854771712\n")},
		"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": {Data: []byte("2147483648\n")},
	}
	m, err := limit(root)
	if err != nil {
		t.Fatal(err)
	}
	if m.Bytes != 2<<30 || m.Source != "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes" {
		t.Fatalf("got %+v, want 2 GiB from the container's group", m)
	}
}

func TestLimit_NoMeminfo_IsUnknown(t *testing.T) {
	_, err := limit(fstest.MapFS{})
	if !errors.Is(err, ErrUnknown) {
		t.Fatalf("err %v, want ErrUnknown", err)
	}
}

func TestLimit_ThisMachine_IsPositive(t *testing.T) {
	m, err := Limit()
	if errors.Is(err, ErrUnknown) {
		t.Skipf("not readable here: %v", err)
	}
	if err != nil || m.Bytes == 0 {
		t.Fatalf("Limit() = %+v, %v", m, err)
	}
	t.Logf("%d MiB (%s)", m.Bytes>>20, m.Source)
}
