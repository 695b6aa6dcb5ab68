package pstohttp

import (
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Test_Flags_ReferenceOptions: repeated --pubsub-url replaces the default,
// GET and POST destinations keep their interleaved command-line order,
// --max-silence takes seconds (as the reference) or a duration, -1 is off.
func Test_Flags_ReferenceOptions(t *testing.T) {
	parse := func(args ...string) Config {
		t.Helper()
		cfg := DefaultConfig()
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg.RegisterFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := parse()
	if joined(cfg.Sources) != DefaultSource || cfg.MaxSilence > 0 || cfg.MinLineLength != 3 || cfg.BufferSize != 10000 || cfg.StatsInterval != 10*time.Second || cfg.RoundRobin || cfg.MaxRetries != -1 {
		t.Fatalf("defaults: %+v", cfg)
	}
	cfg = parse(
		"--pubsub-url=http://a:8080/sub?multipart=0", "--pubsub-url=http://b:8080/sub?multipart=0",
		"--destination-post-url=http://p1/pub", "--destination-get-url=http://g1/put?data=%s", "--destination-post-url=http://p2/pub",
		"--round-robin", "--max-silence=2", "--min-line-length=0", "--buffer-size=5", "--source-timeout=1m",
		"--stats-interval=500ms", "--idempotent-put", "--max-retries=3", "--retry-max-backoff=2",
	)
	if joined(cfg.Sources) != "http://a:8080/sub?multipart=0|http://b:8080/sub?multipart=0" {
		t.Fatalf("sources %v", cfg.Sources)
	}
	want := []Destination{{http.MethodPost, "http://p1/pub"}, {http.MethodGet, "http://g1/put?data=%s"}, {http.MethodPost, "http://p2/pub"}}
	if len(cfg.Destinations) != 3 || cfg.Destinations[0] != want[0] || cfg.Destinations[1] != want[1] || cfg.Destinations[2] != want[2] {
		t.Fatalf("destinations %v", cfg.Destinations)
	}
	if !cfg.RoundRobin || cfg.MaxSilence != 2*time.Second || cfg.MinLineLength != 0 || cfg.BufferSize != 5 || cfg.SourceTimeout != time.Minute ||
		cfg.StatsInterval != 500*time.Millisecond || !cfg.IdempotentPut || cfg.MaxRetries != 3 || cfg.RetryBackoff.Max != 2*time.Second {
		t.Fatalf("parsed %+v", cfg)
	}
	if cfg := parse("--max-silence=-1"); cfg.MaxSilence > 0 {
		t.Fatalf("-1: %v", cfg.MaxSilence)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := DefaultConfig()
	c.RegisterFlags(fs)
	for _, bad := range []string{"--max-silence=soon", "--pubsub-url=ftp://x/sub"} {
		if err := fs.Parse([]string{bad}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// Test_Config_Validation: the reference's start-up errors (no destination,
// a GET URL without %s) and malformed values are refused.
func Test_Config_Validation(t *testing.T) {
	good := Destination{Method: http.MethodPost, URL: "http://h/pub"}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no destination", func(c *Config) { c.Destinations = nil }, "--destination-get-url or --destination-post-url required"},
		{"get without %s", func(c *Config) { c.Destinations = []Destination{{Method: http.MethodGet, URL: "http://h/put"}} }, "must contain %s"},
		{"bad get url", func(c *Config) { c.Destinations = []Destination{{Method: http.MethodGet, URL: "h/put?data=%s"}} }, "http://"},
		{"bad post url", func(c *Config) { c.Destinations = []Destination{{Method: http.MethodPost, URL: "http:///pub"}} }, "no host"},
		{"no source", func(c *Config) { c.Sources = nil }, "no --pubsub-url"},
		{"negative buffer", func(c *Config) { c.BufferSize = -1 }, "--buffer-size"},
		{"bad retries", func(c *Config) { c.MaxRetries = -2 }, "--max-retries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Destinations = []Destination{good}
			tc.edit(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if tc.name == "no destination" && !errors.Is(err, ErrNoDestination) {
				t.Fatalf("not ErrNoDestination: %v", err)
			}
		})
	}
	cfg := DefaultConfig()
	cfg.Destinations = []Destination{good}
	if _, err := New(cfg); err != nil {
		t.Fatal(err)
	}
}

// Test_PutID_Targets: --idempotent-put applies to /put paths without
// their own id=, with the right separator.
func Test_PutID_Targets(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
		sep string
	}{
		{"http://h/put?data=%s", true, "&"},
		{"http://h/put", true, "?"},
		{"http://h/put?queue=q&", true, ""},
		{"http://h/put?data=%s&ID=mine", false, ""},
		{"http://h/pub", false, ""},
		{"http://h/mput", false, ""},
	} {
		ok, sep := putIDFor(Destination{Method: http.MethodGet, URL: tc.url})
		if ok != tc.ok || sep != tc.sep {
			t.Errorf("%s: %v %q, want %v %q", tc.url, ok, sep, tc.ok, tc.sep)
		}
	}
}

// Test_Flags_HelpShowsTheRealDefault: a duration flag's default is shown
// as the Config holds it; only the flags that a value <= 0 turns off show
// such a value as their off value, and the ones that must be positive show
// 0 as 0s, not as an off they do not have.
func Test_Flags_HelpShowsTheRealDefault(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		flag string
		want string
	}{
		{"request timeout default", func(*Config) {}, "request-timeout", "10s"},
		{"zero request timeout is not off", func(c *Config) { c.RequestTimeout = 0 }, "request-timeout", "0s"},
		{"negative drain timeout as it is", func(c *Config) { c.DrainTimeout = -time.Second }, "drain-timeout", "-1s"},
		{"zero retry backoff is not off", func(c *Config) { c.RetryBackoff.Max = 0 }, "retry-max-backoff", "0s"},
		{"reconnect backoff in minutes", func(c *Config) { c.ReconnectBackoff.Max = 90 * time.Second }, "reconnect-max-backoff", "1m30s"},
		{"max silence default is never", func(*Config) {}, "max-silence", "-1"},
		{"max silence in hours", func(c *Config) { c.MaxSilence = time.Hour }, "max-silence", "1h"},
		{"zero source timeout is off", func(*Config) {}, "source-timeout", "0"},
		{"stats interval default", func(*Config) {}, "stats-interval", "10s"},
		{"zero stats interval is only at exit", func(c *Config) { c.StatsInterval = 0 }, "stats-interval", "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.edit(&cfg)
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			cfg.RegisterFlags(fs)
			f := fs.Lookup(tc.flag)
			if f.DefValue != tc.want {
				t.Fatalf("--%s default %q, want %q", tc.flag, f.DefValue, tc.want)
			}
			if f.DefValue == "0s" && strings.Contains(f.Usage, "off") {
				t.Fatalf("--%s calls a value off: %s", tc.flag, f.Usage)
			}
		})
	}
}
