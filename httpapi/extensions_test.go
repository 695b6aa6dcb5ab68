package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/testwait"
)

// Test_Get_LeaseHeadersAndRedelivery checks that a leased /get answers the
// body with X-Message-Id and X-Attempts, hides the message while leased, and
// hands it out again with attempts 2 once the lease ran out.
func Test_Get_LeaseHeadersAndRedelivery(t *testing.T) {
	e := newEnv(t)
	e.mustPut("/put?data=job")
	r := e.mustGet("/get?lease=30s", "job")
	id := r.header.Get(api.HeaderMessageID)
	if id == "" || r.header.Get(api.HeaderAttempts) != "1" {
		t.Fatalf("headers %v", r.header)
	}
	e.mustGet("/get?lease=30s", "")
	if st := e.stats(api.DefaultQueue); st.InFlight != 1 || st.Depth != 0 || st.Bytes != 3 {
		t.Fatalf("stats while leased %+v", st)
	}
	e.clock.Advance(31 * time.Second)
	r = e.mustGet("/get", "job")
	if r.header.Get(api.HeaderMessageID) != id || r.header.Get(api.HeaderAttempts) != "2" {
		t.Fatalf("redelivery headers %v, want id %s attempts 2", r.header, id)
	}
	if st := e.stats(api.DefaultQueue); st.InFlight != 0 || st.Bytes != 0 || st.Gets != 2 {
		t.Fatalf("stats after pop %+v", st)
	}
}

// Test_Get_PopSendsHeaders checks X-Message-Id and X-Attempts on a
// destructive pop, and lease=0 pops even with a queue default lease.
func Test_Get_PopSendsHeaders(t *testing.T) {
	e := newEnv(t)
	e.mustGet("/config?queue=q&lease=1m", `{"queue":"q","lease":"1m","max_attempts":0,"dead_letter":"","max_depth":0,"max_bytes":0,"overflow":"reject"}`+"\n")
	e.mustPut("/mput?queue=q&data=a%0Ab")
	r := e.mustGet("/get?queue=q&lease=0", "a")
	if r.header.Get(api.HeaderMessageID) != "1" || r.header.Get(api.HeaderAttempts) != "1" {
		t.Fatalf("pop headers %v", r.header)
	}
	e.mustGet("/get?queue=q", "b") // the default lease applies
	if st := e.stats("q"); st.InFlight != 1 || st.Depth != 0 {
		t.Fatalf("stats %+v, want b in flight", st)
	}
}

// Test_Ack_HappyPathAndConflict checks ack of a leased message, then 409
// naming the id for a second ack and for an unknown id.
func Test_Ack_HappyPathAndConflict(t *testing.T) {
	e := newEnv(t)
	e.mustPut("/mput?data=a%0Ab")
	r := e.mustGet("/mget?items=2&lease=1m", "a\nb")
	if ids := r.header.Get(api.HeaderMessageIDs); ids != "1,2" {
		t.Fatalf("X-Message-Ids %q", ids)
	}
	e.mustGet("/ack?id=1,2", "")
	if st := e.stats(api.DefaultQueue); st.InFlight != 0 || st.Bytes != 0 {
		t.Fatalf("stats %+v", st)
	}
	r = e.get("/ack?id=2")
	e.want(r, 409, "message 2 is not in flight (unknown, already acked, or its lease expired)\n")
	if r.header.Get(api.HeaderErrorCode) != "NOT_IN_FLIGHT" {
		t.Fatalf("X-Error-Code %q", r.header.Get(api.HeaderErrorCode))
	}
	e.want(e.get("/ack?id=99"), 409, "message 99 is not in flight (unknown, already acked, or its lease expired)\n")
}

// Test_Ack_ExpiredLeaseIs409 checks that an ack after the lease ran out
// fails and the message is ready again.
func Test_Ack_ExpiredLeaseIs409(t *testing.T) {
	e := newEnv(t)
	e.mustPut("/put?data=slow")
	e.mustGet("/get?lease=10s", "slow")
	e.clock.Advance(11 * time.Second)
	e.want(e.get("/ack?id=1"), 409, "message 1 is not in flight (unknown, already acked, or its lease expired)\n")
	e.mustGet("/dump", "slow\n")
}

