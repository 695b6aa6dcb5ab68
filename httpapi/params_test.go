package httpapi

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
)

// Test_Query_Parse checks libevent 1.4's query rules piece by piece.
func Test_Query_Parse(t *testing.T) {
	tests := []struct {
		raw  string
		want [][2]string
	}{
		{"", nil},
		{"a=1", [][2]string{{"a", "1"}}},
		{"a=1&b=", [][2]string{{"a", "1"}, {"b", ""}}},
		{"a=1&", [][2]string{{"a", "1"}}},
		{"foo&data=x", nil},
		{"a=1&foo&data=x", [][2]string{{"a", "1"}}},
		{"a=1&&b=2", [][2]string{{"a", "1"}}},
		{"&a=1", nil},
		{"=x", [][2]string{{"", "x"}}},
		{"a=b=c", [][2]string{{"a", "b=c"}}},
		{"a=x+y%20z%2B", [][2]string{{"a", "x y z+"}}},
		{"a=%zz%4%", [][2]string{{"a", "%zz%4%"}}},
		{"a=%4a%4A", [][2]string{{"a", "JJ"}}},
		{"a=b%00c&d=e", [][2]string{{"a", "b"}, {"d", "e"}}},
		{"a=b\x00c&d=e", [][2]string{{"a", "b"}}},
		{"k%61=v", [][2]string{{"k%61", "v"}}},
		{"a=1;b=2", [][2]string{{"a", "1;b=2"}}},
		{"a=x?y", [][2]string{{"a", "x?y"}}},
		{"a=%E2%82%AC", [][2]string{{"a", "€"}}},
	}
	for _, tc := range tests {
		if got := pairs(parseQuery(tc.raw)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseQuery(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

// pairs is a query's keys and decoded values.
func pairs(p params) [][2]string {
	var out [][2]string
	for _, kv := range p {
		out = append(out, [2]string{kv.key, kv.value})
	}
	return out
}

// Test_Query_Lookup checks case-insensitive, first-wins lookup (ASCII
// folding only, as strcasecmp).
func Test_Query_Lookup(t *testing.T) {
	p := parseQuery("DATA=upper&data=lower&Items=3&\u017fep=long-s")
	if v, _ := p.get("data"); v != "upper" {
		t.Errorf("data = %q, want upper", v)
	}
	if v, _ := p.get("ITEMS"); v != "3" {
		t.Errorf("ITEMS = %q, want 3", v)
	}
	if _, ok := p.get("sep"); ok {
		t.Error("U+017F matched ASCII s")
	}
	if _, ok := p.get("missing"); ok {
		t.Error("missing found")
	}
}

// Test_Query_Atoi checks C atoi on items=.
func Test_Query_Atoi(t *testing.T) {
	for in, want := range map[string]int{
		"3": 3, "3abc": 3, "abc": 0, "": 0, " 7": 7, "\t\n+5": 5, "-2": -2, "--2": 0, "+-2": 0,
		"0x10": 0, "007": 7, "99999999999999999999": 2147483647, "-99999999999999999999": -2147483647, " ": 0,
	} {
		if got := atoi(in); got != want {
			t.Errorf("atoi(%q) = %d, want %d", in, got, want)
		}
	}
}

// Test_Split_Records checks /mput splitting: spec 2.6 with empty records
// skipped.
func Test_Split_Records(t *testing.T) {
	tests := []struct {
		data, sep string
		want      []string
	}{
		{"p1\np2\n", "\n", []string{"p1", "p2"}},
		{"m1\nm2\nm3", "\n", []string{"m1", "m2", "m3"}},
		{"s1||s2", "||", []string{"s1", "s2"}},
		{"a\n\nb", "\n", []string{"a", "b"}},
		{"\nabc", "\n", []string{"abc"}},
		{"abc\n\n", "\n", []string{"abc"}},
		{"\n\n\n", "\n", nil},
		{"", "\n", nil},
		{"aaa", "aa", []string{"a"}},
		{"abc", ";", []string{"abc"}},
		{"a\r\nb", "\n", []string{"a\r", "b"}},
	}
	for _, tc := range tests {
		var got []string
		for _, r := range splitRecords([]byte(tc.data), []byte(tc.sep)) {
			got = append(got, string(r))
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitRecords(%q, %q) = %q, want %q", tc.data, tc.sep, got, tc.want)
		}
	}
}

// Test_Join_Items checks the "index < items-1" rule of spec 2.5.
func Test_Join_Items(t *testing.T) {
	msgs := func(ss ...string) []fsm.Message {
		var out []fsm.Message
		for _, s := range ss {
			out = append(out, fsm.Message{Data: []byte(s)})
		}
		return out
	}
	tests := []struct {
		msgs  []fsm.Message
		sep   string
		items int
		want  string
	}{
		{msgs("a", "b"), "\n", 3, "a\nb\n"},
		{msgs("a", "b"), "\n", 2, "a\nb"},
		{msgs("b", "c"), ",", 5, "b,c,"},
		{msgs("a"), "\n", 1, "a"},
		{nil, "\n", 5, ""},
		{msgs("a", "b"), "", 5, "ab"},
	}
	for _, tc := range tests {
		if got := string(joinItems(tc.msgs, tc.sep, tc.items)); got != tc.want {
			t.Errorf("joinItems(items=%d, sep=%q) = %q, want %q", tc.items, tc.sep, got, tc.want)
		}
	}
}

// Test_Format_Duration checks the short duration format of caps and configs.
func Test_Format_Duration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 30 * time.Second: "30s", 5 * time.Minute: "5m", 12 * time.Hour: "12h", 168 * time.Hour: "168h",
		90 * time.Second: "1m30s", time.Hour + time.Second: "1h0m1s", 1500 * time.Millisecond: "1.5s",
	} {
		if got := api.FormatDuration(d); got != want {
			t.Errorf("api.FormatDuration(%s) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(api.FormatDuration(d)); err != nil || back != d {
			t.Errorf("api.FormatDuration(%s) does not parse back: %v %v", d, back, err)
		}
	}
}

// Test_Truncate_UTF8 checks that reason= is cut on a rune boundary.
func Test_Truncate_UTF8(t *testing.T) {
	if got := truncateUTF8("aé", 2); got != "a" {
		t.Errorf("got %q", got)
	}
	if got := truncateUTF8("abc", 2); got != "ab" {
		t.Errorf("got %q", got)
	}
	if got := truncateUTF8("ab", 2); got != "ab" {
		t.Errorf("got %q", got)
	}
}

// refParse is a second, literal transcription of evhttp_parse_query and
// evhttp_decode_uri_internal (strdup, strsep, strtol), the fuzz oracle.
func refParse(query string) params {
	line := query
	if i := strings.IndexByte(line, 0); i >= 0 { // strdup copies a C string
		line = line[:i]
	}
	var out params
	p, pNull := line, false
	for !pNull && p != "" {
		var argument string
		if i := strings.IndexByte(p, '&'); i >= 0 {
			argument, p = p[:i], p[i+1:]
		} else {
			argument, pNull = p, true
		}
		i := strings.IndexByte(argument, '=')
		if i < 0 {
			break
		}
		key, value := argument[:i], argument[i+1:]
		var dec []byte
		for j := 0; j < len(value); j++ {
			c := value[j]
			if c == '+' {
				c = ' '
			} else if c == '%' && j+2 < len(value) && strings.ContainsRune("0123456789abcdefABCDEF", rune(value[j+1])) &&
				strings.ContainsRune("0123456789abcdefABCDEF", rune(value[j+2])) {
				n, _ := strconv.ParseUint(value[j+1:j+3], 16, 8)
				c = byte(n)
				j += 2
			}
			dec = append(dec, c)
		}
		if k := bytes.IndexByte(dec, 0); k >= 0 { // a C string
			dec = dec[:k]
		}
		out = append(out, param{key: key, value: string(dec), raw: value})
	}
	return out
}

// FuzzParse fuzzes query parsing, the typed accessors, /mput splitting and
// /mget joining, and then the /put, /mput and /mget handlers themselves
// with the same query and body: no panics, and
//   - parseQuery agrees with a literal transcription of libevent;
//   - lookup returns the first case-insensitively equal key's value;
//   - values hold no NUL;
//   - /mput records are never empty, never contain the separator, and are
//     exactly the non-empty pieces of bytes.Split;
//   - /mget output has exactly min(n, items-1) separators added;
//   - handler answers are among the documented codes, and error bodies
//     are one line ending in "\n".
func FuzzParse(f *testing.F) {
	for _, seed := range []struct {
		route      byte
		query      string
		body       []byte
		post       bool
		name, sep2 string
	}{
		{0, "data=hello", nil, false, "data", ""},
		{0, "foo&data=x", nil, false, "data", ""},
		{0, "DATA=upper&data=lower", nil, false, "data", ""},
		{0, "data=a+b%20c%2Bd", nil, false, "data", ""},
		{0, "", []byte("posted body"), true, "data", ""},
		{0, "data=QUERY", []byte("BODY"), true, "data", ""},
		{0, "data=x&id=k1&delay=1s&queue=q", nil, false, "id", ""},
		{1, "data=m1%0Am2%0Am3", nil, false, "separator", "\n"},
		{1, "data=s1||s2&separator=%7C%7C", nil, false, "separator", "||"},
		{1, "", []byte("p1\np2\n"), true, "separator", "\n"},
		{1, "data=a%0A%0Ab", nil, false, "separator", "\n"},
		{1, "data=abc&separator=", nil, false, "separator", ""},
		{1, "separator=aa", []byte("aaaaa"), true, "separator", "aa"},
		{2, "items=3", nil, false, "items", ""},
		{2, "items=3abc&separator=,", nil, false, "items", ","},
		{2, "items=abc", nil, false, "items", ""},
		{2, "items=5&format=json&lease=1m", nil, false, "lease", ""},
		{2, "items=2&wait=1ms&lease=0", nil, false, "wait", ""},
		{0, "a=%00b&data=%zz%4", nil, false, "a", ""},
	} {
		f.Add(seed.route, seed.query, seed.body, seed.post, seed.name, seed.sep2)
	}

	reg := prometheus.NewRegistry()
	q := newFSMQueue(time.Now)
	o := DefaultOptions()
	o.Queue, o.Cluster, o.Registerer, o.Gatherer = q, &fakeCluster{}, reg, reg
	o.MaxWait, o.MaxMsgSize, o.MaxBodySize = time.Millisecond, 1<<10, 4<<10
	o.Limits = fsm.Limits{MaxDepth: 1000, Policy: fsm.OverflowEvictOldest}
	o.Logger = discardLogger()
	h, err := NewQueueHandler(o)
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, route byte, query string, body []byte, post bool, name, sep string) {
		// Parsing against the oracle.
		p := parseQuery(query)
		if want := refParse(query); !reflect.DeepEqual(p, want) {
			t.Fatalf("parseQuery(%q) = %q, oracle %q", query, p, want)
		}
		for _, kv := range p {
			if strings.IndexByte(kv.value, 0) >= 0 {
				t.Fatalf("value %q holds a NUL", kv.value)
			}
		}
		// First-wins, ASCII-case-insensitive lookup.
		v, ok := p.get(name)
		wantV, wantOK := "", false
		for _, kv := range p {
			if asciiLower(kv.key) == asciiLower(name) {
				wantV, wantOK = kv.value, true
				break
			}
		}
		if v != wantV || ok != wantOK {
			t.Fatalf("get(%q) = %q %v, want %q %v", name, v, ok, wantV, wantOK)
		}
		// The typed accessors never panic.
		p.queue()
		p.anyQueue()
		p.topic()
		p.duration(name, MaxLease)
		p.uint(name, 1<<32)
		p.flag(name)
		p.reqID()
		p.ids()

		// /mput splitting.
		if sep != "" {
			recs := splitRecords(body, []byte(sep))
			var want [][]byte
			for _, piece := range bytes.Split(body, []byte(sep)) {
				if len(piece) > 0 {
					want = append(want, piece)
				}
			}
			if len(recs) != len(want) {
				t.Fatalf("split(%q, %q) = %q, want %q", body, sep, recs, want)
			}
			for i, r := range recs {
				if len(r) == 0 || bytes.Contains(r, []byte(sep)) || !bytes.Equal(r, want[i]) || !bytes.Contains(body, r) {
					t.Fatalf("split(%q, %q) record %d = %q, want %q", body, sep, i, r, want[i])
				}
			}
			// /mget joining of those records.
			items := atoi(name)
			if items > 0 {
				msgs := make([]fsm.Message, len(recs))
				size := 0
				for i, r := range recs {
					msgs[i] = fsm.Message{Data: r}
					size += len(r)
				}
				out := joinItems(msgs, sep, items)
				if n := min(len(recs), items-1); len(out) != size+n*len(sep) {
					t.Fatalf("join of %d records, items=%d: %d bytes, want %d", len(recs), items, len(out), size+n*len(sep))
				}
			}
		}

		// The handlers, with this query and body.
		path := []string{"/put", "/mput", "/mget"}[int(route)%3]
		req := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: path, RawQuery: query}, Header: http.Header{}, Host: "q"}
		if post {
			req.Method = http.MethodPost
			req.Body = httpNoBody(body)
			req.ContentLength = int64(len(body))
		}
		req = req.WithContext(t.Context())
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200:
		case 400, 413, api.StatusQueueFull:
			b := rec.Body.String()
			if !strings.HasSuffix(b, "\n") || strings.Count(b, "\n") != 1 {
				t.Fatalf("%s?%s: error body %q is not one line", path, query, b)
			}
		default:
			t.Fatalf("%s?%s: unexpected status %d %q", path, query, rec.Code, rec.Body)
		}
	})
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

