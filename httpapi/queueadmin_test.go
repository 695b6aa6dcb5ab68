package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
)

func (e *env) mustJSON(method, target string, v any) {
	e.t.Helper()
	r := e.do(method, target, "")
	if r.code != http.StatusOK || r.header.Get("Content-Type") != typeJSON {
		e.t.Fatalf("%s %s: %d %q (%s)", method, target, r.code, r.body, r.header.Get("Content-Type"))
	}
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		e.t.Fatalf("%s %s: %q: %v", method, target, r.body, err)
	}
}

// deadLetter configures jobs to dead-letter into jobs.dead after one
// attempt and nacks the head of jobs once.
func (e *env) deadLetter() {
	e.t.Helper()
	e.mustGet("/config?queue=jobs&max_attempts=1&dead_letter=jobs.dead",
		`{"queue":"jobs","lease":"0s","max_attempts":1,"dead_letter":"jobs.dead","max_depth":0,"max_bytes":0,"overflow":"reject"}`+"\n")
	r := e.get("/get?queue=jobs&lease=30s")
	if r.code != 200 {
		e.t.Fatalf("get: %d %q", r.code, r.body)
	}
	e.mustGet("/nack?queue=jobs&reason=boom&id="+r.header.Get(api.HeaderMessageID), "")
}

func TestQueues_ListsEveryQueueWithCounters(t *testing.T) {
	e := newEnv(t)
	put := e.clock.Now()
	e.mustPut("/put?queue=jobs&data=a")
	e.mustPut("/put?queue=jobs&data=bb")
	e.mustPut("/put?queue=other&data=x")
	e.deadLetter()
	e.clock.Advance(90 * time.Second)
	var got api.QueueList
	e.mustJSON(http.MethodGet, "/queues", &got)
	if got.TimeMS != e.clock.Now().UnixMilli() || len(got.Queues) != 3 {
		t.Fatalf("answer %+v, want 3 queues at the fake clock's time", got)
	}
	jobs, dead, other := got.Queues[0], got.Queues[1], got.Queues[2]
	if jobs.Name != "jobs" || dead.Name != "jobs.dead" || other.Name != "other" {
		t.Fatalf("queues not sorted by name: %+v", got.Queues)
	}
	if jobs.Depth != 1 || jobs.Dead != 1 || jobs.Nacks != 1 || jobs.Gets != 1 || jobs.Puts != 2 || jobs.Bytes != 2 ||
		jobs.Config.MaxAttempts != 1 || jobs.Config.DeadLetter != "jobs.dead" || jobs.Config.Queue != "jobs" {
		t.Fatalf("jobs: %+v", jobs)
	}
	if jobs.OldestMS != put.UnixMilli() || jobs.OldestAgeMS != 90_000 {
		t.Fatalf("jobs oldest %d (age %d), want %d (age 90000)", jobs.OldestMS, jobs.OldestAgeMS, put.UnixMilli())
	}
	if dead.Depth != 1 || dead.Bytes != 1 || dead.OldestMS != put.UnixMilli() {
		t.Fatalf("jobs.dead: %+v, want the dead message with its put time", dead)
	}
	e.mustGet("/get?queue=other", "x")
	e.mustJSON(http.MethodGet, "/queues?stale=1", &got)
	if o := got.Queues[2]; o.Depth != 0 || o.OldestMS != 0 || o.OldestAgeMS != 0 {
		t.Fatalf("an empty queue: %+v, want no oldest", o)
	}
	if r := e.post("/queues", ""); r.code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /queues: %d %q, want 405", r.code, r.body)
	}
}