// Test_Ack_QueueMustMatch checks that queue= restricts the ids.
func Test_Ack_QueueMustMatch(t *testing.T) {
	e := newEnv(t)
	e.mustPut("/put?queue=a&data=x")
	e.mustGet("/get?queue=a&lease=1m", "x")
	e.want(e.get("/ack?id=1&queue=b"), 409, "message 1 is not in flight (unknown, already acked, or its lease expired)\n")
	e.mustGet("/ack?id=1&queue=a", "")
}

// Test_Nack_DelayAndBodyReplacesData checks that a nack's POST body
// replaces the data, delay= holds it back until due, and attempts grow.
func Test_Nack_DelayAndBodyReplacesData(t *testing.T) {
	e := newEnv(t)
	e.mustPut("/put?data=v1")
	e.mustGet("/get?lease=1m", "v1")
	e.want(e.post("/nack?id=1&delay=5s&reason=boom", "v2-longer"), 200, "")
	e.mustGet("/get", "")
	if st := e.stats(api.DefaultQueue); st.Deferred != 1 || st.Bytes != 9 {
		t.Fatalf("stats %+v, want one deferred message of 9 bytes", st)
	}
	e.clock.Advance(5 * time.Second)
	r := e.mustGet("/get?lease=1m", "v2-longer")
	if r.header.Get(api.HeaderAttempts) != "2" {
		t.Fatalf("attempts %q, want 2", r.header.Get(api.HeaderAttempts))
	}
	e.mustGet("/nack?id=1", "")
	e.mustGet("/dump", "v2-longer\n")
	e.mustGet("/get?lease=1m", "v2-longer")
	e.want(e.post("/nack?id=1,2", "body"), 400, "a nack with a body replaces one message: give exactly one id\n")
}

// Test_Nack_MaxAttemptsDeadLetters checks the config path end to end: a
// message nacked max_attempts times moves to the dead-letter queue.
func Test_Nack_MaxAttemptsDeadLetters(t *testing.T) {
	e := newEnv(t)
	e.mustGet("/config?queue=jobs&max_attempts=2&dead_letter=jobs.dead", `{"queue":"jobs","lease":"0s","max_attempts":2,"dead_letter":"jobs.dead","max_depth":0,"max_bytes":0,"overflow":"reject"}`+"\n")
	e.mustPut("/put?queue=jobs&data=poison")
	for i := 0; i < 2; i++ {
		e.mustGet("/get?queue=jobs&lease=1m", "poison")
		e.mustGet("/nack?queue=jobs&id=1&reason=bad", "")
	}
	e.mustGet("/get?queue=jobs", "")
	r := e.mustGet("/get?queue=jobs.dead&lease=1m", "poison")
	if got := r.header.Get(api.HeaderLastError); got != "bad" {
		t.Fatalf("X-Last-Error %q, want the nack reason", got)
	}
	if got := r.header.Get(api.HeaderAttempts); got != "3" {
		t.Fatalf("X-Attempts %q, want the two failed attempts plus this one", got)
	}
	e.mustGet("/nack?id=1&reason=still%0Abad", "")
	e.mustGet("/mget?queue=jobs.dead&format=json", `{"messages":[{"id":"1","attempts":4,"data":"poison","last_error":"still\nbad"}]}`+"\n")
	if st := e.stats("jobs"); st.Dead != 1 || st.Bytes != 0 || st.InFlight != 0 {
		t.Fatalf("stats %+v, want one dead message and nothing held", st)
	}
}

