package systemtest

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/testwait"
)

// TestReader_FleetSurvivesNodeAndReaderKill: three reader processes, each
// given one node of a 3-node cluster (they discover the others), process
// 1,000 messages and a poison message with two tasks, of which b fails
// every message with n%10 == 3 once and the poison always. The leader is
// killed with SIGKILL at a quarter of the run and one reader at half of
// it. At the end: every message reached both tasks; a task that succeeded
// was not run again on a message unless that message had a delivery whose
// outcome the readers could not settle cleanly (in flight in the killed
// reader, cut off by the node kill, or a lost lease); the poison was
// given up exactly once after MaxTries attempts of b; the queue is empty,
// with nothing in flight, deferred or dead; the surviving readers stop
// cleanly on SIGTERM.
func TestReader_FleetSurvivesNodeAndReaderKill(t *testing.T) {
	inModes(t, testReader_FleetSurvivesNodeAndReaderKill)
}

func testReader_FleetSurvivesNodeAndReaderKill(t *testing.T, m mode) {
	const (
		queue    = "rt"
		n        = 1000
		poison   = n // the poison's number
		maxTries = 3
	)
	bin := buildReaderProc(t)
	c := mustStartCluster(t, 3, withMode(t, m), withFastRaft())
	readerPutNumbered(t, c.nodes[0], queue, n, n/2)

	var procs []*readerProc
	for i, nd := range c.nodes {
		procs = append(procs, startReaderProc(t, c.user, bin, fmt.Sprintf("r%d", i+1),
			"--addrs="+nd.QueueURL, "--queue="+queue, "--concurrency=4", "--task-sleep=10ms",
			"--lease=8s", fmt.Sprintf("--max-tries=%d", maxTries), "--requeue-delay=300ms"))
	}
	start := time.Now()
	done := func() int { return readerCountEvents(t, "done", procs...) }

	testwait.For(t, 120*time.Second, "a quarter of the messages", func() bool { return done() >= n/4 })
	leader := c.waitForLeader()
	leader.kill9()
	t.Logf("killed the leader %s after %d messages, %v", leader.ID, done(), time.Since(start).Round(time.Millisecond))
	c.waitForNewLeader(leader)

	testwait.For(t, 120*time.Second, "half of the messages", func() bool { return done() >= n/2 })
	killed := procs[1]
	killed.kill9()
	t.Logf("killed reader %s after %d messages, %v", killed.name, done(), time.Since(start).Round(time.Millisecond))

	live := without(c.nodes, leader)
	eventually(t, 180*time.Second, "every message processed and the queue empty", func() error {
		lines := readReaderLogs(t, procs...)
		if missing := fleetUnfinished(lines, n, poison); len(missing) > 0 {
			return fmt.Errorf("%d messages not finished, e.g. %v", len(missing), missing[:min(5, len(missing))])
		}
		st, err := readerQueueStats(live, queue)
		if err != nil {
			return err
		}
		if st.Depth != 0 || st.InFlight != 0 || st.Deferred != 0 {
			return fmt.Errorf("queue: depth %d in_flight %d deferred %d", st.Depth, st.InFlight, st.Deferred)
		}
		return nil
	})
	elapsed := time.Since(start)
	for _, p := range []*readerProc{procs[0], procs[2]} {
		t.Logf("reader %s stopped, stats %s", p.name, p.terminate(60*time.Second))
	}
	st, err := readerQueueStats(live, queue)
	if err != nil {
		t.Fatal(err)
	}
	if st.Depth != 0 || st.InFlight != 0 || st.Deferred != 0 || st.Dead != 0 {
		t.Fatalf("queue at the end: %+v, want empty with nothing dead", st)
	}

	lines := readReaderLogs(t, procs...)
	checkFleetLog(t, lines, n, poison, maxTries)
	t.Logf("%d messages through 3 readers in %v (with a leader kill and a reader kill)", n+1, elapsed.Round(time.Millisecond))
}

// fleetUnfinished lists the messages that have not yet succeeded in both tasks
// (the poison: not yet given up).
func fleetUnfinished(lines []readerLogLine, n, poison int) []int {
	okA, okB := map[int]bool{}, map[int]bool{}
	gaveUp := false
	for _, l := range lines {
		switch {
		case l.kind == "exec" && l.ok && l.task == "a":
			okA[l.n] = true
		case l.kind == "exec" && l.ok && l.task == "b":
			okB[l.n] = true
		case l.kind == "giveup" && l.n == poison:
			gaveUp = true
		}
	}
	var missing []int
	for i := range n {
		if !okA[i] || !okB[i] {
			missing = append(missing, i)
		}
	}
	if !gaveUp || !okA[poison] {
		missing = append(missing, poison)
	}
	return missing
}

