package reader

import (
	"encoding/json"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	testNow   = time.Unix(1795707366, 500_000_000)
	testTasks = []string{"flaky", "ok"}
)

// TestEnvelope_Parse: which bodies are envelopes (Python-written and
// producer-written ones, in every JSON spelling BaseReader emits), how raw
// bodies are wrapped, and what body the tasks see.
func TestEnvelope_Parse(t *testing.T) {
	type want struct {
		wrapped  bool
		tries    int
		retryOn  float64
		started  int64
		tasks    []string
		data     string // the envelope's data JSON
		encoding string
		payload  string
	}
	all := testTasks
	cases := []struct {
		name string
		body string
		want want
	}{
		// Envelopes BaseReader wrote (transcript §5, spec §6.2).
		{"python stdlib", `{"started": 1795706944, "tasks_left": ["flaky"], "tries": 1, "data": {"a": 1}, "retry_on": 1795706945.943299}`,
			want{tries: 1, retryOn: 1795706945.943299, started: 1795706944, tasks: []string{"flaky"}, data: `{"a": 1}`, payload: `{"a": 1}`}},
		{"python ujson compact with escaped slash", `{"started":1795706944,"tasks_left":["flaky"],"tries":2,"data":{"u":"http:\/\/bit.ly\/x"},"retry_on":1795706945.943299}`,
			want{tries: 2, retryOn: 1795706945.943299, started: 1795706944, tasks: []string{"flaky"}, data: `{"u":"http:\/\/bit.ly\/x"}`, payload: `{"u":"http:\/\/bit.ly\/x"}`}},
		{"retry_on int, other key order", `{"retry_on": 1795706950, "data": [1, 2], "tries": 3, "tasks_left": ["ok", "flaky"], "started": 1}`,
			want{tries: 3, retryOn: 1795706950, started: 1, tasks: []string{"ok", "flaky"}, data: `[1, 2]`, payload: `[1, 2]`}},
		{"retry_on null", `{"started": 1795707361, "tasks_left": ["flaky", "ok"], "tries": 0, "data": {"a": 1}, "retry_on": null}`,
			want{started: 1795707361, tasks: []string{"flaky", "ok"}, data: `{"a": 1}`, payload: `{"a": 1}`}},
		// Producer pre-wrapped (transcript §5 E): tasks_left filled in.
		{"pre-wrapped without tasks_left", `{"data": {"x": 1}, "tries": 0, "retry_on": null, "started": 12345}`,
			want{started: 12345, tasks: all, data: `{"x": 1}`, payload: `{"x": 1}`}},
		{"without started", `{"data": {"q": 1}, "tries": 0, "retry_on": null, "tasks_left": ["nope"]}`,
			want{started: testNow.Unix(), tasks: []string{"nope"}, data: `{"q": 1}`, payload: `{"q": 1}`}},
		{"tries as float", `{"data": "x", "tries": 2.0}`,
			want{tries: 2, started: testNow.Unix(), tasks: all, data: `"x"`, payload: `"x"`}},
		{"empty tasks_left", `{"data": "x", "tries": 1, "tasks_left": []}`,
			want{tries: 1, started: testNow.Unix(), tasks: []string{}, data: `"x"`, payload: `"x"`}},
		// Go-written with a text or binary body.
		{"go text", `{"started":1,"tasks_left":["ok"],"tries":1,"data":"H3110 w\u00f6rld\n","retry_on":2.5,"data_encoding":"text"}`,
			want{tries: 1, retryOn: 2.5, started: 1, tasks: []string{"ok"}, data: `"H3110 w\u00f6rld\n"`, encoding: "text", payload: "H3110 wörld\n"}},
		{"go base64", `{"started":1,"tasks_left":["ok"],"tries":1,"data":"/wA=","retry_on":null,"data_encoding":"base64"}`,
			want{tries: 1, started: 1, tasks: []string{"ok"}, data: `"/wA="`, encoding: "base64", payload: "\xff\x00"}},
		{"unknown data_encoding is data", `{"data":"abc","tries":1,"data_encoding":"rot13"}`,
			want{tries: 1, started: testNow.Unix(), tasks: all, data: `"abc"`, payload: `"abc"`}},

		// Raw messages: wrapped.
		{"json object", `{"a": 1}`, want{wrapped: true, started: testNow.Unix(), tasks: all, data: `{"a": 1}`, payload: `{"a": 1}`}},
		{"json object with trailing newline", "{\"a\": 1}\n", want{wrapped: true, started: testNow.Unix(), tasks: all, data: `{"a": 1}`, payload: "{\"a\": 1}\n"}},
		// Transcript §5 G: data falsy, so the whole object is the data.
		{"falsy data key", `{"data": 0, "b": 2}`, want{wrapped: true, started: testNow.Unix(), tasks: all, data: `{"data": 0, "b": 2}`, payload: `{"data": 0, "b": 2}`}},
		// Transcript §5 F: BaseReader stops on it; here it is a message.
		{"data without tries", `{"data": "payload"}`, want{wrapped: true, started: testNow.Unix(), tasks: all, data: `{"data": "payload"}`, payload: `{"data": "payload"}`}},
		{"tries not a number", `{"data": "p", "tries": "1"}`, want{wrapped: true, started: testNow.Unix(), tasks: all, data: `{"data": "p", "tries": "1"}`, payload: `{"data": "p", "tries": "1"}`}},
		{"json list", `[1,2]`, want{wrapped: true, started: testNow.Unix(), tasks: all, data: `[1,2]`, payload: `[1,2]`}},
		{"json number", `42`, want{wrapped: true, started: testNow.Unix(), tasks: all, data: `42`, payload: `42`}},
		{"json string", `"hi"`, want{wrapped: true, started: testNow.Unix(), tasks: all, data: `"hi"`, payload: `"hi"`}},
		{"text", `H3110`, want{wrapped: true, started: testNow.Unix(), tasks: all, data: `"H3110"`, encoding: "text", payload: "H3110"}},
		{"text with html", `<a href="x">&</a>`, want{wrapped: true, started: testNow.Unix(), tasks: all, data: `"<a href=\"x\">&</a>"`, encoding: "text", payload: `<a href="x">&</a>`}},
		{"binary", "\xff\x00\x01", want{wrapped: true, started: testNow.Unix(), tasks: all, data: `"/wAB"`, encoding: "base64", payload: "\xff\x00\x01"}},
		// Falsy JSON values are carried as text, else they would not read
		// back as an envelope.
		{"zero", `0`, want{wrapped: true, started: testNow.Unix(), tasks: all, data: `"0"`, encoding: "text", payload: "0"}},
		{"empty object", `{}`, want{wrapped: true, started: testNow.Unix(), tasks: all, data: `"{}"`, encoding: "text", payload: "{}"}},
		{"empty list", `[ ]`, want{wrapped: true, started: testNow.Unix(), tasks: all, data: `"[ ]"`, encoding: "text", payload: "[ ]"}},
		{"empty string", `""`, want{wrapped: true, started: testNow.Unix(), tasks: all, data: `"\"\""`, encoding: "text", payload: `""`}},
		{"false", `false`, want{wrapped: true, started: testNow.Unix(), tasks: all, data: `"false"`, encoding: "text", payload: "false"}},
		{"null", `null`, want{wrapped: true, started: testNow.Unix(), tasks: all, data: `"null"`, encoding: "text", payload: "null"}},
		{"broken json object", `{"a": `, want{wrapped: true, started: testNow.Unix(), tasks: all, data: `"{\"a\": "`, encoding: "text", payload: `{"a": `}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env, payload, wrapped := parseMessage([]byte(c.body), testNow, testTasks)
			got := want{wrapped: wrapped, tries: env.tries, retryOn: env.retryOn, started: env.started, tasks: env.tasksLeft,
				data: string(env.data), encoding: env.encoding, payload: string(payload)}
			if got.tasks == nil {
				got.tasks = []string{}
			}
			if c.want.tasks == nil {
				c.want.tasks = []string{}
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("parse %q:\n got %+v\nwant %+v", c.body, got, c.want)
			}
			// What we write reads back the same, with the same payload.
			again, payload2, wrapped2 := parseMessage(env.encode(), testNow.Add(time.Hour), testTasks)
			if wrapped2 || string(payload2) != strings.TrimSpace(string(payload)) && string(payload2) != string(payload) {
				t.Errorf("re-read of %s: wrapped=%v payload %q, want %q", env.encode(), wrapped2, payload2, payload)
			}
			if again.tries != env.tries || again.started != env.started || !reflect.DeepEqual(again.tasksLeft, env.tasksLeft) && len(env.tasksLeft) > 0 {
				t.Errorf("re-read of %s: %+v", env.encode(), again)
			}
		})
	}
}