// Test_Config_PartialChangesKeepOthers: each /config change touches only
// the settings it names.
func Test_Config_PartialChangesKeepOthers(t *testing.T) {
	e := newEnv(t)
	e.mustGet("/config?queue=jobs&lease=30s&max_attempts=5", `{"queue":"jobs","lease":"30s","max_attempts":5,"dead_letter":"","max_depth":0,"max_bytes":0,"overflow":"reject"}`+"\n")
	e.mustGet("/config?queue=jobs&dead_letter=jobs.dead&max_depth=10", `{"queue":"jobs","lease":"30s","max_attempts":5,"dead_letter":"jobs.dead","max_depth":10,"max_bytes":0,"overflow":"reject"}`+"\n")
	e.mustGet("/config?queue=jobs&lease=0s&overflow=evict-oldest", `{"queue":"jobs","lease":"0s","max_attempts":5,"dead_letter":"jobs.dead","max_depth":10,"max_bytes":0,"overflow":"evict-oldest"}`+"\n")
}

// Test_Touch_ExtendsLease checks that touch pushes the lease deadline out.
func Test_Touch_ExtendsLease(t *testing.T) {
	e := newEnv(t)
	e.mustPut("/put?data=long")
	e.mustGet("/get?lease=10s", "long")
	e.clock.Advance(8 * time.Second)
	e.mustGet("/touch?id=1&lease=10s", "")
	e.clock.Advance(8 * time.Second)
	e.mustGet("/get", "") // 16s after the get, 8s after the touch: still leased
	e.mustGet("/ack?id=1", "")
	e.want(e.get("/touch?id=1&lease=10s"), 409, "message 1 is not in flight (unknown, already acked, or its lease expired)\n")
	e.mustPut("/put?data=again")
	e.mustGet("/get?lease=10s", "again")
	e.want(e.get("/touch?id=2"), 400, "missing lease: give lease=DUR (the message's queue has no default lease)\n")
	e.want(e.get("/touch?id=2&lease=0s"), 400, "invalid lease=\"0s\": a touch needs a lease > 0\n")
}

// Test_Mget_JSONFormat checks format=json: decimal string ids, attempts,
// UTF-8 data as a string and other bytes as base64.
func Test_Mget_JSONFormat(t *testing.T) {
	e := newEnv(t)
	e.mustGet("/mget?format=json", `{"messages":[]}`+"\n")
	e.mustPut("/put?data=h%C3%A9llo+%3C%26%3E")
	e.want(e.post("/put", "\xff\xfe\x00bin"), 200, "")
	r := e.get("/mget?items=5&format=json&lease=1m")
	want := `{"messages":[{"id":"1","attempts":1,"data":"héllo <&>"},{"id":"2","attempts":1,"data":"` +
		base64.StdEncoding.EncodeToString([]byte("\xff\xfe\x00bin")) + `","encoding":"base64"}]}` + "\n"
	e.want(r, 200, want)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var decoded struct {
		Messages []map[string]any `json:"messages"`
	}
	if err := json.Unmarshal([]byte(r.body), &decoded); err != nil || len(decoded.Messages) != 2 {
		t.Fatalf("not JSON: %v", err)
	}
}

