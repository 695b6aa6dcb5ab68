package httpapi

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
)

// These tests replay shared/reference/simplehttp-transcript.md (sections
// 1 and 2; T1.x below) against the handler and expect the same status codes
// and bodies, except where the package documentation says otherwise
// (counter semantics, HEAD, empty /mput records).

const sqType = "text/html; charset=ISO-8859-1"

// Test_Compat_Transcript1 replays T1.1–T1.11 in order: every answer is the
// reference's, and /stats after T1.10 differs only by our counter semantics.
func Test_Compat_Transcript1(t *testing.T) {
	e := newEnv(t)
	// T1.1 /get on an empty queue: 200, empty body, no Content-Type.
	r := e.mustGet("/get", "")
	if ct := r.header.Get("Content-Type"); ct != "" {
		t.Fatalf("empty /get has Content-Type %q", ct)
	}
	// T1.2 /put with data= in the query string.
	e.mustPut("/put?data=hello")
	// T1.3 /put without data.
	r = e.get("/put")
	e.want(r, 400, "missing data\n")
	// A documented difference: errors are plain text, never sniffed.
	if ct, ns := r.header.Get("Content-Type"), r.header.Get("X-Content-Type-Options"); ct != "text/plain; charset=utf-8" || ns != "nosniff" {
		t.Fatalf("400 Content-Type %q, X-Content-Type-Options %q, want text/plain and nosniff", ct, ns)
	}
	// T1.4 present but empty: 200, nothing stored.
	e.mustPut("/put?data=")
	// T1.5 the raw POST body is the item.
	e.want(e.post("/put", "posted body"), 200, "")
	// T1.5b query data= wins over the body.
	e.want(e.post("/put?data=QUERY", "BODY"), 200, "")
	e.mustGet("/mget?items=100", "hello\nposted body\nQUERY\n")
	e.want(e.post("/put?data=QUERY", "BODY"), 200, "")
	e.mustGet("/get", "QUERY")
	e.mustPut("/put?data=hello")
	e.want(e.post("/put", "posted body"), 200, "")
	// T1.6 a form body is not decoded.
	e.want(e.post("/put", "data=formencoded"), 200, "")
	// T1.7 '+' is a space, %XX decoded.
	e.mustPut("/put?data=a+b%20c%2Bd")
	// T1.8 a piece without '=' stops parsing.
	e.want(e.get("/put?foo&data=x"), 400, "missing data\n")
	// T1.9 case-insensitive names, first duplicate wins, /dump in order.
	e.mustPut("/put?DATA=upper")
	e.mustPut("/put?data=first&data=second")
	r = e.mustGet("/dump", "hello\nposted body\ndata=formencoded\na b c+d\nupper\nfirst\n")
	if ct := r.header.Get("Content-Type"); ct != sqType {
		t.Fatalf("/dump Content-Type %q, want %q", ct, sqType)
	}
	// T1.10: the reference says puts:13 gets:5, counting the two 400s, the
	// empty data= and the empty /get; we count stored and handed-out messages.
	r = e.mustGet("/stats", "puts:10\ngets:4\ndepth:6\ndepth_high_water:6\nbytes:49\noverflow:0\n")
	if ct := r.header.Get("Content-Type"); ct != sqType {
		t.Fatalf("/stats Content-Type %q, want %q", ct, sqType)
	}
	// Exactly the reference's six keys, in its order.
	e.mustGet("/stats?format=json", `{"puts": 10,"gets": 4,"depth": 6,"depth_high_water": 6,"bytes": 49,"overflow": 0}`+"\n")
	e.mustGet("/stats?format=json&extended=1", `{"puts": 10,"gets": 4,"depth": 6,"depth_high_water": 6,"bytes": 49,"overflow": 0,`+
		`"in_flight": 0,"deferred": 0,"dead": 0,"lease": "0s","max_attempts": 0,"dead_letter": "",`+
		`"acks": 0,"nacks": 0,"expired": 0,"redelivered": 0}`+"\n")
	// T1.11 FIFO.
	e.mustGet("/get", "hello")
}

