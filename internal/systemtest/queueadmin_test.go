package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/certs"
)

// TestQueueAdmin_DeadLetterRedrivePurge: on a cluster of three processes,
// messages nacked past max_attempts land in the dead-letter queue; every
// node's /queues (its own state, stale=1) shows the same counters; a paged
// /dump on a follower shows each dead message's origin and error; a
// redrive in two steps moves them back with their attempts reset, and a
// purge empties the queue, on every node. Secured, a monitor token may
// list the queues but neither purge nor redrive.
func TestQueueAdmin_DeadLetterRedrivePurge(t *testing.T) {
	inModes(t, testQueueAdmin_DeadLetterRedrivePurge)
}

func testQueueAdmin_DeadLetterRedrivePurge(t *testing.T, m mode) {
	opt := withMode(t, m)
	var monitorToken string
	if m.secure {
		sec := mustSecurity(t)
		var err error
		if monitorToken, err = certs.NewToken(); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(sec.TokensFile, os.O_APPEND|os.O_WRONLY, 0)
		if err == nil {
			_, err = f.WriteString(certs.TokenLine("prom", []string{"monitor"}, monitorToken))
			f.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		opt = withSecurity(sec)
	}
	c := mustStartCluster(t, 3, opt)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	follower := c.followers()[0]
	q, err := client.NewQueue([]string{follower.QueueURL}, c.clientOptions())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Config(ctx, "jobs", client.ConfigChange{MaxAttempts: client.Ptr(uint32(2)), DeadLetter: client.Ptr("jobs.dead")}); err != nil {
		t.Fatal(err)
	}
	const n = 5
	for i := range n {
		nd := c.nodes[i%len(c.nodes)]
		nd.mustPut(nd.QueueURL+"/put?queue=jobs", fmt.Sprintf("job %d", i))
	}
	for round := range 2 {
		msgs, err := q.MGet(ctx, "jobs", n, client.GetOptions{Lease: time.Minute})
		if err != nil || len(msgs) != n {
			t.Fatalf("round %d: mget: %d messages, %v", round, len(msgs), err)
		}
		for _, msg := range msgs {
			if err := q.Nack(ctx, msg.ID, client.NackOptions{Reason: "boom"}); err != nil {
				t.Fatal(err)
			}
		}
	}

	type counts = adminCounts
	want := map[string]counts{"jobs": {dead: n, nacks: 2 * n, redelivered: n, puts: n}, "jobs.dead": {depth: n, puts: n}}
	c.sameQueuesEverywhere(want)

	all, err := q.DumpPage(ctx, "jobs.dead", client.DumpOptions{})
	if err != nil || all.Total != n || len(all.Messages) != n {
		t.Fatalf("dump of jobs.dead: %+v %v", all, err)
	}
	for _, msg := range all.Messages {
		if msg.DeadFrom != "jobs" || msg.Error != "boom" || msg.Attempts != 2 {
			t.Fatalf("dead message %+v: want its origin, its error and 2 attempts", msg)
		}
	}
	page, err := q.DumpPage(ctx, "jobs.dead", client.DumpOptions{Limit: 2, Offset: 1})
	if err != nil || page.Total != n || fmt.Sprint(page.Messages) != fmt.Sprint(all.Messages[1:3]) {
		t.Fatalf("dump page at offset 1: %+v %v, want %+v", page, err, all.Messages[1:3])
	}
	after := all.Messages[2].ID
	rest, err := q.DumpPage(ctx, "jobs.dead", client.DumpOptions{After: after})
	if err != nil {
		t.Fatal(err)
	}
	var newer []client.DumpMessage
	for _, msg := range all.Messages {
		if mustUint(t, msg.ID) > mustUint(t, after) {
			newer = append(newer, msg)
		}
	}
	if fmt.Sprint(rest.Messages) != fmt.Sprint(newer) {
		t.Fatalf("dump after %s: %+v, want %+v", after, rest.Messages, newer)
	}

	if m.secure {
		c.monitorCannotChange(monitorToken)
	}

	if moved, left, err := q.Redrive(ctx, "jobs.dead", client.RedriveOptions{Max: 2}); err != nil || moved != 2 || left != n-2 {
		t.Fatalf("redrive of 2: moved %d, left %d, %v", moved, left, err)
	}
	if moved, left, err := q.Redrive(ctx, "jobs.dead", client.RedriveOptions{}); err != nil || moved != n-2 || left != 0 {
		t.Fatalf("redrive of the rest: moved %d, left %d, %v", moved, left, err)
	}
	back, err := q.DumpPage(ctx, "jobs", client.DumpOptions{})
	if err != nil || len(back.Messages) != n {
		t.Fatalf("jobs after the redrive: %+v %v", back, err)
	}
	for i, msg := range back.Messages {
		if msg.ID != all.Messages[i].ID || msg.Attempts != 0 || msg.DeadFrom != "" || msg.Error != "" {
			t.Fatalf("redriven message %d: %+v, want %s (the dead-letter queue's order), a fresh start", i, msg, all.Messages[i].ID)
		}
	}
	want["jobs"] = counts{depth: n, dead: n, nacks: 2 * n, redelivered: n, puts: 2 * n}
	want["jobs.dead"] = counts{puts: n}
	c.sameQueuesEverywhere(want)

	if purged, err := q.Purge(ctx, "jobs"); err != nil || purged != n {
		t.Fatalf("purge: %d %v", purged, err)
	}
	want["jobs"] = counts{dead: n, nacks: 2 * n, redelivered: n, puts: 2 * n}
	c.sameQueuesEverywhere(want)
}

func mustUint(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// adminCounts are the /queues counters sameQueuesEverywhere checks.
type adminCounts struct{ depth, dead, nacks, redelivered, puts int64 }

// sameQueuesEverywhere waits until every node's own state (/queues with
// stale=1) lists exactly the queues of want with those counters, and the
// same answer apart from the clock (time_ms, oldest_age_ms).
func (c *cluster) sameQueuesEverywhere(want map[string]adminCounts) {
	c.t.Helper()
	type info struct {
		Name        string `json:"name"`
		Depth       int64  `json:"depth"`
		Dead        int64  `json:"dead"`
		Nacks       int64  `json:"nacks"`
		Redelivered int64  `json:"redelivered"`
		Puts        int64  `json:"puts"`
	}
	read := func(nd *node) ([]map[string]any, error) {
		body, err := nd.getOK(nd.QueueURL + "/queues?stale=1")
		if err != nil {
			return nil, err
		}
		var ans struct {
			Queues []map[string]any `json:"queues"`
		}
		if err := json.Unmarshal([]byte(body), &ans); err != nil {
			return nil, fmt.Errorf("%s: %s: %v", nd.ID, abbrev(body), err)
		}
		var typed struct{ Queues []info }
		if err := json.Unmarshal([]byte(body), &typed); err != nil {
			return nil, err
		}
		if len(typed.Queues) != len(want) {
			return nil, fmt.Errorf("%s lists %d queues, want %d", nd.ID, len(typed.Queues), len(want))
		}
		for _, qi := range typed.Queues {
			w, ok := want[qi.Name]
			if !ok || qi.Depth != w.depth || qi.Dead != w.dead || qi.Nacks != w.nacks || qi.Redelivered != w.redelivered || qi.Puts != w.puts {
				return nil, fmt.Errorf("%s: queue %+v, want %+v", nd.ID, qi, w)
			}
		}
		for _, q := range ans.Queues {
			delete(q, "oldest_age_ms") // against each node's own clock
		}
		return ans.Queues, nil
	}
	eventually(c.t, readyTimeout, "every node to list the same queues", func() error {
		ref, err := read(c.nodes[0])
		if err != nil {
			return err
		}
		for _, nd := range c.nodes[1:] {
			got, err := read(nd)
			if err != nil {
				return err
			}
			if fmt.Sprint(got) != fmt.Sprint(ref) {
				return fmt.Errorf("%s lists %v, %s %v", nd.ID, got, c.nodes[0].ID, ref)
			}
		}
		return nil
	})
}

// monitorCannotChange: on every node a monitor token lists the queues but
// is refused a purge and a redrive, which change nothing.
func (c *cluster) monitorCannotChange(token string) {
	c.t.Helper()
	for _, nd := range c.nodes {
		for _, r := range []struct {
			method, path string
			code         int
		}{
			{http.MethodGet, "/queues", http.StatusOK},
			{http.MethodPost, "/purge?queue=jobs.dead", http.StatusForbidden},
			{http.MethodPost, "/redrive?queue=jobs.dead", http.StatusForbidden},
		} {
			req, err := http.NewRequest(r.method, nd.QueueURL+r.path, nil)
			if err != nil {
				c.t.Fatal(err)
			}
			client.SetToken(req, token)
			res, err := c.client.Do(req)
			if err != nil {
				c.t.Fatalf("%s %s on %s: %v", r.method, r.path, nd.ID, err)
			}
			res.Body.Close()
			if res.StatusCode != r.code {
				c.t.Fatalf("%s %s on %s with a monitor token: %d, want %d", r.method, r.path, nd.ID, res.StatusCode, r.code)
			}
		}
	}
}