// Test_Get_LongPollWakesOnPut checks that a waiting /get returns the
// message put by another client, well before its wait ends.
func Test_Get_LongPollWakesOnPut(t *testing.T) {
	e := newEnv(t)
	type result struct {
		r       resp
		elapsed time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		r, err := http.Get(e.srv.URL + "/get?wait=30s&queue=lp")
		if err != nil {
			done <- result{resp{code: -1, body: err.Error()}, 0}
			return
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		done <- result{resp{code: r.StatusCode, body: string(b)}, time.Since(start)}
	}()
	testwait.For(t, 10*time.Second, "the long-poll to start waiting", func() bool { return e.q.changed.Load() > 0 })
	e.mustPut("/put?queue=lp&data=wake")
	select {
	case res := <-done:
		if res.r.code != 200 || res.r.body != "wake" || res.elapsed > 20*time.Second {
			t.Fatalf("long-poll got %d %q after %s", res.r.code, res.r.body, res.elapsed)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("long-poll did not return after the put")
	}
}

// Test_Get_LongPollLoserWaitsAgain checks that two waiting readers share
// one message: one gets it, the other keeps waiting and ends empty.
func Test_Get_LongPollLoserWaitsAgain(t *testing.T) {
	e := newEnv(t)
	bodies := make(chan string, 2)
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := http.Get(e.srv.URL + "/mget?wait=2s&queue=lp")
			if err != nil {
				bodies <- "error: " + err.Error()
				return
			}
			defer r.Body.Close()
			b, _ := io.ReadAll(r.Body)
			bodies <- string(b)
		}()
	}
	testwait.For(t, 10*time.Second, "both long-polls to wait", func() bool { return e.q.changed.Load() >= 2 })
	e.mustPut("/put?queue=lp&data=only")
	wg.Wait()
	close(bodies)
	var got []string
	for b := range bodies {
		got = append(got, b)
	}
	if !(got[0] == "only" && got[1] == "" || got[0] == "" && got[1] == "only") {
		t.Fatalf("bodies %q, want one \"only\" and one empty", got)
	}
}

// Test_Get_IdleLongPollProposesNothing checks that an idle long-poll with
// a short wait answers empty without writing the log, and so does an
// empty poll.
func Test_Get_IdleLongPollProposesNothing(t *testing.T) {
	e := newEnv(t)
	e.mustGet("/get", "")
	e.mustGet("/mget?items=3", "")
	e.mustGet("/get?wait=20ms", "")
	e.mustGet("/mget?items=3&wait=20ms&lease=1m", "")
	if n := e.q.proposals.Load(); n != 0 {
		t.Fatalf("%d proposals for empty polls, want 0", n)
	}
}

// Test_Get_EmptyAnswerOnlyAfterConsistentRead: a leader whose local state
// lags its log (elected a moment ago, its predecessor's entries not yet
// applied) must not answer an empty /get or /mget from that state; the
// read index catches it up first. (Found by the chaos suite.)
func Test_Get_EmptyAnswerOnlyAfterConsistentRead(t *testing.T) {
	e := newEnv(t)
	put := func(data string) fsm.Command {
		return fsm.Command{Op: fsm.OpPut, Queue: "default", Messages: [][]byte{[]byte(data)}}
	}
	e.q.lagBehind(put("committed-before"))
	e.mustGet("/get", "committed-before")
	e.q.lagBehind(put("also-committed"))
	e.mustGet("/mget?items=2&wait=20ms", "also-committed\n")
	e.q.lagBehind(put("third"))
	e.mustGet("/get?lease=1m", "third")
}

// Test_Get_WaitIsCapped checks that wait= above MaxWait is lowered to it.
func Test_Get_WaitIsCapped(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxWait = 10 * time.Millisecond })
	e.mustGet("/get?wait=1h", "")
}

// Test_Get_LongPollDueTimer checks that a long-poll wakes for a delayed
// message when its due time comes, without any put.
//
// It runs on the real clock, since it is about a real timer; the one get
// proposal shows that waiting wrote nothing to the log.
func Test_Get_LongPollDueTimer(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Now = time.Now })
	e.mustPut("/put?data=later&delay=200ms")
	e.mustGet("/get?wait=10s", "later")
	if n := e.q.byOp[fsm.OpGet].Load(); n != 1 {
		t.Fatalf("%d get proposals, want 1", n)
	}
}

// Test_Put_DelayHiddenUntilDue checks delay=: not visible before it is
// due, visible after.
func Test_Put_DelayHiddenUntilDue(t *testing.T) {
	e := newEnv(t)
	e.mustPut("/put?data=later&delay=1m")
	e.mustPut("/mput?data=m1%0Am2&delay=2m")
	e.mustGet("/get", "")
	e.mustGet("/dump", "")
	if st := e.stats(api.DefaultQueue); st.Deferred != 3 || st.Puts != 3 {
		t.Fatalf("stats %+v", st)
	}
	e.clock.Advance(time.Minute)
	e.mustGet("/get", "later")
	e.mustGet("/get", "")
	waitOps(t, e, fsm.OpHandoverAck, 1) // before the clock jumps past the handover lease
	e.clock.Advance(time.Minute)
	e.mustGet("/mget?items=5", "m1\nm2\n")
}