// Test_Compat_PutDataSources checks each /put row of spec 2.3 on a fresh
// queue: query, body, both (query wins), form body kept literal, decoding.
func Test_Compat_PutDataSources(t *testing.T) {
	tests := []struct {
		name, method, target, body string
		code                       int
		respBody, dump             string
	}{
		{"query", "GET", "/put?data=hello", "", 200, "", "hello\n"},
		{"query via POST", "POST", "/put?data=hello", "", 200, "", "hello\n"},
		{"body", "POST", "/put", "posted body", 200, "", "posted body\n"},
		{"body keeps its newline", "POST", "/put", "line\n", 200, "", "line\n\n"},
		{"query wins over body", "POST", "/put?data=QUERY", "BODY", 200, "", "QUERY\n"},
		{"form body not decoded", "POST", "/put", "data=formencoded", 200, "", "data=formencoded\n"},
		{"plus and percent", "GET", "/put?data=a+b%20c%2Bd", "", 200, "", "a b c+d\n"},
		{"malformed percent kept", "GET", "/put?data=100%25%zz%4", "", 200, "", "100%%zz%4\n"},
		// Deliberate change: libevent stores "ab"; a value is never cut.
		{"decoded NUL refused", "GET", "/put?data=ab%00cd", "", 400, `invalid data="ab%00cd": %00 at byte 2 is a NUL byte; send binary data as a POST body` + "\n", ""},
		{"keys are not decoded", "GET", "/put?d%61ta=x", "", 400, "missing data\n", ""},
		{"upper-case key", "GET", "/put?DATA=upper", "", 200, "", "upper\n"},
		{"first duplicate wins", "GET", "/put?data=first&data=second", "", 200, "", "first\n"},
		{"first duplicate wins across case", "GET", "/put?Data=first&data=second", "", 200, "", "first\n"},
		{"piece without = stops parsing", "GET", "/put?foo&data=x", "", 400, "missing data\n", ""},
		{"empty piece stops parsing", "GET", "/put?a=1&&data=x", "", 400, "missing data\n", ""},
		{"no data", "GET", "/put", "", 400, "missing data\n", ""},
		{"empty POST body", "POST", "/put", "", 400, "missing data\n", ""},
		{"GET body ignored", "GET", "/put", "ignored", 400, "missing data\n", ""},
		{"empty data stores nothing", "GET", "/put?data=", "", 200, "", ""},
		{"semicolons are literal", "GET", "/put?data=a;b", "", 200, "", "a;b\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.want(e.do(tc.method, tc.target, tc.body), tc.code, tc.respBody)
			e.mustGet("/dump", tc.dump)
		})
	}
}

// Test_Compat_EmptyDataDoesNotPropose checks that a present-but-empty
// data= answers 200 without writing the log, and a 400 writes nothing either.
func Test_Compat_EmptyDataDoesNotPropose(t *testing.T) {
	e := newEnv(t)
	e.mustPut("/put?data=")
	e.want(e.get("/put"), 400, "missing data\n")
	e.mustPut("/mput?data=")
	e.mustPut("/mput?data=%0A%0A")
	if n := e.q.proposals.Load(); n != 0 {
		t.Fatalf("%d proposals, want 0", n)
	}
	if st := e.stats(api.DefaultQueue); st.Puts != 0 || st.Exists {
		t.Fatalf("stats %+v, want an untouched queue", st)
	}
}

