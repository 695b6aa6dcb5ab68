package reader

import (
	"flag"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/client/clienttest"
)

// TestConfig_RegisterFlags_ParsesIntoConfig: the flags write into the
// Config they were registered from; --queue-url replaces the default
// addresses, repeated or comma-separated; what is not given keeps the
// program's default, and the fields without a flag are left alone.
func TestConfig_RegisterFlags_ParsesIntoConfig(t *testing.T) {
	const def = "http://127.0.0.1:9001"
	for _, tc := range []struct {
		name        string
		args        []string
		addrs       []string
		queue       string
		concurrency int
	}{
		{"no flags keep the defaults", nil, []string{def}, "", 4},
		{"one address replaces the default", []string{"--queue-url=http://a:1"}, []string{"http://a:1"}, "", 4},
		{"repeated addresses add up", []string{"--queue-url=http://a:1", "--queue-url=http://b:2"}, []string{"http://a:1", "http://b:2"}, "", 4},
		{"comma-separated addresses", []string{"--queue-url=http://a:1, http://b:2,"}, []string{"http://a:1", "http://b:2"}, "", 4},
		{"queue and concurrency", []string{"--queue=numbers", "--concurrency=8"}, []string{def}, "numbers", 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Addrs = []string{def}
			cfg.Concurrency = 4
			cfg.RequeueDelay = 5 * time.Second
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cfg.RegisterFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.Addrs, tc.addrs) || cfg.Queue != tc.queue || cfg.Concurrency != tc.concurrency {
				t.Fatalf("addrs %q queue %q concurrency %d, want %q %q %d", cfg.Addrs, cfg.Queue, cfg.Concurrency, tc.addrs, tc.queue, tc.concurrency)
			}
			if cfg.RequeueDelay != 5*time.Second || cfg.MaxTries != DefaultMaxTries {
				t.Fatalf("fields without a flag changed: requeue delay %v, max tries %d", cfg.RequeueDelay, cfg.MaxTries)
			}
		})
	}
}

// TestConfig_RegisterFlags_HelpShowsTheConfigsValues: the help prints the
// values the Config held when the flags were registered, and says what an
// empty queue or address list means instead of printing nothing.
func TestConfig_RegisterFlags_HelpShowsTheConfigsValues(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(*Config)
		want   []string
		wantNo []string
	}{
		{"DefaultConfig", func(*Config) {},
			[]string{"the other nodes are discovered)\n", "(default: the queue named default)", "messages processed at once (default 1)"},
			[]string{"(default \"\")"}},
		{"a program's defaults", func(c *Config) { c.Addrs, c.Queue, c.Concurrency = []string{"http://h:1", "http://h:2"}, "numbers", 4 },
			[]string{"(default http://h:1,http://h:2)", `queue to read (default "numbers")`, "(default 4)"},
			[]string{"the queue named default"}},
		{"no discovery", func(c *Config) { c.DisableDiscovery = true },
			[]string{"(repeatable or comma-separated)\n"},
			[]string{"discovered"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.edit(&cfg)
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			var help strings.Builder
			fs.SetOutput(&help)
			cfg.RegisterFlags(fs)
			fs.PrintDefaults()
			for _, w := range tc.want {
				if !strings.Contains(help.String(), w) {
					t.Errorf("help lacks %q:\n%s", w, help.String())
				}
			}
			for _, w := range tc.wantNo {
				if strings.Contains(help.String(), w) {
					t.Errorf("help has %q:\n%s", w, help.String())
				}
			}
		})
	}
}

// TestConfig_RegisterFlags_Security: --token and --tls-ca fill Token and
// TLS (the CA file is loaded when the flag is parsed; a missing one is a
// flag error), and the help never shows a token the Config held.
func TestConfig_RegisterFlags_Security(t *testing.T) {
	_, ca := clienttest.NewTLSServer(t, http.NotFoundHandler())
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.RegisterFlags(fs)
	if err := fs.Parse([]string{"--token=" + secret, "--tls-ca=" + ca}); err != nil {
		t.Fatal(err)
	}
	if cfg.Token != secret || cfg.TLS == nil || cfg.TLS.RootCAs == nil {
		t.Fatalf("token %q TLS %v", cfg.Token, cfg.TLS)
	}

	held := DefaultConfig()
	held.Token = secret
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	var help strings.Builder
	fs.SetOutput(&help)
	held.RegisterFlags(fs)
	fs.PrintDefaults()
	if strings.Contains(help.String(), secret) || !strings.Contains(help.String(), "-tls-ca") {
		t.Fatalf("help:\n%s", help.String())
	}
	if err := fs.Parse([]string{"--tls-ca=" + t.TempDir() + "/missing.pem"}); err == nil {
		t.Fatal("a missing CA file was accepted")
	}
}