// Test_Put_IDDeduplicates checks that a retried put with the same id=
// stores once and still answers 200 with the same message id.
func Test_Put_IDDeduplicates(t *testing.T) {
	e := newEnv(t)
	r1 := e.mustGet("/put?data=once&id=k1", "")
	r2 := e.mustGet("/put?data=once&id=k1", "")
	if r1.header.Get(api.HeaderMessageID) != "1" || r2.header.Get(api.HeaderMessageID) != "1" {
		t.Fatalf("ids %q %q", r1.header.Get(api.HeaderMessageID), r2.header.Get(api.HeaderMessageID))
	}
	e.mustPut("/put?data=other&id=k1&queue=q2") // keys are per queue
	e.want(e.post("/mput?id=k2", "a\nb"), 200, "")
	e.want(e.post("/mput?id=k2", "a\nb"), 200, "")
	e.mustGet("/dump", "once\na\nb\n")
	e.mustGet("/stats", "puts:3\ngets:0\ndepth:3\ndepth_high_water:3\nbytes:6\noverflow:0\n")
}

// Test_Mput_LargeSplitsInOrder checks that a /mput past one entry's size
// goes in several commands, in order, and a retry with id= stores nothing
// twice.
func Test_Mput_LargeSplitsInOrder(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxBodySize = 4 << 20 })
	var b strings.Builder
	const n = 300
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%04d-%s\n", i, strings.Repeat("x", 2000))
	}
	e.want(e.post("/mput?id=big", b.String()), 200, "")
	if p := e.q.proposals.Load(); p < 3 {
		t.Fatalf("%d proposals, want the ~600 KB body split into at least 3", p)
	}
	e.want(e.post("/mput?id=big", b.String()), 200, "")
	if st := e.stats(api.DefaultQueue); st.Depth != n {
		t.Fatalf("depth %d, want %d", st.Depth, n)
	}
	var dump strings.Builder
	e.q.Dump(api.DefaultQueue, func(d []byte) error { dump.Write(d); dump.WriteByte('\n'); return nil })
	if dump.String() != b.String() {
		t.Fatal("dump differs from the input order")
	}
	// The dump is larger than the stream buffer: it goes out chunked.
	r := e.get("/dump")
	if r.code != 200 || r.body != b.String() {
		t.Fatalf("chunked dump: %d, %d bytes", r.code, len(r.body))
	}
}