// Test_Compat_Mget replays T1.12–T1.17 byte for byte.
func Test_Compat_Mget(t *testing.T) {
	e := newEnv(t)
	// T1.12 a short queue yields a trailing separator.
	e.mustGet("/mget?items=100", "")
	e.mustPut("/put?data=a")
	e.mustPut("/put?data=b")
	r := e.mustGet("/mget?items=3", "a\nb\n")
	if r.header.Get("Content-Length") != "4" || r.header.Get("Content-Type") != sqType {
		t.Fatalf("T1.12 headers %v", r.header)
	}
	// T1.13 no trailing separator when the count matches.
	e.mustPut("/put?data=a")
	e.mustPut("/put?data=b")
	e.mustGet("/mget?items=2", "a\nb")
	// T1.14 no items= returns one item.
	e.mustPut("/put?data=a")
	e.mustPut("/put?data=b")
	e.mustGet("/mget", "a")
	// T1.15 items=0 or non-numeric.
	e.want(e.get("/mget?items=0"), 400, "number of items must be > 0\n")
	e.want(e.get("/mget?items=abc"), 400, "number of items must be > 0\n")
	// T1.16 separator override; the queue holds b, then c.
	e.mustPut("/put?data=c")
	e.mustGet("/mget?items=5&separator=,", "b,c,")
	// T1.17 empty queue.
	r = e.mustGet("/mget?items=5", "")
	if r.header.Get("Content-Type") != "" || r.header.Get("Content-Length") != "0" {
		t.Fatalf("T1.17 headers %v", r.header)
	}
}

// Test_Compat_MgetItemsParsing checks atoi-like items= and the separator
// rule with several-byte and empty separators.
func Test_Compat_MgetItemsParsing(t *testing.T) {
	tests := []struct {
		target, want string
		code         int
	}{
		{"/mget?items=3abc", "a\nb\nc", 200},
		{"/mget?items=+2", "a\nb", 200},
		{"/mget?items=-1", "number of items must be > 0\n", 400},
		{"/mget?items=", "number of items must be > 0\n", 400},
		{"/mget?items=abc", "number of items must be > 0\n", 400},
		{"/mget?items=99999999999999999999", "a\nb\nc\n", 200},
		{"/mget?items=4&separator=%7C%7C", "a||b||c||", 200},
		{"/mget?items=3&separator=", "abc", 200},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			e := newEnv(t)
			e.mustPut("/mput?data=a%0Ab%0Ac")
			e.want(e.get(tc.target), tc.code, tc.want)
		})
	}
}

// Test_Compat_Mput replays T1.18 and T1.19.
func Test_Compat_Mput(t *testing.T) {
	e := newEnv(t)
	e.mustPut("/mput?data=m1%0Am2%0Am3")
	e.want(e.post("/mput", "p1\np2\n"), 200, "")
	e.mustPut("/mput?data=s1||s2&separator=%7C%7C")
	e.mustGet("/dump", "m1\nm2\nm3\np1\np2\ns1\ns2\n")
	e.want(e.get("/mput"), 400, "missing data\n")
	if st := e.stats(api.DefaultQueue); st.Puts != 7 {
		t.Fatalf("puts %d, want 7", st.Puts)
	}
}

// Test_Compat_MputEmptyRecords checks the T1.28 inputs, which hang the
// reference: empty records are skipped, an empty separator= is a 400.
func Test_Compat_MputEmptyRecords(t *testing.T) {
	tests := []struct {
		target string
		code   int
		body   string
		dump   string
		stats  string
	}{
		{"/mput?data=a%0A%0Ab", 200, "", "a\nb\n", "puts:2\ngets:0\ndepth:2\ndepth_high_water:2\nbytes:2\noverflow:0\n"},
		{"/mput?data=%0Aabc", 200, "", "abc\n", "puts:1\ngets:0\ndepth:1\ndepth_high_water:1\nbytes:3\noverflow:0\n"},
		{"/mput?data=abc%0A%0A", 200, "", "abc\n", "puts:1\ngets:0\ndepth:1\ndepth_high_water:1\nbytes:3\noverflow:0\n"},
		{"/mput?data=abc&separator=", 400, "separator must not be empty\n", "", "puts:0\ngets:0\ndepth:0\ndepth_high_water:0\nbytes:0\noverflow:0\n"},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			e := newEnv(t)
			e.want(e.get(tc.target), tc.code, tc.body)
			e.mustGet("/dump", tc.dump)
			e.mustGet("/stats", tc.stats)
		})
	}
}

