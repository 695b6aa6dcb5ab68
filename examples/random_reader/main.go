// Command random_reader is the tutorial's second exercise: a reader of the
// random numbers that random_to_pubsub publishes, with knobs for the
// questions the tutorial asks. Run it:
//
//	bin/quorumq devcluster
//	bin/quorumq ps_to_http --pubsub-url='http://127.0.0.1:9000/sub?multipart=0' \
//	    --destination-post-url=http://127.0.0.1:9001/put
//	go run ./examples/random_to_pubsub --mean=0.5 --variance=0.1 --delay=50ms --quiet
//	go run ./examples/random_reader --fail-rate=0.2
//
// and try:
//
//   - --fail-rate=0.2: the task "flaky" fails on a fifth of the attempts.
//     Watch what happens to those messages: they come back after
//     --requeue-delay × tries with only "flaky" left to run ("print" is
//     not run again), and after --max-tries failed attempts the reader
//     gives up on them.
//   - Start several random_readers: each message goes to one of them, and
//     a failed message may be retried by another.
//   - --min=0.5 --max=1: only numbers in (0.5, 1) are processed; the
//     others are acked without running a task (Preprocess decodes the
//     number, Validate turns it down).
//   - --sample=0.25: only a quarter of the stream is processed.
//
// Ctrl-C prints the reader's counters.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/quorumq/quorumq/internal/cli"
	"github.com/quorumq/quorumq/reader"
)

func main() {
	cfg := reader.DefaultConfig()
	cfg.Addrs = []string{"http://127.0.0.1:9001"}
	cfg.MaxTries = 3
	cfg.RequeueDelay = 2 * time.Second
	cfg.RegisterFlags(flag.CommandLine) // --queue-url, --queue, --concurrency, --token, --tls-ca
	flag.IntVar(&cfg.MaxTries, "max-tries", cfg.MaxTries, "attempts per message")
	flag.DurationVar(&cfg.RequeueDelay, "requeue-delay", cfg.RequeueDelay, "retry delay per try")
	failRate := flag.Float64("fail-rate", 0.1, "probability that the task flaky fails on an attempt")
	lo := flag.Float64("min", math.Inf(-1), "process only numbers above this")
	hi := flag.Float64("max", math.Inf(1), "process only numbers below this")
	sample := flag.Float64("sample", 1, "fraction of the stream to process")
	flag.Parse()
	// --token and --tls-ca fall back to QUORUMQ_TOKEN and QUORUMQ_TLS_CA.
	if err := cli.ApplySharedEnv(flag.CommandLine); err != nil {
		fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.Tasks = map[string]reader.Task{
		"print": func(ctx context.Context, m *reader.Message) error {
			fmt.Printf("number %+.4f (attempt %d)\n", m.Data.(float64), m.Attempts)
			return nil
		},
		"flaky": func(ctx context.Context, m *reader.Message) error {
			if rand.Float64() < *failRate {
				fmt.Printf("flaky fails on %+.4f (attempt %d of %d)\n", m.Data.(float64), m.Attempts, cfg.MaxTries)
				return errors.New("failing on purpose")
			}
			return nil
		},
	}
	// Preprocess turns the message into the number the tasks use.
	cfg.Preprocess = func(ctx context.Context, m *reader.Message) error {
		x, err := number(m.Body)
		m.Data = x
		return err
	}
	// Validate chooses which numbers to process.
	cfg.Validate = func(ctx context.Context, m *reader.Message) bool {
		x := m.Data.(float64)
		return x > *lo && x < *hi && rand.Float64() < *sample
	}
	cfg.GiveUp = func(ctx context.Context, m *reader.Message) {
		fmt.Printf("giving up on %s after %d attempts: %v\n", m.Body, m.Attempts, m.Err)
	}
	cfg.BackoffStep = -1 // the failures here are random, not a sick dependency
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := reader.New(cfg)
	if err != nil {
		fatal(err)
	}
	if err := r.Run(ctx); err != nil {
		fatal(err)
	}
	s := r.Stats()
	fmt.Printf("processed %d, skipped %d, failed attempts %d, retried %d, given up %d\n", s.Processed, s.Skipped, s.Failed, s.Retried, s.GivenUp)
}

// number reads {"number": x} (random_to_pubsub) or a bare JSON number
// (count_to_pubsub).
func number(body []byte) (float64, error) {
	var x float64
	if json.Unmarshal(body, &x) == nil {
		return x, nil
	}
	var msg struct{ Number *float64 }
	if err := json.Unmarshal(body, &msg); err != nil || msg.Number == nil {
		return 0, fmt.Errorf("not a number: %.40q", body)
	}
	return *msg.Number, nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "random_reader:", err)
	os.Exit(1)
}