// TestEnvelope_EncodeTypes: the envelope Go writes has BaseReader's field
// names and types: tries and started integers, retry_on a float (or
// null), tasks_left a list of strings, data any JSON; unknown fields of a
// read envelope are written back.
func TestEnvelope_EncodeTypes(t *testing.T) {
	env, _, _ := parseMessage([]byte(`{"data": {"a": [1, "<&>"]}, "tries": 1, "started": 1795706944, "trace": {"id": 7}, "retry_on": null}`), testNow, testTasks)
	env.tries = 2
	env.tasksLeft = []string{"flaky"}
	env.setRetryOn(time.Unix(1795706945, 943299000))
	got := string(env.encode())
	want := `{"started":1795706944,"tasks_left":["flaky"],"tries":2,"data":{"a": [1, "<&>"]},"retry_on":1795706945.943299,"trace":{"id": 7}}`
	if got != want {
		t.Fatalf("encode:\n got %s\nwant %s", got, want)
	}
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(got))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	if n := m["tries"].(json.Number); strings.ContainsAny(string(n), ".eE") {
		t.Errorf("tries %s is not an integer", n)
	}
	if n := m["retry_on"].(json.Number); !strings.Contains(string(n), ".") {
		t.Errorf("retry_on %s is not a float", n)
	}
	env.retryOn = 0
	if got := string(env.encode()); !strings.Contains(got, `"retry_on":null`) {
		t.Errorf("no retry_on: %s", got)
	}
	// A whole-second retry_on is still written as a float.
	env.setRetryOn(time.Unix(1795706945, 0))
	if got := string(env.encode()); !strings.Contains(got, `"retry_on":1795706945.000000`) {
		t.Errorf("whole-second retry_on: %s", got)
	}
}