// Test_Compat_Routes checks prefix globs (T1.22), 404 with an empty body
// (T1.21) and that /exit is not served.
func Test_Compat_Routes(t *testing.T) {
	e := newEnv(t)
	e.mustPut("/put?data=prefix")
	e.mustGet("/getanything", "prefix")
	e.mustPut("/put/x?data=p2")
	e.mustGet("/get/whatever?x=1", "p2")
	e.mustPut("/putter?data=p3")
	e.mustGet("/statsx?format=json", `{"puts": 3,"gets": 2,"depth": 1,"depth_high_water": 1,"bytes": 2,"overflow": 0}`+"\n")
	for _, path := range []string{"/nothere", "/exit", "/exitnow", "/", "/Get", "/%67et", "/healthzx", "/cluster"} {
		r := e.get(path)
		if r.code != 404 || r.body != "" || r.header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Fatalf("GET %s: got %d %q %v, want 404 with an empty text/plain body", path, r.code, r.body, r.header)
		}
	}
	if st := e.stats(api.DefaultQueue); st.Depth != 1 {
		t.Fatalf("depth %d after 404s, want 1", st.Depth)
	}
}

// Test_Compat_StatsReset replays T1.25: reset=1 answers an empty body and
// zeroes puts, gets and depth_high_water only; other values are ignored.
func Test_Compat_StatsReset(t *testing.T) {
	e := newEnv(t)
	e.mustPut("/mput?data=a%0Ab%0Ac")
	e.mustGet("/get", "a")
	e.mustGet("/stats?reset=yes", "puts:3\ngets:1\ndepth:2\ndepth_high_water:3\nbytes:2\noverflow:0\n")
	e.mustGet("/stats?reset=1&format=json", "")
	e.mustGet("/stats", "puts:0\ngets:0\ndepth:2\ndepth_high_water:0\nbytes:2\noverflow:0\n")
	e.want(e.post("/stats?reset=1", ""), 200, "")
}

// Test_Compat_EvictOldest replays T2.2 (--max-depth=2 with an overflow
// log): the oldest items are evicted and written to the log at once.
func Test_Compat_EvictOldest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "overflow.log")
	ol, err := OpenOverflowLog(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ol.Close() })
	e := newEnv(t, func(o *Options) {
		o.Limits = fsm.Limits{MaxDepth: 2, Policy: fsm.OverflowEvictOldest}
		o.Overflow = ol
	})
	for _, item := range []string{"item1", "item2", "item3", "item4"} {
		e.mustPut("/put?data=" + item)
	}
	e.mustGet("/stats", "puts:4\ngets:0\ndepth:2\ndepth_high_water:3\nbytes:10\noverflow:2\n")
	e.mustGet("/stats?format=json", `{"puts": 4,"gets": 0,"depth": 2,"depth_high_water": 3,"bytes": 10,"overflow": 2}`+"\n")
	e.mustGet("/dump", "item3\nitem4\n")
	if b, err := os.ReadFile(path); err != nil || string(b) != "item1\nitem2\n" {
		t.Fatalf("overflow log %q (%v), want %q", b, err, "item1\nitem2\n")
	}
}

// Test_Compat_EvictWithoutLog checks the T2.1 crash is fixed: without an
// overflow log, evicted items are dropped and counted.
func Test_Compat_EvictWithoutLog(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Limits = fsm.Limits{MaxDepth: 2, Policy: fsm.OverflowEvictOldest} })
	for _, item := range []string{"item1", "item2", "item3"} {
		e.mustPut("/put?data=" + item)
	}
	e.mustGet("/stats", "puts:3\ngets:0\ndepth:2\ndepth_high_water:3\nbytes:10\noverflow:1\n")
}

// Test_Compat_MaxBytesAndSeparators replays T2.3: --max-bytes=10
// --max-mget=2 --mget-item-sep=, --mput-item-sep=;
func Test_Compat_MaxBytesAndSeparators(t *testing.T) {
	path := filepath.Join(t.TempDir(), "overflow2.log")
	ol, err := OpenOverflowLog(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ol.Close() })
	e := newEnv(t, func(o *Options) {
		o.Limits = fsm.Limits{MaxBytes: 10, Policy: fsm.OverflowEvictOldest}
		o.MaxMGet, o.MGetSep, o.MPutSep = 2, ",", ";"
		o.Overflow = ol
	})
	e.mustPut("/put?data=12345")
	e.mustPut("/put?data=67890")
	e.mustPut("/put?data=abc")
	e.mustGet("/stats", "puts:3\ngets:0\ndepth:2\ndepth_high_water:3\nbytes:8\noverflow:1\n")
	e.mustPut("/mput?data=m1;m2;m3")
	e.mustGet("/dump", "abc\nm1\nm2\nm3\n")
	e.mustGet("/mget?items=5", "abc,m1")
	if b, err := os.ReadFile(path); err != nil || string(b) != "12345\n67890\n" {
		t.Fatalf("overflow log %q (%v)", b, err)
	}
}