// Test_Config_RoundTrip checks /config: defaults, merging given settings,
// clearing dead_letter, /stats JSON extensions, and rejects.
func Test_Config_RoundTrip(t *testing.T) {
	e := newEnv(t)
	e.mustGet("/config?queue=jobs", `{"queue":"jobs","lease":"0s","max_attempts":0,"dead_letter":"","max_depth":0,"max_bytes":0,"overflow":"reject"}`+"\n")
	e.want(e.post("/config?queue=jobs&lease=30s&max_attempts=5&dead_letter=jobs.dead", ""), 200,
		`{"queue":"jobs","lease":"30s","max_attempts":5,"dead_letter":"jobs.dead","max_depth":0,"max_bytes":0,"overflow":"reject"}`+"\n")
	e.mustGet("/config?queue=jobs&max_depth=100&overflow=evict-oldest",
		`{"queue":"jobs","lease":"30s","max_attempts":5,"dead_letter":"jobs.dead","max_depth":100,"max_bytes":0,"overflow":"evict-oldest"}`+"\n")
	e.mustGet("/config?queue=jobs", `{"queue":"jobs","lease":"30s","max_attempts":5,"dead_letter":"jobs.dead","max_depth":100,"max_bytes":0,"overflow":"evict-oldest"}`+"\n")
	e.mustGet("/stats?queue=jobs&format=json&extended=1", `{"puts": 0,"gets": 0,"depth": 0,"depth_high_water": 0,"bytes": 0,"overflow": 0,`+
		`"in_flight": 0,"deferred": 0,"dead": 0,"lease": "30s","max_attempts": 5,"dead_letter": "jobs.dead",`+
		`"acks": 0,"nacks": 0,"expired": 0,"redelivered": 0}`+"\n")
	e.mustGet("/config?queue=jobs&dead_letter=&lease=0s",
		`{"queue":"jobs","lease":"0s","max_attempts":5,"dead_letter":"","max_depth":100,"max_bytes":0,"overflow":"evict-oldest"}`+"\n")
	e.want(e.get("/config?queue=jobs&dead_letter=jobs"), 400, "invalid dead_letter=\"jobs\": must name another queue\n")
	e.want(e.get("/config?queue=jobs&overflow=drop"), 400, "invalid overflow=\"drop\": want reject or evict-oldest\n")
	e.want(e.get("/config?queue=jobs&max_attempts=-1"), 400, "invalid max_attempts=\"-1\": want an integer from 0 to 4294967295\n")
	e.mustGet("/config", `{"queue":"default","lease":"0s","max_attempts":0,"dead_letter":"","max_depth":0,"max_bytes":0,"overflow":"reject"}`+"\n")
}

// Test_Params_Malformed checks that malformed parameters answer 400 with a
// one-line reason and propose nothing.
func Test_Params_Malformed(t *testing.T) {
	tests := []struct{ target, want string }{
		{"/get?lease=abc", `invalid lease="abc": want a duration such as 500ms, 30s or 2m`},
		{"/get?lease=-1s", `invalid lease="-1s": must not be negative`},
		{"/get?lease=13h", `invalid lease="13h": the maximum is 12h`},
		{"/mget?wait=soon", `invalid wait="soon": want a duration such as 500ms, 30s or 2m`},
		{"/put?data=x&delay=-1s", `invalid delay="-1s": must not be negative`},
		{"/put?data=x&delay=8d", `invalid delay="8d": want a duration such as 500ms, 30s or 2m`},
		{"/put?data=x&delay=169h", `invalid delay="169h": the maximum is 168h`},
		{"/put?data=x&id=", `invalid id="": want a key of 1 to 256 bytes`},
		{"/put?data=x&queue=a/b", `invalid queue name "a/b": want [A-Za-z0-9._-]{1,64}`},
		{"/put?data=x&queue=", `invalid queue name "": want [A-Za-z0-9._-]{1,64}`},
		{"/get?queue=" + strings.Repeat("q", 65), `invalid queue name "` + strings.Repeat("q", 64) + `"...: want [A-Za-z0-9._-]{1,64}`},
		{"/mget?items=", `number of items must be > 0`},
		{"/ack", `missing id: want id=ID or id=ID,ID,...`},
		{"/ack?id=", `missing id: want id=ID or id=ID,ID,...`},
		{"/ack?id=,,", `invalid id=",,": want decimal message ids separated by commas`},
		{"/ack?id=1,,2", `invalid id="1,,2": want decimal message ids separated by commas`},
		{"/ack?id=abc", `invalid id="abc": want decimal message ids separated by commas`},
		{"/ack?id=-1", `invalid id="-1": want decimal message ids separated by commas`},
		{"/ack?id=1,1", `invalid id="1,1": id 1 is listed twice`},
		{"/ack?id=1&queue=b%20c", `invalid queue name "b c": want [A-Za-z0-9._-]{1,64}`},
		{"/nack?id=1&delay=x", `invalid delay="x": want a duration such as 500ms, 30s or 2m`},
		{"/touch?id=1&lease=1y", `invalid lease="1y": want a duration such as 500ms, 30s or 2m`},
		{"/stats?stale=yes", `invalid stale="yes": want 1 or 0`},
		{"/dump?stale=2", `invalid stale="2": want 1 or 0`},
		{"/mput?data=a&separator=", `separator must not be empty`},
		{"/config?max_depth=lots", `invalid max_depth="lots": want an integer from 0 to 9223372036854775807`},
		{"/config?dead_letter=a%2Fb", `invalid dead_letter="a/b": want [A-Za-z0-9._-]{1,64}`},
		{"/get?lease=abc%0Adef", `invalid lease="abc\ndef": want a duration such as 500ms, 30s or 2m`},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			e := newEnv(t)
			e.want(e.get(tc.target), 400, tc.want+"\n")
			if n := e.q.proposals.Load(); n != 0 {
				t.Fatalf("%d proposals, want 0", n)
			}
		})
	}
}