func TestDump_Paged_JSONTextAndLimits(t *testing.T) {
	e := newEnv(t)
	e.mustPut("/put?queue=jobs&data=first")
	e.deadLetter()
	e.mustPut("/put?queue=jobs.dead&data=mine")
	e.want(e.post("/put?queue=jobs.dead", "\xff\xfe"), 200, "")
	// Plain /dump is as it was.
	e.mustGet("/dump?queue=jobs.dead", "first\nmine\n\xff\xfe\n")
	e.mustGet("/dump?queue=jobs.dead&format=json",
		`{"queue":"jobs.dead","total":3,"offset":0,"messages":[`+
			`{"id":"1","attempts":1,"data":"first","dead_from":"jobs","error":"boom"},`+
			`{"id":"2","attempts":0,"data":"mine"},`+
			`{"id":"3","attempts":0,"data":"//4=","encoding":"base64"}]}`+"\n")
	e.mustGet("/dump?queue=jobs.dead&format=json&offset=1&limit=1",
		`{"queue":"jobs.dead","total":3,"offset":1,"messages":[{"id":"2","attempts":0,"data":"mine"}]}`+"\n")
	e.mustGet("/dump?queue=jobs.dead&format=json&after=2",
		`{"queue":"jobs.dead","total":3,"offset":0,"messages":[{"id":"3","attempts":0,"data":"//4=","encoding":"base64"}]}`+"\n")
	e.mustGet("/dump?queue=nothing&format=json", `{"queue":"nothing","total":0,"offset":0,"messages":[]}`+"\n")
	// Text pages.
	e.mustGet("/dump?queue=jobs.dead&limit=2", "first\nmine\n")
	e.mustGet("/dump?queue=jobs.dead&after=1&offset=1", "\xff\xfe\n")
	for _, bad := range []string{"limit=0", "limit=x", "offset=-1", "after=abc"} {
		if r := e.get("/dump?queue=jobs.dead&format=json&" + bad); r.code != 400 {
			t.Fatalf("%s: %d %q, want 400", bad, r.code, r.body)
		}
	}
}

func TestDump_JSON_LimitDefaultsTo100AndCapsAt1000(t *testing.T) {
	e := newEnv(t)
	e.want(e.post("/mput?queue=big", strings.Repeat("m\n", 1005)), 200, "")
	var page struct {
		Total    int64             `json:"total"`
		Messages []json.RawMessage `json:"messages"`
	}
	for _, c := range []struct {
		query string
		n     int
	}{{"", 100}, {"&limit=5000", 1000}, {"&limit=7", 7}} {
		e.mustJSON(http.MethodGet, "/dump?queue=big&format=json"+c.query, &page)
		if page.Total != 1005 || len(page.Messages) != c.n {
			t.Fatalf("%q: total %d, %d messages, want 1005 and %d", c.query, page.Total, len(page.Messages), c.n)
		}
	}
}

func TestPurge_RemovesReadyAndDeferred_LeasedStay(t *testing.T) {
	e := newEnv(t)
	e.want(e.post("/mput?queue=q", strings.Repeat("m\n", fsm.MaxAdminBatch+5)), 200, "")
	e.mustPut("/put?queue=q&data=later&delay=1h")
	e.get("/get?queue=q&lease=30s")
	before := e.q.byOp[fsm.OpPurge].Load()
	e.want(e.post("/purge?queue=q", ""), 200, `{"purged":`+strconv.Itoa(fsm.MaxAdminBatch+5)+"}\n")
	if n := e.q.byOp[fsm.OpPurge].Load() - before; n != 2 {
		t.Fatalf("%d purge commands, want 2 (one batch, then the rest)", n)
	}
	if st := e.stats("q"); st.Depth != 0 || st.Deferred != 0 || st.InFlight != 1 || st.Bytes != 1 {
		t.Fatalf("after purge: %+v, want only the leased message", st)
	}
	if u := e.q.Usage(); u.Messages != 1 {
		t.Fatalf("usage %+v, want the leased message only", u)
	}
	e.want(e.post("/purge?queue=q", ""), 200, `{"purged":0}`+"\n")
	e.want(e.post("/purge?queue=never", ""), 200, `{"purged":0}`+"\n")
	wantError(t, e.post("/purge", ""), 400, api.ErrBadRequest, "missing queue=")
	wantError(t, e.post("/purge?queue=a%20b", ""), 400, api.ErrInvalidQueueName, "")
	if r := e.get("/purge?queue=q"); r.code != http.StatusMethodNotAllowed || e.stats("q").InFlight != 1 {
		t.Fatalf("GET /purge: %d %q, want 405", r.code, r.body)
	}
}