// Test_Compat_RejectPolicy checks that a full queue under the reject
// policy answers 507 with a one-line body and changes nothing.
func Test_Compat_RejectPolicy(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Limits = fsm.Limits{MaxDepth: 2} })
	e.mustPut("/put?data=item1")
	e.mustPut("/put?data=item2")
	r := e.get("/put?data=item3")
	e.want(r, api.StatusQueueFull, "queue \"default\" is full\n")
	if r.header.Get(api.HeaderErrorCode) != "QUEUE_FULL" {
		t.Fatalf("X-Error-Code %q", r.header.Get(api.HeaderErrorCode))
	}
	e.want(e.get("/mput?data=x%0Ay&queue=other"), 200, "")
	e.want(e.get("/mput?data=x%0Ay%0Az&queue=other"), api.StatusQueueFull, "queue \"other\" is full\n")
	e.mustGet("/dump", "item1\nitem2\n")
	e.mustGet("/dump?queue=other", "x\ny\n")
	e.mustGet("/stats", "puts:2\ngets:0\ndepth:2\ndepth_high_water:2\nbytes:10\noverflow:0\n")
}

// Test_Compat_TooLarge checks 413 for a message over MaxMsgSize (query,
// body, mput record) and a body over MaxBodySize, storing nothing.
func Test_Compat_TooLarge(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxMsgSize, o.MaxBodySize = 8, 16 })
	tests := []struct {
		method, target, body, want string
	}{
		{"GET", "/put?data=123456789", "", "message is 9 bytes, more than the limit of 8 bytes\n"},
		{"POST", "/put", "123456789", "message is 9 bytes, more than the limit of 8 bytes\n"},
		{"POST", "/put", "12345678901234567", "request body is 17 bytes, more than the limit of 16 bytes\n"},
		{"POST", "/mput", "ok\n123456789\nok", "record 2 is 9 bytes, more than the limit of 8 bytes\n"},
		{"POST", "/mput", "1\n2\n3\n4\n5\n6\n7\n8\n9", "request body is 17 bytes, more than the limit of 16 bytes\n"},
		{"POST", "/nack?id=1", "123456789", "message is 9 bytes, more than the limit of 8 bytes\n"},
	}
	for _, tc := range tests {
		e.want(e.do(tc.method, tc.target, tc.body), http.StatusRequestEntityTooLarge, tc.want)
	}
	e.want(e.post("/put", "12345678"), 200, "")
	e.mustGet("/dump", "12345678\n")
}

// Test_Compat_BodyTooLargeChunked checks the body bound without a
// Content-Length (chunked upload).
func Test_Compat_BodyTooLargeChunked(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxBodySize = 16 })
	req, _ := http.NewRequest("POST", e.srv.URL+"/mput", io.MultiReader(strings.NewReader("12345678\n"), strings.NewReader("12345678\n")))
	req.ContentLength = -1
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 413 || string(b) != "request body is more than the limit of 16 bytes\n" {
		t.Fatalf("got %d %q", res.StatusCode, b)
	}
	e.mustGet("/dump", "")
}

