package cli

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// TestParse_SimplehttpStyleAndEnvironment: names are case-insensitive
// with "_" as "-", both --name=value and --name value work, and unset flags
// come from QUORUMQ_* variables while the command line wins.
func TestParse_SimplehttpStyleAndEnvironment(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		depth int64
		dir   string
		wait  time.Duration
	}{
		{name: "equals", args: []string{"--max-depth=5"}, depth: 5, dir: "d", wait: time.Second},
		{name: "separate value", args: []string{"--max-depth", "6"}, depth: 6, dir: "d", wait: time.Second},
		{name: "case and underscore", args: []string{"--MAX_DEPTH=7"}, depth: 7, dir: "d", wait: time.Second},
		{name: "environment", env: map[string]string{"QUORUMQ_MAX_DEPTH": "8", "QUORUMQ_DATA_DIR": "/x", "QUORUMQ_FORWARD_TIMEOUT": "3s"}, depth: 8, dir: "/x", wait: 3 * time.Second},
		{name: "flag beats environment", args: []string{"--max-depth=9"}, env: map[string]string{"QUORUMQ_MAX_DEPTH": "8"}, depth: 9, dir: "d", wait: time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			depth := fs.Int64("max-depth", 0, "")
			dir := fs.String("data-dir", "d", "")
			wait := fs.Duration("forward-timeout", time.Second, "")
			if err := Parse(fs, tc.args, io.Discard, "QUORUMQ_"); err != nil {
				t.Fatal(err)
			}
			if *depth != tc.depth || *dir != tc.dir || *wait != tc.wait {
				t.Fatalf("got depth=%d dir=%q wait=%v", *depth, *dir, *wait)
			}
		})
	}
}

// TestParse_BadInput_Errors: unknown flags, stray arguments and bad
// environment values are errors, not silently ignored.
func TestParse_BadInput_Errors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  string
	}{
		{name: "unknown flag", args: []string{"--bogus=1"}},
		{name: "stray argument", args: []string{"extra"}},
		{name: "bad value", args: []string{"--max-depth=abc"}},
		{name: "bad environment value", env: "abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("QUORUMQ_MAX_DEPTH", tc.env)
			}
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.Int64("max-depth", 0, "")
			if err := Parse(fs, tc.args, io.Discard, "QUORUMQ_"); err == nil {
				t.Fatal("expected an error")
			}
		})
	}
}

// TestMark_KeepsTheMessageAndMatchesBothErrors: a marked error reads as
// the original and matches both it and the mark.
func TestMark_KeepsTheMessageAndMatchesBothErrors(t *testing.T) {
	kind, cause := errors.New("invalid"), errors.New("--batch=0: want at least 1")
	err := Mark(cause, kind)
	if err.Error() != cause.Error() || !errors.Is(err, kind) || !errors.Is(err, cause) {
		t.Fatalf("Mark: %q, is kind %v, is cause %v", err, errors.Is(err, kind), errors.Is(err, cause))
	}
	if Mark(nil, kind) != nil {
		t.Fatal("Mark(nil) is not nil")
	}
}

// TestProblems_NamesEveryProblemInOneMarkedError: no problem is no
// error; several come out together, in order, marked.
func TestProblems_NamesEveryProblemInOneMarkedError(t *testing.T) {
	kind := errors.New("invalid")
	var p Problems
	if p.Err(kind) != nil {
		t.Fatal("no problems gave an error")
	}
	p.Add("no --queue-addrs")
	p.Add("--interval=%v must be positive", -1)
	err := p.Err(kind)
	if err == nil || err.Error() != "no --queue-addrs; --interval=-1 must be positive" || !errors.Is(err, kind) {
		t.Fatalf("Err: %v (is kind %v)", err, errors.Is(err, kind))
	}
}

// TestParse_SharedVariables: --token and --tls-ca come from the command
// line first, then the program's own variable, then QUORUMQ_TOKEN and
// QUORUMQ_TLS_CA; other flags never read a shared variable.
func TestParse_SharedVariables(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		token, ca string
	}{
		{name: "nothing"},
		{name: "shared", env: map[string]string{EnvToken: "shared", EnvTLSCA: "ca.pem"}, token: "shared", ca: "ca.pem"},
		{name: "own variable beats shared", env: map[string]string{EnvToken: "shared", "QUORUMQ_T_TOKEN": "own"}, token: "own"},
		{name: "flag beats both", args: []string{"--token=flag"}, env: map[string]string{EnvToken: "shared", "QUORUMQ_T_TOKEN": "own"}, token: "flag"},
		{name: "empty shared is unset", env: map[string]string{EnvToken: ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{EnvToken, EnvTLSCA, "QUORUMQ_T_TOKEN", "QUORUMQ_T_TLS_CA"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			token := fs.String("token", "", "")
			ca := fs.String("tls-ca", "", "")
			other := fs.String("queue", "", "")
			if err := Parse(fs, tc.args, io.Discard, "QUORUMQ_T_"); err != nil {
				t.Fatal(err)
			}
			if *token != tc.token || *ca != tc.ca || *other != "" {
				t.Fatalf("token %q tls-ca %q queue %q, want %q %q", *token, *ca, *other, tc.token, tc.ca)
			}
		})
	}
}

// TestParse_BadTokenVariableIsNotShown: an error about a token variable
// does not repeat its value.
func TestParse_BadTokenVariableIsNotShown(t *testing.T) {
	t.Setenv("QUORUMQ_T_TOKEN", "s3cret")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Func("token", "", func(string) error { return errors.New("refused") })
	err := Parse(fs, nil, io.Discard, "QUORUMQ_T_")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error %v", err)
	}
	t.Setenv("QUORUMQ_T_TOKEN", "")
	os.Unsetenv("QUORUMQ_T_TOKEN")
	t.Setenv(EnvToken, "s3cret")
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Func("token", "", func(string) error { return errors.New("refused") })
	err = Parse(fs, nil, io.Discard, "QUORUMQ_T_")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error %v", err)
	}
}

// TestLogger_MultiLineValuesComeOutOnOneLine: an error made of several
// lines (hashicorp's multierror, joined errors) is logged on one line,
// in both formats, without its headers and bullets.
func TestLogger_MultiLineValuesComeOutOnOneLine(t *testing.T) {
	join := errors.Join(
		errors.New("1 error occurred:\n\t* failed to join 127.0.0.1:9011: dial tcp 127.0.0.1:9011: connect: connection refused\n\n"),
		errors.New("1 error occurred:\n\t* failed to join 127.0.0.1:9021: dial tcp 127.0.0.1:9021: connect: connection refused\n\n"))
	want := "failed to join 127.0.0.1:9011: dial tcp 127.0.0.1:9011: connect: connection refused; failed to join 127.0.0.1:9021: dial tcp 127.0.0.1:9021: connect: connection refused"
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		log, err := LogFlags{Level: "info", Format: format}.Logger(&buf)
		if err != nil {
			t.Fatal(err)
		}
		log.With("note", "a\nb").Warn("cannot reach any gossip seed yet; retrying", "err", join, "plain", "one line", "n", 3)
		out := buf.String()
		if strings.Count(out, "\n") != 1 || strings.Contains(out, `\n`) || strings.Contains(out, `\t`) {
			t.Errorf("%s: not one clean line: %s", format, out)
		}
		for _, s := range []string{want, "a; b", "one line"} {
			if !strings.Contains(out, s) {
				t.Errorf("%s: %s lacks %q", format, out, s)
			}
		}
	}
}
