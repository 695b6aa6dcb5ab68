package tohttp

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/reader"
)

// newTestForwarder forwards to an endpoint that answers the status code
// the message names ("503"), or waits for the client to go ("hang").
func newTestForwarder(t *testing.T) *Forwarder {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) == "hang" {
			<-r.Context().Done()
			return
		}
		code, _ := strconv.Atoi(string(b))
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	cfg := DefaultConfig()
	cfg.Reader.Addrs = []string{"http://127.0.0.1:1"}
	cfg.URL, cfg.Drop, cfg.MaxAttempts, cfg.Timeout = srv.URL, true, 3, 100*time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSend_ClassifiesAnswers(t *testing.T) {
	f := newTestForwarder(t)
	for _, tc := range []struct {
		body     string
		attempt  int
		retry    bool // the task fails: the reader gives the message back
		dropped  int64
		response string
	}{
		{"200", 1, false, 0, "2xx"},
		{"204", 1, false, 0, "2xx"},
		{"503", 1, true, 0, "5xx"},
		{"408", 1, true, 0, "4xx"},
		{"429", 2, true, 0, "4xx"},
		{"hang", 1, true, 0, "timeout"},
		{"400", 1, false, 1, "4xx"},
		{"404", 1, false, 2, "4xx"},
		{"503", 3, false, 3, "5xx"}, // the last attempt
		{"200", 4, false, 4, ""},    // failed for good before: not sent again
	} {
		before := f.Stats()
		err := f.send(context.Background(), &reader.Message{ID: "1", Body: []byte(tc.body), Attempts: tc.attempt})
		after := f.Stats()
		if (err != nil) != tc.retry {
			t.Errorf("%s attempt %d: err %v, want a retry: %v", tc.body, tc.attempt, err, tc.retry)
		}
		if after.Dropped != tc.dropped {
			t.Errorf("%s attempt %d: %d dropped, want %d", tc.body, tc.attempt, after.Dropped, tc.dropped)
		}
		if tc.response != "" && after.Requests[tc.response] != before.Requests[tc.response]+1 {
			t.Errorf("%s attempt %d: requests %v -> %v, want one more %s", tc.body, tc.attempt, before.Requests, after.Requests, tc.response)
		}
	}
}

func TestValidate_RefusesBadConfigurationsOnOneLine(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Method, cfg.URL, cfg.MaxAttempts, cfg.Timeout, cfg.DeadLetter = http.MethodGet, "http://h/x", 0, 0, "default"
	err := cfg.Validate()
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Validate: %v", err)
	}
	for _, want := range []string{"%s", "--timeout", "--max-attempts", "--dead-letter", "--queue-addrs"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not mention %s", err, want)
		}
	}
}

func TestEscape_SpacesAsPercent20(t *testing.T) {
	if got := escape([]byte(`a b+c&d`)); got != "a%20b%2Bc%26d" {
		t.Fatalf("escape: %s", got)
	}
}

func TestRequest_GetTemplateCarriesTheMessageInTheURL(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Method + " " + r.URL.RequestURI()
	}))
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.Reader.Addrs = []string{"http://127.0.0.1:1"}
	cfg.Method, cfg.URL = http.MethodGet, srv.URL+"/put?queue=copy&data=%s"
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.request(context.Background(), []byte(`{"a":"b c"}`)); err != nil {
		t.Fatal(err)
	}
	if g, want := <-got, "GET /put?queue=copy&data=%7B%22a%22%3A%22b%20c%22%7D"; g != want {
		t.Fatalf("%s, want %s", g, want)
	}
}