// Test_Compat_Methods checks that HEAD never changes state (the reference
// pops on HEAD /get, T1.20), reads allow HEAD, and other methods get 405.
func Test_Compat_Methods(t *testing.T) {
	e := newEnv(t)
	e.mustPut("/put?data=headtest")
	for _, target := range []string{"/get", "/mget?items=5", "/put?data=x", "/mput?data=x", "/ack?id=1",
		"/nack?id=1", "/touch?id=1", "/config", "/stats?reset=1"} {
		r := e.do("HEAD", target, "")
		if r.code != 405 || r.header.Get("Allow") != "GET, POST" {
			t.Fatalf("HEAD %s: %d Allow=%q, want 405 GET, POST", target, r.code, r.header.Get("Allow"))
		}
	}
	for _, target := range []string{"/dump", "/stats", "/stats?format=json"} {
		r := e.do("HEAD", target, "")
		if r.code != 200 || r.body != "" || r.header.Get("Content-Length") == "0" {
			t.Fatalf("HEAD %s: %d %q %v", target, r.code, r.body, r.header)
		}
	}
	for _, m := range []string{"PUT", "DELETE", "PATCH", "OPTIONS"} {
		r := e.do(m, "/put?data=z", "")
		e.want(r, 405, "method not allowed\n")
		if r.header.Get("Allow") != "GET, POST" {
			t.Fatalf("%s Allow %q", m, r.header.Get("Allow"))
		}
	}
	e.mustGet("/stats", "puts:1\ngets:0\ndepth:1\ndepth_high_water:1\nbytes:8\noverflow:0\n")
	e.want(e.post("/get", ""), 200, "headtest")
}

// Test_Compat_BinarySafe checks T1.26's input: bytes counts all 7 bytes,
// and unlike the reference the NUL does not cut the output.
func Test_Compat_BinarySafe(t *testing.T) {
	e := newEnv(t)
	e.want(e.post("/put", "abc\x00def"), 200, "")
	e.mustGet("/stats?format=json", `{"puts": 1,"gets": 0,"depth": 1,"depth_high_water": 1,"bytes": 7,"overflow": 0}`+"\n")
	e.mustGet("/dump", "abc\x00def\n")
	e.mustGet("/get", "abc\x00def")
}

// Test_Compat_SeedTranscript is the seed transcript: stats, a
// POSTed put (curl -d strips the newline of echo), stats, get, stats.
func Test_Compat_SeedTranscript(t *testing.T) {
	e := newEnv(t)
	e.mustGet("/stats", "puts:0\ngets:0\ndepth:0\ndepth_high_water:0\nbytes:0\noverflow:0\n")
	e.want(e.post("/put", "H3110"), 200, "")
	e.mustGet("/stats", "puts:1\ngets:0\ndepth:1\ndepth_high_water:1\nbytes:5\noverflow:0\n")
	e.mustGet("/get", "H3110")
	e.mustGet("/stats", "puts:1\ngets:1\ndepth:0\ndepth_high_water:1\nbytes:0\noverflow:0\n")
}

// Test_Compat_RawWire checks on a raw socket that a successful /put and an
// empty /get carry Content-Length: 0, no Content-Type and no body bytes.
func Test_Compat_RawWire(t *testing.T) {
	e := newEnv(t)
	for _, target := range []string{"/put?data=hello", "/get?queue=empty", "/stats?reset=1"} {
		status, header, body := rawGet(t, e.srv.Listener.Addr().String(), target)
		if status != "HTTP/1.1 200 OK" {
			t.Fatalf("%s: status line %q", target, status)
		}
		if header["content-length"] != "0" {
			t.Fatalf("%s: Content-Length %q, want 0 (headers %v)", target, header["content-length"], header)
		}
		if _, ok := header["content-type"]; ok {
			t.Fatalf("%s: unexpected Content-Type %q", target, header["content-type"])
		}
		if body != "" {
			t.Fatalf("%s: body %q, want none", target, body)
		}
	}
	_, header, body := rawGet(t, e.srv.Listener.Addr().String(), "/get")
	if body != "hello" || header["content-length"] != "5" || header["content-type"] != sqType {
		t.Fatalf("/get: %v %q", header, body)
	}
}

// rawGet sends one HTTP/1.1 request with Connection: close and returns the
// status line, the headers (lower-case names) and every byte after them.
func rawGet(t *testing.T, addr, target string) (string, map[string]string, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: q\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	header := map[string]string{}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
		k, v, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ": ")
		header[strings.ToLower(k)] = v
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(status, "\r\n"), header, string(rest)
}