func TestRedrive_ToOriginOrTo_WithMaxAndStayers(t *testing.T) {
	e := newEnv(t)
	e.mustPut("/put?queue=jobs&data=one")
	e.deadLetter()
	e.mustPut("/put?queue=jobs&data=two")
	e.deadLetter()
	e.mustPut("/put?queue=jobs.dead&data=own") // no origin
	e.want(e.post("/redrive?queue=jobs.dead&max=1", ""), 200, `{"moved":1,"left":2}`+"\n")
	e.mustGet("/dump?queue=jobs", "one\n")
	e.want(e.post("/redrive?queue=jobs.dead", ""), 200, `{"moved":1,"left":1}`+"\n")
	e.mustGet("/dump?queue=jobs", "one\ntwo\n")
	e.mustGet("/dump?queue=jobs.dead", "own\n")
	e.want(e.post("/redrive?queue=jobs.dead&to=elsewhere", ""), 200, `{"moved":1,"left":0}`+"\n")
	e.mustGet("/dump?queue=elsewhere&format=json",
		`{"queue":"elsewhere","total":1,"offset":0,"messages":[{"id":"3","attempts":0,"data":"own"}]}`+"\n")
	if r := e.get("/get?queue=jobs&lease=30s"); r.body != "one" || r.header.Get(api.HeaderAttempts) != "1" || r.header.Get(api.HeaderLastError) != "" {
		t.Fatalf("redriven message: %q attempts %q last error %q, want a fresh start", r.body, r.header.Get(api.HeaderAttempts), r.header.Get(api.HeaderLastError))
	}
	wantError(t, e.post("/redrive?queue=jobs.dead&to=jobs.dead", ""), 400, api.ErrBadRequest, "to=")
	wantError(t, e.post("/redrive?queue=jobs.dead&to=a%20b", ""), 400, api.ErrInvalidQueueName, "")
	wantError(t, e.post("/redrive?queue=jobs.dead&max=0", ""), 400, api.ErrBadRequest, "max=0")
	wantError(t, e.post("/redrive", ""), 400, api.ErrBadRequest, "missing queue=")
}

func TestRedrive_PastMoreStayersThanABatch(t *testing.T) {
	e := newEnv(t)
	e.want(e.post("/mput?queue=jobs.dead", strings.Repeat("own\n", fsm.MaxAdminBatch+3)), 200, "")
	e.mustPut("/put?queue=jobs&data=late")
	e.deadLetter()
	e.want(e.post("/redrive?queue=jobs.dead", ""), 200, `{"moved":1,"left":`+strconv.Itoa(fsm.MaxAdminBatch+3)+"}\n")
	e.mustGet("/dump?queue=jobs", "late\n")
}

func TestQueueAdmin_Roles(t *testing.T) {
	e := newEnv(t, withAuth(t))
	e.mustPut("/put?data=x&queue=jobs.a&token=" + tokAdmin)
	for _, tc := range []struct {
		method, token, target string
		code                  int
	}{
		{http.MethodGet, "", "/queues", 401},
		{http.MethodGet, tokMonitor, "/queues", 200},
		{http.MethodPost, tokMonitor, "/purge?queue=jobs.a", 403},
		{http.MethodPost, tokConsume, "/purge?queue=jobs.a", 403},
		{http.MethodPost, tokMonitor, "/redrive?queue=jobs.a", 403},
		{http.MethodPost, tokScopedAdmin, "/purge?queue=other", 403},
		{http.MethodPost, tokScopedAdmin, "/redrive?queue=jobs.a&to=other", 403},
		{http.MethodPost, tokScopedAdmin, "/redrive?queue=jobs.a&to=jobs.b", 200},
		{http.MethodPost, tokAdmin, "/redrive?queue=jobs.a", 200},
		{http.MethodPost, tokAdmin, "/purge?queue=jobs.a", 200},
	} {
		var h http.Header
		if tc.token != "" {
			h = bearer(tc.token)
		}
		if r := send(t, e.srv, tc.method, tc.target, h); r.code != tc.code {
			t.Fatalf("%s %s with %q: %d %q, want %d", tc.method, tc.target, tc.token, r.code, r.body, tc.code)
		}
	}
}
