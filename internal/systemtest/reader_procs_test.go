package systemtest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/testkit"
)

// buildReaderProc builds testdata/readerproc into the test's temporary
// directory.
func buildReaderProc(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "readerproc")
	if err := testkit.GoBuild(context.Background(), "./testdata/readerproc", bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// readerProc is one running readerproc.
type readerProc struct {
	*testkit.Process
	t       testing.TB
	name    string
	logPath string // its execution log
	errPath string // its stdout and stderr
}

// startReaderProc starts the readerproc binary bin with args (and the
// CA file and token of u's nodes when they are secured); its execution
// log and stderr live in the test's temporary directory.
func startReaderProc(t testing.TB, u *user, bin, name string, args ...string) *readerProc {
	t.Helper()
	dir := t.TempDir()
	p := &readerProc{t: t, name: name, logPath: filepath.Join(dir, "exec.log"), errPath: filepath.Join(dir, "stderr.log")}
	p.Process = testkit.NewProcess(testkit.ProcessConfig{
		Name:    "reader " + name,
		Argv:    append(append([]string{bin, "--log=" + p.logPath}, u.toolArgs()...), args...),
		LogPath: p.errPath,
	})
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("---- reader %s stderr (tail) ----\n%s", p.name, p.LogTail(8<<10))
		}
	})
	return p
}

// kill9 kills the reader without any chance to clean up.
func (p *readerProc) kill9() { p.Kill() }

// terminate sends SIGTERM and requires a clean exit within timeout; it
// returns the stats line the reader printed.
func (p *readerProc) terminate(timeout time.Duration) string {
	p.t.Helper()
	if code, err := p.Terminate(timeout); err != nil || code != 0 {
		p.t.Fatalf("reader %s: exit status %d after SIGTERM (%v)", p.name, code, err)
	}
	b, _ := os.ReadFile(p.errPath)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "stats ") {
			return strings.TrimPrefix(line, "stats ")
		}
	}
	return ""
}

// readerLogLine is one line of a readerproc log.
type readerLogLine struct {
	reader   string
	kind     string // exec, event, giveup
	n        int
	task     string // exec: the task; event: the outcome
	ok       bool   // exec: the task succeeded
	attempt  int
	delivery int
	id       string
	// event only
	leaseLost, uncertain, failed bool
}

// readReaderLogs parses the logs of procs. A line cut by a kill -9 (no
// final newline) is ignored.
func readReaderLogs(t *testing.T, procs ...*readerProc) []readerLogLine {
	t.Helper()
	var out []readerLogLine
	for _, p := range procs {
		f, err := os.Open(p.logPath)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := readerReadAll(f)
		f.Close()
		lines := strings.Split(data, "\n")
		for _, line := range lines[:len(lines)-1] { // the last piece has no newline
			fs := strings.Fields(line)
			if len(fs) == 0 {
				continue
			}
			atoi := func(i int) int {
				v, err := strconv.Atoi(fs[i])
				if err != nil {
					t.Fatalf("reader %s: bad line %q", p.name, line)
				}
				return v
			}
			l := readerLogLine{reader: p.name, kind: fs[0]}
			switch fs[0] {
			case "exec":
				l.n, l.task, l.ok, l.attempt, l.delivery, l.id = atoi(1), fs[2], fs[3] == "ok", atoi(4), atoi(5), fs[6]
			case "event":
				l.n, l.task, l.attempt, l.delivery, l.id = atoi(1), fs[2], atoi(3), atoi(4), fs[5]
				l.leaseLost, l.uncertain, l.failed = fs[6] == "1", fs[7] == "1", fs[8] == "1"
			case "giveup":
				l.n, l.attempt, l.delivery, l.id = atoi(1), atoi(2), atoi(3), fs[4]
			default:
				t.Fatalf("reader %s: unknown line %q", p.name, line)
			}
			out = append(out, l)
		}
	}
	return out
}

func readerReadAll(f *os.File) (string, error) {
	var b strings.Builder
	r := bufio.NewReader(f)
	_, err := r.WriteTo(&b)
	return b.String(), err
}

// readerCountEvents counts the event lines of kind in the logs.
func readerCountEvents(t *testing.T, kind string, procs ...*readerProc) int {
	n := 0
	for _, l := range readReaderLogs(t, procs...) {
		if l.kind == "event" && l.task == kind {
			n++
		}
	}
	return n
}

// readerQueueStats reads a queue's stats through any of nodes that answers.
func readerQueueStats(nodes []*node, queue string) (*client.Stats, error) {
	var addrs []string
	for _, nd := range nodes {
		addrs = append(addrs, nd.QueueURL)
	}
	q, err := client.NewQueue(addrs, nodes[0].clientOptions())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return q.Stats(ctx, queue)
}

// readerPutNumbered puts {"n": i} for i in [0, n), with {"n": poison,
// "poison": true} inserted at position poison when poison >= 0, through
// node nd in batches.
func readerPutNumbered(t testing.TB, nd *node, queue string, n, poison int) {
	t.Helper()
	q, err := client.NewQueue([]string{nd.QueueURL}, nd.clientOptions())
	if err != nil {
		t.Fatal(err)
	}
	var batch [][]byte
	batches := 0
	flush := func() {
		if len(batch) == 0 {
			return
		}
		batches++
		if err := q.MPut(context.Background(), queue, batch, client.MPutOptions{ID: fmt.Sprintf("batch-%s-%d", queue, batches)}); err != nil {
			t.Fatal(err)
		}
		batch = nil
	}
	for i := range n {
		if i == poison {
			batch = append(batch, []byte(fmt.Sprintf(`{"n": %d, "poison": true}`, n)))
		}
		batch = append(batch, []byte(fmt.Sprintf(`{"n": %d}`, i)))
		if len(batch) >= 200 {
			flush()
		}
	}
	flush()
}

func readerSortedKeys[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}
