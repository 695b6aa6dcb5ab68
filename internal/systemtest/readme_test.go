package systemtest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/testwait"
)

// quickStartBlock finds the README's quick-start shell blocks: a fenced
// sh block right after a marker <!-- quickstart:NAME -->.
var quickStartBlock = regexp.MustCompile("(?s)<!-- quickstart:([a-z]+) -->\n```sh\n(.*?)```")

// TestREADME_QuickStart_RunsVerbatimOnOtherPorts: the README's quick start,
// copied block by block into bash with BASE set to a free block of ports,
// works as written: devcluster starts on BASE, a put on node2 is got on
// node3, status answers, and a node killed with kill -9 is back with what
// was put while it was down. Everything it started is stopped.
func TestREADME_QuickStart_RunsVerbatimOnOtherPorts(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string]string{}
	for _, m := range quickStartBlock.FindAllStringSubmatch(string(readme), -1) {
		blocks[m[1]] = m[2]
	}
	for _, name := range []string{"env", "cluster", "try", "failover"} {
		if blocks[name] == "" {
			t.Fatalf("README.md has no quick-start block %q (<!-- quickstart:%s --> before a sh block)", name, name)
		}
	}
	// The quick start runs in a checkout: ./bin/quorumq, ./devcluster-data.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(mustBinary(t), filepath.Join(dir, "bin", "quorumq")); err != nil {
		t.Fatal(err)
	}
	base := freePortBlock(t, 3)
	env := append(os.Environ(), "BASE="+strconv.Itoa(base))

	// Terminal 1: devcluster, in the background, its output in a file.
	out, err := os.Create(filepath.Join(dir, "devcluster.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cluster := exec.Command("bash", "-e", "-c", blocks["env"]+blocks["cluster"])
	cluster.Dir, cluster.Env, cluster.Stdout, cluster.Stderr = dir, env, out, out
	cluster.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cluster.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cluster.Wait() }()
	t.Cleanup(func() { stopGroup(t, cluster.Process.Pid) })
	output := func() string { b, _ := os.ReadFile(out.Name()); return string(b) }
	testwait.For(t, 2*readyTimeout, "devcluster from the quick start to be ready", func() bool {
		select {
		case err := <-exited:
			t.Fatalf("the quick start's devcluster exited (%v):\n%s", err, output())
		default:
		}
		return strings.Contains(output(), "all 3 nodes ready")
	})
	if want := "http://127.0.0.1:" + strconv.Itoa(base+11); !strings.Contains(output(), want) {
		t.Fatalf("devcluster does not list node2's queue at %s:\n%s", want, output())
	}

	// Terminal 2, one block after the other.
	try := runQuickStart(t, dir, env, blocks["env"]+blocks["try"])
	if !strings.Contains(try, "hello\n") || !strings.Contains(try, "MEMBER") {
		t.Fatalf("the quick start's try block printed:\n%s\nwant hello and the members", try)
	}
	failover := runQuickStart(t, dir, env, blocks["env"]+blocks["failover"])
	if !strings.HasSuffix(failover, "while node2 was down\n") {
		t.Fatalf("the quick start's failover block printed:\n%s\nwant the message put while node2 was down", failover)
	}
	if !strings.Contains(output(), "node2 restarted") {
		t.Fatalf("devcluster did not restart node2:\n%s", output())
	}
}

// runQuickStart runs script with bash -e in dir, bounded in time, and
// returns what it printed; it fails the test if the script fails.
func runQuickStart(t *testing.T, dir string, env []string, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*readyTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-c", script)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("quick start block failed (%v):\n%s\noutput:\n%s", err, script, out)
	}
	return string(out)
}

// stopGroup stops the process group pgid as Ctrl-C would (SIGINT to every
// process in it) and waits until it is gone, killing it after stopTimeout.
func stopGroup(t *testing.T, pgid int) {
	gone := func() bool { return errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) }
	syscall.Kill(-pgid, syscall.SIGINT)
	deadline := time.Now().Add(stopTimeout)
	testwait.For(t, stopTimeout+readyTimeout, "the quick start's processes to stop", func() bool {
		if !gone() && time.Now().After(deadline) {
			syscall.Kill(-pgid, syscall.SIGKILL)
		}
		return gone()
	})
}
