// Command mean_variance is the tutorial's third exercise: read a stream of
// normally distributed numbers and compute their mean and variance online,
// one observation at a time (Welford's algorithm, in the online package,
// which also gives skewness and kurtosis), printing the estimate every
// --every samples. Find the "secret" mean and variance of the stream:
//
//	bin/quorumq devcluster
//	bin/quorumq ps_to_http --pubsub-url='http://127.0.0.1:9000/sub?multipart=0' \
//	    --destination-post-url=http://127.0.0.1:9001/put
//	go run ./examples/random_to_pubsub --mean=3.5 --variance=2 --quiet
//	go run ./examples/mean_variance --every=1000
//
// Try other means and variances, and a mean far larger than the spread
// (--mean=1e9): the online algorithm stays accurate where the textbook
// sum-of-squares formula loses every digit. Several mean_variance readers
// each see part of the stream, so each prints the moments of its part;
// merging them is the Redis exercise (quorumq analyze).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/quorumq/quorumq/internal/cli"
	"github.com/quorumq/quorumq/online"
	"github.com/quorumq/quorumq/reader"
)

func main() {
	cfg := reader.DefaultConfig()
	cfg.Addrs = []string{"http://127.0.0.1:9001"}
	cfg.Concurrency = 4
	cfg.RegisterFlags(flag.CommandLine) // --queue-url, --queue, --concurrency, --token, --tls-ca
	every := flag.Int64("every", 100, "print the estimate every this many samples")
	flag.Parse()
	// --token and --tls-ca fall back to QUORUMQ_TOKEN and QUORUMQ_TLS_CA.
	if err := cli.ApplySharedEnv(flag.CommandLine); err != nil {
		fatal(err)
	}

	var (
		mu sync.Mutex
		m  online.Moments
	)
	report := func(m online.Moments) {
		fmt.Printf("n=%d mean=%.6g variance=%.6g (sample) std=%.6g skewness=%.3g excess_kurtosis=%.3g\n",
			m.Count(), m.Mean(), m.VarianceSample(), m.StdDevSample(), m.Skewness(), m.ExcessKurtosis())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.Tasks = map[string]reader.Task{
		"moments": func(ctx context.Context, msg *reader.Message) error {
			mu.Lock()
			defer mu.Unlock()
			if err := m.Add(msg.Data.(float64)); err != nil {
				return err
			}
			if m.Count()%*every == 0 {
				report(m)
			}
			return nil
		},
	}
	cfg.Preprocess = func(ctx context.Context, msg *reader.Message) error {
		var v struct{ Number *float64 }
		if err := json.Unmarshal(msg.Body, &v); err != nil || v.Number == nil {
			var x float64
			if err := json.Unmarshal(msg.Body, &x); err != nil {
				return fmt.Errorf("not a number: %.40q", msg.Body)
			}
			v.Number = &x
		}
		msg.Data = *v.Number
		return nil
	}
	// A message that is not a number is not worth 5 tries.
	cfg.MaxTries = 1
	cfg.RequeueDelay = time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := reader.New(cfg)
	if err != nil {
		fatal(err)
	}
	if err := r.Run(ctx); err != nil {
		fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if m.Count() > 0 {
		report(m)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "mean_variance:", err)
	os.Exit(1)
}