// TestEnvelope_PythonReadsIt: the envelope json.loads in Python to the
// types BaseReader expects (int tries and started, float retry_on, list
// of str tasks_left). Without python3 it skips, except in CI (the CI
// environment variable set), where .ci/run installs python3 and a missing
// one is a failure.
func TestEnvelope_PythonReadsIt(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3 not found, and CI is set: .ci/run installs it (%v)", err)
		}
		t.Skip("no python3 (install it to run this test; CI does)")
	}
	env := wrap([]byte("H3110 \xc3\xa9\n"), testNow, testTasks)
	env.tries = 1
	env.tasksLeft = []string{"flaky"}
	env.setRetryOn(testNow.Add(90 * time.Second))
	script := `
import json, sys
m = json.loads(sys.stdin.read())
assert type(m["tries"]) is int, m
assert type(m["started"]) is int, m
assert type(m["retry_on"]) is float, m
assert type(m["tasks_left"]) is list and all(type(t) is str for t in m["tasks_left"]), m
assert m["data"] and m["data"] == "H3110 \u00e9\n", m
assert m["data_encoding"] == "text"
# BaseReader's own test of an envelope and of due-ness:
assert m.get("data") and "tries" in m
print(m["retry_on"] > m["started"])
`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = strings.NewReader(string(env.encode()))
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "True" {
		t.Fatalf("python3 on %s: %v\n%s", env.encode(), err, out)
	}
}

// TestEnvelope_Due: retry_on in the past or within the slack is due;
// otherwise the wait is what is left.
func TestEnvelope_Due(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, c := range []struct {
		retryOn float64
		ok      bool
		wait    time.Duration
	}{
		{0, true, 0},
		{999.5, true, 0},
		{1000.2, true, 0},
		{1002.5, false, 2500 * time.Millisecond},
	} {
		e := envelope{retryOn: c.retryOn}
		ok, wait := e.due(now, dueSlack)
		if ok != c.ok || (wait-c.wait).Abs() > time.Millisecond {
			t.Errorf("retry_on %v: due %v wait %v, want %v %v", c.retryOn, ok, wait, c.ok, c.wait)
		}
	}
}

// TestTruthy: Python's truth value of JSON values.
func TestTruthy(t *testing.T) {
	for s, want := range map[string]bool{
		`null`: false, `false`: false, `true`: true, `0`: false, `0.0`: false, `-0`: false, `0e3`: false,
		`1`: true, `-1.5`: true, `""`: false, `"0"`: true, `" "`: true, `[]`: false, `[ ]`: false, `[0]`: true,
		`{}`: false, `{ }`: false, `{"a":0}`: true,
	} {
		if got := truthy(json.RawMessage(s)); got != want {
			t.Errorf("truthy(%s) = %v, want %v", s, got, want)
		}
	}
}