// Test_Errors_Mapping checks the error table end to end with injected
// Propose and ConsistentRead failures.
func Test_Errors_Mapping(t *testing.T) {
	tests := []struct {
		name       string
		proposeErr error
		readErr    error
		target     string
		code       int
		body       string
		token      string
	}{
		{"no leader", api.ErrNoLeader, nil, "/put?data=x", 503, "no leader is known; retry shortly\n", "NO_LEADER"},
		{"not leader", fmt.Errorf("wrapped: %w", api.ErrNotLeader), nil, "/put?data=x", 503, "this node is not the leader; retry\n", "NOT_LEADER"},
		{"shutting down", api.ErrShuttingDown, nil, "/get", 503, "this node is shutting down; retry\n", "SHUTTING_DOWN"},
		{"outcome unknown", api.ErrOutcomeUnknown, nil, "/put?data=x", 503, api.ErrOutcomeUnknown.Text + "\n", "OUTCOME_UNKNOWN"},
		{"propose timeout", context.DeadlineExceeded, nil, "/mput?data=x", 503, api.ErrOutcomeUnknown.Text + "\n", "OUTCOME_UNKNOWN"},
		{"unexpected", errors.New("disk on fire\nsecond line"), nil, "/ack?id=1", 500, "internal server error\n", "INTERNAL"},
		{"read no leader", nil, api.ErrNoLeader, "/stats", 503, "no leader is known; retry shortly\n", "NO_LEADER"},
		{"read timeout", nil, context.DeadlineExceeded, "/dump", 503, "timed out waiting for a consistent read; retry, or read this node's state with stale=1\n", "UNAVAILABLE"},
		{"stale read skips it", nil, api.ErrNoLeader, "/stats?stale=1", 200, "puts:1\ngets:0\ndepth:1\ndepth_high_water:1\nbytes:5\noverflow:0\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.Logger = discardLogger() })
			e.mustPut("/put?data=ready") // so that /get proposes
			if tc.proposeErr != nil {
				e.q.failPropose(func(context.Context, fsm.Command) error { return tc.proposeErr })
			}
			e.q.failRead(tc.readErr)
			r := e.get(tc.target)
			e.want(r, tc.code, tc.body)
			if r.header.Get(api.HeaderErrorCode) != tc.token {
				t.Fatalf("X-Error-Code %q, want %q", r.header.Get(api.HeaderErrorCode), tc.token)
			}
			if want := map[bool]string{true: "1", false: ""}[tc.code == 503]; r.header.Get("Retry-After") != want {
				t.Fatalf("Retry-After %q, want %q", r.header.Get("Retry-After"), want)
			}
		})
	}
}

// Test_Errors_ProposeTimeoutIsOutcomeUnknown checks that a Propose that
// runs past ProposeTimeout answers outcome unknown, even when the
// implementation only returns the context's error.
func Test_Errors_ProposeTimeoutIsOutcomeUnknown(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.ProposeTimeout = 20 * time.Millisecond })
	e.q.failPropose(func(ctx context.Context, _ fsm.Command) error {
		<-ctx.Done()
		return ctx.Err()
	})
	e.want(e.get("/put?data=x&id=k"), 503, api.ErrOutcomeUnknown.Text+"\n")
}
