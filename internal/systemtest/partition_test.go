package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCluster_MinorityPartition_CannotAck_HealsWithoutLoss: with each node
// in its own network namespace, the leader is cut off from the two others.
// Writes sent to it are not acknowledged (a non-200 answer within the
// forward timeout and the lease), the two others elect a leader and keep
// acknowledging writes, and once the partition heals every acknowledged
// write is stored exactly once and the old leader catches up. Needs root
// (it skips otherwise).
func TestCluster_MinorityPartition_CannotAck_HealsWithoutLoss(t *testing.T) {
	inModes(t, testCluster_MinorityPartition_CannotAck_HealsWithoutLoss)
}

func testCluster_MinorityPartition_CannotAck_HealsWithoutLoss(t *testing.T, m mode) {
	nn := mustNetns(t)
	const forwardTimeout = 2 * time.Second
	c := mustStartCluster(t, 3, withMode(t, m), inNetns(nn), withFastRaft(), withServeArgs("--forward-timeout="+forwardTimeout.String()))
	old := c.waitForLeader()
	majority := without(c.nodes, old)
	w := startWrites(t, 6, c.nodes...)
	w.waitAcked(100, 60*time.Second)

	nn.isolate(old, majority...)
	cutAt := time.Now()

	// The isolated old leader acknowledges nothing: at first it cannot
	// commit, then it steps down and has no leader to forward to. Its
	// answers are collected while the majority elects a leader.
	type result struct {
		answers []string
		err     error
	}
	minority := make(chan result, 1)
	go func() {
		answers, err := putsNotAcknowledged(old, 5, forwardTimeout+5*time.Second, w)
		minority <- result{answers, err}
	}()
	nl := c.waitForLeaderOf(majority, old)
	t.Logf("partition to a leader of the majority: %v", time.Since(cutAt).Round(time.Millisecond))
	r := <-minority
	for _, a := range r.answers {
		t.Log(a)
	}
	if r.err != nil {
		t.Fatal(r.err)
	}

	before := w.acked()
	w.waitAcked(before+100, 60*time.Second)
	healAt := time.Now()
	if bad := w.acksVia(old, cutAt, healAt); len(bad) > 0 {
		t.Fatalf("%d writes sent to the isolated %s were acknowledged, e.g. %q at %s", len(bad), old.ID, bad[0].msg, bad[0].ackedAt.Format("15:04:05.000"))
	}
	t.Logf("%d writes acknowledged during the partition; leader %s", w.acked()-before, nl.ID)

	nn.heal()
	c.waitForLeader() // all three agree again
	w.waitAcked(w.acked()+50, 60*time.Second)
	w.halt()

	l := c.waitForLeader()
	w.verify(l.mustGet(l.QueueURL + "/dump"))
	for _, nd := range without(c.nodes, l) { // the old leader among them
		waitSameData(t, nd, l, "default")
	}
}

// putsNotAcknowledged sends n puts, one after the other, to the isolated
// node and returns an error unless each gets a non-200 answer within
// answerWithin; answers describes each. It runs on its own goroutine, so it
// does not touch the test.
func putsNotAcknowledged(nd *node, n int, answerWithin time.Duration, w *writeLoad) (answers []string, err error) {
	for i := range n {
		msg := fmt.Sprintf("minority-%d", i)
		w.mayStore(msg)
		ctx, cancel := context.WithTimeout(context.Background(), answerWithin)
		sent := time.Now()
		res, err := nd.do(ctx, http.MethodPost, nd.QueueURL+"/put?id="+msg, []byte(msg))
		cancel()
		took := time.Since(sent).Round(time.Millisecond)
		switch {
		case err != nil:
			return answers, fmt.Errorf("put %s to the isolated %s: no answer within %v: %v", msg, nd.ID, answerWithin, err)
		case res.code == http.StatusOK:
			return answers, fmt.Errorf("put %s to the isolated %s was acknowledged (after %v)", msg, nd.ID, took)
		}
		answers = append(answers, fmt.Sprintf("put %s to the isolated %s: %d %q after %v", msg, nd.ID, res.code, strings.TrimSpace(res.body), took))
	}
	return answers, nil
}
