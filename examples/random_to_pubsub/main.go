// Command random_to_pubsub publishes normally distributed random numbers,
// {"time": <unix seconds>, "number": <x>}, to a pubsub: the tutorial's
// scripts/random_to_pubsub.py, the source for the random_reader and
// mean_variance exercises.
//
//	bin/quorumq devcluster
//	bin/quorumq ps_to_http --pubsub-url='http://127.0.0.1:9000/sub?multipart=0' \
//	    --destination-post-url=http://127.0.0.1:9001/put
//	go run ./examples/random_to_pubsub --mean=3 --variance=2 --delay=10ms
//
// Every --pubsub-url gets every message, as in the original, where each URL
// was a separate pubsub. On quorumq one node is enough: a publish on any
// node reaches the subscribers of every node.
//
// Flags: --pubsub-url (repeatable or comma-separated), --topic, --mean,
// --variance, --delay, --count (0: forever), --seed, --quiet, and for a
// secured cluster --token and --tls-ca (or QUORUMQ_TOKEN and
// QUORUMQ_TLS_CA).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/cli"
)

func main() {
	var urls client.AddrList
	flag.Var(&urls, "pubsub-url", "pubsub port URL to publish to (repeatable; default http://127.0.0.1:9000)")
	topic := flag.String("topic", "", "topic (default: the default topic)")
	mean := flag.Float64("mean", 0, "mean of the distribution")
	variance := flag.Float64("variance", 1, "variance of the distribution")
	delay := flag.Duration("delay", 0, "pause between messages")
	count := flag.Int("count", 0, "messages to publish (0: until interrupted)")
	seed := flag.Uint64("seed", 0, "random seed (0: random)")
	quiet := flag.Bool("quiet", false, "do not print every message")
	opts := client.DefaultOptions()
	client.RegisterSecurityFlags(flag.CommandLine, &opts.Token, &opts.TLS)
	flag.Parse()
	// --token and --tls-ca fall back to QUORUMQ_TOKEN and QUORUMQ_TLS_CA.
	if err := cli.ApplySharedEnv(flag.CommandLine); err != nil {
		fatal(err)
	}
	if *variance < 0 {
		fatal(fmt.Errorf("--variance=%v: must be >= 0", *variance))
	}
	std := math.Sqrt(*variance)
	s := *seed
	if s == 0 {
		s = rand.Uint64()
	}
	rng := rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var pubs []*client.Pubsub
	for _, u := range urls.Or("http://127.0.0.1:9000") {
		ps, err := client.NewPubsub([]string{u}, &opts)
		if err != nil {
			fatal(err)
		}
		pubs = append(pubs, ps)
	}
	for i := 0; *count == 0 || i < *count; i++ {
		if ctx.Err() != nil {
			return
		}
		msg, _ := json.Marshal(map[string]float64{
			"time":   float64(time.Now().UnixMicro()) / 1e6,
			"number": *mean + std*rng.NormFloat64(),
		})
		if !*quiet {
			fmt.Printf("Sending message: %s\n", msg)
		}
		for _, ps := range pubs {
			if _, err := ps.Pub(ctx, *topic, [][]byte{msg}); err != nil && ctx.Err() == nil {
				fatal(fmt.Errorf("publish to %s: %w", ps.Addrs()[0], err))
			}
		}
		if *delay > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(*delay):
			}
		}
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "random_to_pubsub:", err)
	os.Exit(1)
}