func httpNoBody(b []byte) *readCloser { return &readCloser{bytes.NewReader(b)} }

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// Test_Query_StrictValues_RefuseWhatLibeventWouldCut checks the strict
// accessors: a name with an escaped NUL, a malformed escape or invalid
// UTF-8, and a data=, id= or separator= with an escaped NUL, are 400s
// naming the parameter and the reason, never a shorter value.
func Test_Query_StrictValues_RefuseWhatLibeventWouldCut(t *testing.T) {
	tests := []struct {
		query string
		get   func(params) (string, error)
		kind  *api.Error
		want  string // the value, or the error text
	}{
		{"queue=a%00b", params.queue, api.ErrInvalidQueueName, `invalid queue="a%00b": %00 at byte 1 is a NUL byte; want [A-Za-z0-9._-]{1,64}`},
		{"queue=%00", params.anyQueue, api.ErrInvalidQueueName, `invalid queue="%00": %00 at byte 0 is a NUL byte; want [A-Za-z0-9._-]{1,64}`},
		{"queue=a%zz", params.queue, api.ErrInvalidQueueName, `invalid queue="a%zz": the % at byte 1 is not followed by two hex digits; want [A-Za-z0-9._-]{1,64}`},
		{"queue=a%4", params.queue, api.ErrInvalidQueueName, `invalid queue="a%4": the % at byte 1 is not followed by two hex digits; want [A-Za-z0-9._-]{1,64}`},
		{"queue=%ff", params.queue, api.ErrInvalidQueueName, `invalid queue="%ff": it is not valid UTF-8; want [A-Za-z0-9._-]{1,64}`},
		{"QUEUE=a%2Eb", params.queue, nil, "a.b"},
		{"queue=%2500", params.queue, api.ErrInvalidQueueName, `invalid queue name "%00": want [A-Za-z0-9._-]{1,64}`},
		{"topic=t%00x", params.topic, api.ErrInvalidTopicName, `invalid topic="t%00x": %00 at byte 1 is a NUL byte; want [A-Za-z0-9._-]{1,64}`},
		{"topic=%e2%82", params.topic, api.ErrInvalidTopicName, `invalid topic="%e2%82": it is not valid UTF-8; want [A-Za-z0-9._-]{1,64}`},
		{"", params.topic, nil, "default"},
		{"id=k%00", params.reqID, api.ErrBadRequest, `invalid id="k%00": %00 at byte 1 is a NUL byte`},
		{"id=k%zz", params.reqID, nil, "k%zz"},
	}
	for _, tc := range tests {
		got, err := tc.get(parseQuery(tc.query))
		switch {
		case tc.kind == nil && (err != nil || got != tc.want):
			t.Errorf("%s: got %q, %v; want %q", tc.query, got, err, tc.want)
		case tc.kind != nil && (!errors.Is(err, tc.kind) && err != tc.kind || err.Error() != tc.want):
			t.Errorf("%s: got %q, %v; want %s %q", tc.query, got, err, tc.kind.Token, tc.want)
		}
	}
}

