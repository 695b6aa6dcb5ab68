package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLeases_SurviveLeaderFailover: messages leased from one leader stay
// leased on its successor until the recorded deadline and no earlier; an ack
// sent to the new leader within the lease works; the unacked message comes
// back with its attempt count.
func TestLeases_SurviveLeaderFailover(t *testing.T) { inModes(t, testLeases_SurviveLeaderFailover) }

func testLeases_SurviveLeaderFailover(t *testing.T, m mode) {
	c := mustStartCluster(t, 3, withMode(t, m), withFastRaft())
	old := c.waitForLeader()
	f := c.followers()[0]
	f.mustPut(f.QueueURL+"/mput?queue=jobs", "A\nB")

	const lease = 6 * time.Second
	t0 := time.Now() // the leader stamps the lease at or after this instant
	body := f.mustGet(f.QueueURL + "/mget?queue=jobs&items=2&format=json&lease=" + lease.String())
	var got struct {
		Messages []struct {
			ID       string `json:"id"`
			Attempts int    `json:"attempts"`
			Data     string `json:"data"`
		} `json:"messages"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || len(got.Messages) != 2 {
		t.Fatalf("leased mget: %q (%v)", body, err)
	}
	idA, idB := got.Messages[0].ID, got.Messages[1].ID

	old.kill9()
	nl := c.waitForNewLeader(old)
	t.Logf("new leader %s, %v after the lease was taken", nl.ID, time.Since(t0).Round(time.Millisecond))

	// An ack within the lease, sent to the new leader.
	if res := nl.mustGetStatus(nl.QueueURL + "/ack?id=" + idB); res.code != http.StatusOK {
		t.Fatalf("ack of %s on the new leader: %d %q", idB, res.code, res.body)
	}
	// A stays leased until t0+lease and then comes back, attempt 2.
	var res response
	eventually(t, time.Until(t0.Add(lease+10*time.Second)), "A back after its lease", func() error {
		res = nl.mustGetStatus(nl.QueueURL + "/get?queue=jobs&lease=1m")
		if res.code != http.StatusOK {
			t.Fatalf("get: %d %q", res.code, res.body)
		}
		if res.body == "" {
			return fmt.Errorf("nothing ready %v after the lease was taken", time.Since(t0).Round(time.Millisecond))
		}
		return nil
	})
	back := time.Since(t0)
	if back < lease {
		t.Fatalf("message came back %v after the lease was taken, before its %v lease ended", back, lease)
	}
	if res.body != "A" || res.header.Get("X-Message-Id") != idA || res.header.Get("X-Attempts") != "2" {
		t.Fatalf("redelivered %q id %s attempts %s, want A id %s attempts 2", res.body, res.header.Get("X-Message-Id"), res.header.Get("X-Attempts"), idA)
	}
	t.Logf("A redelivered %v after the lease was taken (lease %v)", back.Round(time.Millisecond), lease)
	if back > lease+5*time.Second {
		t.Fatalf("redelivery took %v, far past the %v lease", back, lease)
	}
	// B was acked before the failover's dust settled: it is gone for good.
	if res := nl.mustGetStatus(nl.QueueURL + "/ack?id=" + idB); res.code != http.StatusConflict {
		t.Fatalf("second ack of %s: %d %q, want 409", idB, res.code, res.body)
	}

	// The old leader comes back and agrees.
	old.restart()
	waitSameData(t, old, nl, "jobs")
}

// TestLongPoll_WakesOnPutAnyNode_IdlePollWritesNothing: a long-poll parked
// through one follower (it waits on the leader before anything is put)
// returns right after a put made through the other follower, and
// long-polls that find nothing write nothing to the log.
func TestLongPoll_WakesOnPutAnyNode_IdlePollWritesNothing(t *testing.T) {
	inModes(t, testLongPoll_WakesOnPutAnyNode_IdlePollWritesNothing)
}

func testLongPoll_WakesOnPutAnyNode_IdlePollWritesNothing(t *testing.T, m mode) {
	c := mustStartCluster(t, 3, withMode(t, m), withProfiler())
	l := c.waitForLeader()
	fs := c.followers()
	for _, nd := range c.nodes {
		if n, err := parkedPolls(nd); err != nil || n != 0 {
			t.Fatalf("%s: %d requests look parked before any poll was sent (%v)", nd.ID, n, err)
		}
	}

	type result struct {
		res  response
		err  error
		done time.Time
	}
	done := make(chan result, 1)
	go func() {
		res, err := fs[0].do(context.Background(), http.MethodGet, fs[0].QueueURL+"/get?queue=lp&wait=20s", nil)
		done <- result{res, err, time.Now()}
	}()
	// The put goes out only once the poll waits on the leader: a poll
	// that found the message on arrival would prove nothing.
	waitParked(t, l, 1)
	select {
	case r := <-done:
		t.Fatalf("the long-poll returned before anything was put: %v %d %q", r.err, r.res.code, r.res.body)
	default:
	}
	fs[1].mustPut(fs[1].QueueURL+"/put?queue=lp", "wake")
	acked := time.Now()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the long-poll did not return within 30s of the put")
	}
	if r.err != nil || r.res.code != http.StatusOK || r.res.body != "wake" {
		t.Fatalf("long-poll: %v %d %q", r.err, r.res.code, r.res.body)
	}
	lag := r.done.Sub(acked)
	t.Logf("long-poll via %s, parked on %s, returned %v after the put via %s was acknowledged", fs[0].ID, l.ID, lag.Round(time.Microsecond), fs[1].ID)
	if lag > time.Second {
		t.Fatalf("long-poll returned %v after the put", lag)
	}
	waitParked(t, l, 0)
	// The pop is confirmed in the background once its answer is written
	// (a log entry of its own): let it land before counting entries.
	eventually(t, 10*time.Second, fs[0].ID+" to confirm the handover of the pop it relayed", func() error {
		if got := fs[0].metric(`quorumq_handover_messages_total{result="confirmed"}`); got != 1 {
			return fmt.Errorf("confirmed %v", got)
		}
		return nil
	})

	before := commitIndex(t, l)
	start := time.Now()
	for _, nd := range []*node{l, fs[0], fs[1]} {
		res := nd.mustGetStatus(nd.QueueURL + "/get?queue=idle&wait=700ms")
		if res.code != http.StatusOK || res.body != "" {
			t.Fatalf("idle long-poll via %s: %d %q", nd.ID, res.code, res.body)
		}
		res = nd.mustGetStatus(nd.QueueURL + "/mget?queue=idle&items=10&lease=30s&wait=300ms")
		if res.code != http.StatusOK || res.body != "" {
			t.Fatalf("idle leased long-poll via %s: %d %q", nd.ID, res.code, res.body)
		}
	}
	if after := commitIndex(t, l); after != before {
		t.Fatalf("idle long-polls moved the commit index from %d to %d", before, after)
	}
	t.Logf("6 idle long-polls over %v: commit index stayed at %d", time.Since(start).Round(time.Millisecond), before)
}

func commitIndex(t *testing.T, nd *node) uint64 {
	t.Helper()
	st, err := nd.status()
	if err != nil {
		t.Fatal(err)
	}
	return st.CommitIndex
}

// TestDeadLetter_AfterMaxAttempts_ReasonVisible: on a cluster, a message
// nacked max_attempts times lands in the dead-letter queue with its attempt
// count and the last reason.
func TestDeadLetter_AfterMaxAttempts_ReasonVisible(t *testing.T) {
	inModes(t, testDeadLetter_AfterMaxAttempts_ReasonVisible)
}

func testDeadLetter_AfterMaxAttempts_ReasonVisible(t *testing.T, m mode) {
	c := mustStartCluster(t, 3, withMode(t, m))
	c.waitForLeader()
	f := c.followers()[0]
	f.mustGetStatus(f.QueueURL + "/config?queue=work&max_attempts=3&dead_letter=work.dead")
	f.mustPut(f.QueueURL+"/put?queue=work", "poison")
	for attempt := 1; attempt <= 3; attempt++ {
		res := f.mustGetStatus(f.QueueURL + "/get?queue=work&lease=30s")
		if res.body != "poison" || res.header.Get("X-Attempts") != strconv.Itoa(attempt) {
			t.Fatalf("attempt %d: %d %q attempts %q", attempt, res.code, res.body, res.header.Get("X-Attempts"))
		}
		id := res.header.Get("X-Message-Id")
		if res := f.mustGetStatus(f.QueueURL + "/nack?id=" + id + "&reason=parse+error+" + strconv.Itoa(attempt)); res.code != http.StatusOK {
			t.Fatalf("nack: %d %q", res.code, res.body)
		}
	}
	if res := f.mustGetStatus(f.QueueURL + "/get?queue=work"); res.body != "" {
		t.Fatalf("work still holds %q", res.body)
	}
	stats := f.mustGet(f.QueueURL + "/stats?queue=work&format=json&extended=1")
	if !strings.Contains(stats, `"dead": 1`) {
		t.Fatalf("stats of work: %s", stats)
	}
	res := f.mustGetStatus(f.QueueURL + "/get?queue=work.dead&lease=30s")
	if res.body != "poison" || res.header.Get("X-Attempts") != "4" || res.header.Get("X-Last-Error") != "parse error 3" {
		t.Fatalf("dead letter: %q attempts %q last error %q", res.body, res.header.Get("X-Attempts"), res.header.Get("X-Last-Error"))
	}
}
