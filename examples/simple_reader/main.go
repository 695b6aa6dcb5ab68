// Command simple_reader is the tutorial's first BaseReader exercise
// (realtimestream's examples/01_simple_reader.py) on quorumq: a reader with
// a task that prints every message and a task that publishes it again on a
// pubsub topic. At start it publishes one greeting, {"msg": "H3110!"}, to
// the pubsub, which the pipeline below brings back to the queue and so to
// the reader.
//
// Run it against a development cluster (each command in its own terminal):
//
//	go build -o bin/quorumq ./cmd/node
//	bin/quorumq devcluster                  # node1: pubsub :9000, queue :9001
//	bin/quorumq ps_to_http --pubsub-url='http://127.0.0.1:9000/sub?multipart=0' \
//	    --destination-post-url=http://127.0.0.1:9001/put --min-line-length=0
//	curl -sN 'http://127.0.0.1:9000/sub?topic=printed&multipart=0'   # what the reader republishes
//	go run ./examples/simple_reader
//	echo '{"msg": "H3110"}' | curl -d@- http://127.0.0.1:9000/pub
//
// The reader prints {"msg": "H3110!"} and {"msg": "H3110"}; the curl
// subscriber shows them too. Start a second simple_reader: each message
// goes to one of them. Stop one with Ctrl-C: it finishes what it holds and
// gives back what it did not start.
//
// Flags: --queue-url (repeatable or comma-separated; more nodes are
// discovered), --queue, --pubsub-url, --pub-topic ("" to not republish),
// --hello=false, --concurrency, --log-level, and for a secured cluster
// --token and --tls-ca (or QUORUMQ_TOKEN and QUORUMQ_TLS_CA), used for
// the pubsub too.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/cli"
	"github.com/quorumq/quorumq/reader"
)

func main() {
	cfg := reader.DefaultConfig()
	cfg.Addrs = []string{"http://127.0.0.1:9001"}
	cfg.RequeueDelay = 5 * time.Second
	cfg.RegisterFlags(flag.CommandLine) // --queue-url, --queue, --concurrency, --token, --tls-ca
	pubsubURL := flag.String("pubsub-url", "http://127.0.0.1:9000", "pubsub port URL")
	pubTopic := flag.String("pub-topic", "printed", "topic every message is published on again (\"\": none)")
	hello := flag.Bool("hello", true, `publish {"msg": "H3110!"} on the pubsub's default topic at start`)
	logLevel := flag.String("log-level", "info", "debug, info, warn or error")
	flag.Parse()
	// --token and --tls-ca fall back to QUORUMQ_TOKEN and QUORUMQ_TLS_CA.
	if err := cli.ApplySharedEnv(flag.CommandLine); err != nil {
		fatal(err)
	}
	log := newLogger(*logLevel)
	cfg.Logger = log

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	psOpts := client.DefaultOptions()
	psOpts.Token, psOpts.TLS = cfg.Token, cfg.TLS
	ps, err := client.NewPubsub([]string{*pubsubURL}, &psOpts)
	if err != nil {
		fatal(err)
	}
	cfg.Tasks = map[string]reader.Task{
		// The printing task: print the message as it came.
		"print": func(ctx context.Context, m *reader.Message) error {
			fmt.Printf("%s\n", bytes.TrimRight(m.Body, "\n"))
			return nil
		},
	}
	if *pubTopic != "" {
		// The publishing task: pubsub splits on newlines, so a message
		// is published as one line.
		cfg.Tasks["pub"] = func(ctx context.Context, m *reader.Message) error {
			line := bytes.ReplaceAll(bytes.TrimRight(m.Body, "\r\n"), []byte("\n"), []byte(" "))
			_, err := ps.Pub(ctx, *pubTopic, [][]byte{line})
			return err
		}
	}
	r, err := reader.New(cfg)
	if err != nil {
		fatal(err)
	}
	if *hello {
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if _, err := ps.Pub(hctx, "", [][]byte{[]byte(`{"msg": "H3110!"}`)}); err != nil {
			log.Warn("could not publish the greeting", "pubsub", *pubsubURL, "err", err)
		}
		cancel()
	}
	if err := r.Run(ctx); err != nil {
		fatal(err)
	}
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		fatal(fmt.Errorf("--log-level: %w", err))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "simple_reader:", err)
	os.Exit(1)
}