// Test_Handlers_StrictValues_400AndNothingStored checks the handlers
// that take names, data and separators: each refusal is a 400 with its
// reason, and nothing is stored anywhere.
func Test_Handlers_StrictValues_400AndNothingStored(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ target, body string }{
		{"/put?data=x&queue=a%00b", `invalid queue="a%00b": %00 at byte 1 is a NUL byte; want [A-Za-z0-9._-]{1,64}`},
		{"/mput?data=x&queue=a%zz", `invalid queue="a%zz": the % at byte 1 is not followed by two hex digits; want [A-Za-z0-9._-]{1,64}`},
		{"/put?data=ab%00cd", `invalid data="ab%00cd": %00 at byte 2 is a NUL byte; send binary data as a POST body`},
		{"/mput?data=a%00b", `invalid data="a%00b": %00 at byte 1 is a NUL byte; send binary data as a POST body`},
		{"/mput?data=a,b&separator=,%00", `invalid separator=",%00": %00 at byte 1 is a NUL byte`},
		{"/put?data=x&id=k%00", `invalid id="k%00": %00 at byte 1 is a NUL byte`},
		{"/config?queue=q&dead_letter=d%00x", `invalid dead_letter="d%00x": %00 at byte 1 is a NUL byte; want [A-Za-z0-9._-]{1,64}`},
		{"/get?queue=%ff", `invalid queue="%ff": it is not valid UTF-8; want [A-Za-z0-9._-]{1,64}`},
	} {
		e.want(e.get(tc.target), 400, tc.body+"\n")
	}
	if qs := e.q.Queues(); len(qs) != 0 {
		t.Fatalf("queues %q exist after refused requests", qs)
	}
	// What libevent keeps literally stays a message's data: only names
	// are strict about escapes, and bytes that are not UTF-8 are data.
	e.mustPut("/put?data=100%25%zz%4")
	e.mustPut("/put?data=%ff%fe")
	e.mustGet("/dump", "100%%zz%4\n\xff\xfe\n")
}