// checkFleetLog checks the executions recorded by the readers (see
// TestReader_FleetSurvivesNodeAndReaderKill).
//
// Every delivery of a message has a number (the server's attempt count,
// 1, 2, ...). A delivery is settled cleanly when exactly one reader logged
// its outcome without a lost lease, an uncertain settle or an error. A
// message is excused from the no-rerun rule when one of its deliveries
// before the last was not settled cleanly: it was in flight in the killed
// reader, a fetch or settle was cut off by the node kill, or its lease
// ran out. At-least-once delivery allows the reruns that follow.
func checkFleetLog(t *testing.T, lines []readerLogLine, n, poison, maxTries int) {
	t.Helper()
	type key struct {
		n    int
		task string
	}
	okRuns := map[key]int{}
	failRuns := map[key]int{}
	events := map[int]map[int][]readerLogLine{} // message -> delivery -> event lines
	maxDelivery := map[int]int{}
	var giveUps []readerLogLine
	for _, l := range lines {
		if l.delivery > maxDelivery[l.n] {
			maxDelivery[l.n] = l.delivery
		}
		switch l.kind {
		case "exec":
			if l.ok {
				okRuns[key{l.n, l.task}]++
			} else {
				failRuns[key{l.n, l.task}]++
			}
		case "event":
			if events[l.n] == nil {
				events[l.n] = map[int][]readerLogLine{}
			}
			events[l.n][l.delivery] = append(events[l.n][l.delivery], l)
		case "giveup":
			giveUps = append(giveUps, l)
		}
	}
	excused := map[int]string{}
	for m, last := range maxDelivery {
		for d := 1; d <= last; d++ {
			evs := events[m][d]
			switch {
			case len(evs) == 0:
				excused[m] = fmt.Sprintf("delivery %d has no outcome", d)
			case len(evs) > 1:
				t.Errorf("message %d: delivery %d has %d outcomes: %+v", m, d, len(evs), evs)
			case evs[0].leaseLost || evs[0].uncertain || evs[0].failed:
				excused[m] = fmt.Sprintf("delivery %d: %+v", d, evs[0])
			}
			if excused[m] != "" {
				break
			}
		}
	}

	var problems []string
	report := func(format string, args ...any) {
		if len(problems) < 30 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	for i := range n + 1 {
		for _, task := range []string{"a", "b"} {
			k := key{i, task}
			if i == poison && task == "b" {
				continue
			}
			switch runs := okRuns[k]; {
			case runs == 0:
				report("message %d never succeeded in task %s", i, task)
			case runs > 1 && excused[i] == "":
				report("message %d: task %s succeeded %d times, though every delivery was settled cleanly", i, task, runs)
			}
		}
		if i%10 == 3 && i != poison && excused[i] == "" && failRuns[key{i, "b"}] != 1 {
			report("message %d: task b failed %d times, want once", i, failRuns[key{i, "b"}])
		}
		if i != poison && i%10 != 3 && failRuns[key{i, "b"}] > 0 {
			report("message %d: task b failed", i)
		}
	}
	if len(giveUps) != 1 {
		report("the poison was given up %d times: %+v", len(giveUps), giveUps)
	} else if g := giveUps[0]; g.n != poison || g.attempt != maxTries {
		report("give-up %+v, want message %d at attempt %d", g, poison, maxTries)
	}
	if excused[poison] == "" {
		if runs := failRuns[key{poison, "b"}]; runs != maxTries {
			report("the poison failed in b %d times, want MaxTries=%d", runs, maxTries)
		}
		if runs := okRuns[key{poison, "a"}]; runs != 1 {
			report("the poison succeeded in a %d times, want 1 (a is not retried)", runs)
		}
	}
	reruns := 0
	for k, runs := range okRuns {
		reruns += runs - 1
		_ = k
	}
	var ex []string
	for _, m := range readerSortedKeys(excused) {
		ex = append(ex, fmt.Sprintf("%d (%s)", m, excused[m]))
	}
	t.Logf("%d log lines; %d reruns of succeeded tasks, all on the %d excused messages: %s", len(lines), reruns, len(excused), readerAbbrevList(ex, 12))
	if len(problems) > 0 {
		t.Fatalf("the readers' executions break the reader's guarantees:\n%s", strings.Join(problems, "\n"))
	}
}

func readerAbbrevList(s []string, max int) string {
	if len(s) > max {
		return strings.Join(slices.Clip(s[:max]), ", ") + fmt.Sprintf(", ... (%d more)", len(s)-max)
	}
	return strings.Join(s, ", ")
}

// TestReader_FleetSpread_EveryMessageOnce: with requests spread over every
// node (--balance=spread) instead of sent to the leader, three reader
// processes, each given one node of a 3-node cluster, process 300 messages
// and a poison with the two tasks of TestReader_FleetSurvivesNodeAndReaderKill
// and no faults: every message reaches both tasks, no task that succeeded
// runs again unless a delivery was not settled cleanly, the poison is given
// up once after MaxTries, the queue ends empty with nothing dead, and the
// readers stop cleanly on SIGTERM.
func TestReader_FleetSpread_EveryMessageOnce(t *testing.T) {
	inModes(t, testReader_FleetSpread_EveryMessageOnce)
}

func testReader_FleetSpread_EveryMessageOnce(t *testing.T, m mode) {
	const (
		queue    = "spread"
		n        = 300
		poison   = n
		maxTries = 3
	)
	bin := buildReaderProc(t)
	c := mustStartCluster(t, 3, withMode(t, m), withFastRaft())
	readerPutNumbered(t, c.nodes[0], queue, n, n/2)
	var procs []*readerProc
	for i, nd := range c.nodes {
		procs = append(procs, startReaderProc(t, c.user, bin, fmt.Sprintf("r%d", i+1),
			"--addrs="+nd.QueueURL, "--queue="+queue, "--concurrency=4", "--balance=spread",
			"--lease=8s", fmt.Sprintf("--max-tries=%d", maxTries), "--requeue-delay=300ms"))
	}
	eventually(t, 120*time.Second, "every message processed and the queue empty", func() error {
		if missing := fleetUnfinished(readReaderLogs(t, procs...), n, poison); len(missing) > 0 {
			return fmt.Errorf("%d messages not finished, e.g. %v", len(missing), missing[:min(5, len(missing))])
		}
		st, err := readerQueueStats(c.nodes, queue)
		if err != nil {
			return err
		}
		if st.Depth != 0 || st.InFlight != 0 || st.Deferred != 0 {
			return fmt.Errorf("queue: depth %d in_flight %d deferred %d", st.Depth, st.InFlight, st.Deferred)
		}
		return nil
	})
	for _, p := range procs {
		t.Logf("reader %s stopped, stats %s", p.name, p.terminate(60*time.Second))
	}
	st, err := readerQueueStats(c.nodes, queue)
	if err != nil {
		t.Fatal(err)
	}
	if st.Depth != 0 || st.InFlight != 0 || st.Deferred != 0 || st.Dead != 0 {
		t.Fatalf("queue at the end: %+v, want empty with nothing dead", st)
	}
	checkFleetLog(t, readReaderLogs(t, procs...), n, poison, maxTries)
}

// BenchmarkReader_FleetThroughput measures messages per second (msgs/s)
// through a fleet of three reader processes (a trivial task, 16 workers
// each; READER_BENCH_CONCURRENCY changes that), each given one node of a
// 3-node cluster, with every request sent to the leader (balance=leader)
// and spread over all nodes (balance=spread). Each run fills a fresh queue
// with b.N messages first; the clock runs from the first message handed
// out to the queue being empty (nothing ready, leased or deferred). The
// figures in the reader package documentation come from
//
//	go test ./internal/systemtest -run '^$' -bench FleetThroughput -benchtime 20000x -count 4
func BenchmarkReader_FleetThroughput(b *testing.B) {
	if testing.Short() {
		b.Skip("starts a cluster and a reader fleet")
	}
	conc := "16"
	if v := os.Getenv("READER_BENCH_CONCURRENCY"); v != "" {
		conc = v
	}
	bin := buildReaderProc(b)
	c := mustStartCluster(b, 3, withFastRaft())
	runs := 0
	for _, balance := range []string{"leader", "spread"} {
		b.Run("balance="+balance, func(b *testing.B) {
			b.StopTimer()
			runs++
			queue := fmt.Sprintf("bench%d", runs)
			readerPutNumbered(b, c.nodes[0], queue, b.N, -1)
			b.StartTimer()
			started := time.Now()
			var procs []*readerProc
			for i, nd := range c.nodes {
				procs = append(procs, startReaderProc(b, c.user, bin, fmt.Sprintf("%s-r%d", balance, i+1),
					"--addrs="+nd.QueueURL, "--queue="+queue, "--bench", "--concurrency="+conc, "--balance="+balance, "--progress=-1s"))
			}
			first, last := fleetDrained(b, c.nodes, queue)
			b.StopTimer()
			if !last.After(first) { // too few messages to see the first get
				first = started
			}
			d := last.Sub(first)
			b.ReportMetric(float64(b.N)/d.Seconds(), "msgs/s")
			b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "ns/op")
			for _, p := range procs {
				p.terminate(60 * time.Second)
			}
		})
	}
}

// fleetDrained samples a queue's stats every 10 ms until it is empty, and
// returns when the first message was seen handed out and when the queue
// was seen empty.
func fleetDrained(tb testing.TB, nodes []*node, queue string) (first, last time.Time) {
	tb.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		st, err := readerQueueStats(nodes, queue)
		now := time.Now()
		if err == nil {
			if first.IsZero() && st.Gets > 0 {
				first = now
			}
			if st.Depth+st.InFlight+st.Deferred == 0 {
				return first, now
			}
		}
		if now.After(deadline) {
			tb.Fatalf("the queue did not drain: %+v %v", st, err)
		}
		<-tick.C
	}
}
