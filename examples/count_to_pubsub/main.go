// Command count_to_pubsub publishes 0, 1, 2, ... to a pubsub, one message
// each, as fast as it can or every --delay: the tutorial's
// scripts/count_to_pubsub.sh, for watching data flow through the
// pubsub -> ps_to_http -> queue -> reader chain.
//
//	bin/quorumq devcluster
//	bin/quorumq ps_to_http --pubsub-url='http://127.0.0.1:9000/sub?multipart=0' \
//	    --destination-post-url=http://127.0.0.1:9001/put --min-line-length=0
//	go run ./examples/count_to_pubsub --delay=100ms
//	curl -s http://127.0.0.1:9001/stats          # depth grows
//	go run ./examples/simple_reader --hello=false  # and drains it
//
// (--min-line-length=0 matters: ps_to_http drops lines shorter than 3
// bytes by default, as the original did, which would lose 0 to 99.)
//
// Flags: --pubsub-url, --topic, --delay, --count (0: forever), --start,
// and for a secured cluster --token and --tls-ca (or QUORUMQ_TOKEN and
// QUORUMQ_TLS_CA).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/cli"
)

func main() {
	pubsubURL := flag.String("pubsub-url", "http://127.0.0.1:9000", "pubsub port URL")
	topic := flag.String("topic", "", "topic (default: the default topic)")
	delay := flag.Duration("delay", 0, "pause between messages")
	count := flag.Int("count", 0, "messages to publish (0: until interrupted)")
	from := flag.Int("start", 0, "first number")
	opts := client.DefaultOptions()
	client.RegisterSecurityFlags(flag.CommandLine, &opts.Token, &opts.TLS)
	flag.Parse()
	// --token and --tls-ca fall back to QUORUMQ_TOKEN and QUORUMQ_TLS_CA.
	if err := cli.ApplySharedEnv(flag.CommandLine); err != nil {
		fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ps, err := client.NewPubsub([]string{*pubsubURL}, &opts)
	if err != nil {
		fatal(err)
	}
	for i := *from; *count == 0 || i < *from+*count; i++ {
		if ctx.Err() != nil {
			return
		}
		fmt.Printf("Pushing to pubsub: %d\n", i)
		if _, err := ps.Pub(ctx, *topic, [][]byte{[]byte(strconv.Itoa(i))}); err != nil {
			if ctx.Err() != nil {
				return
			}
			fatal(fmt.Errorf("could not publish to pubsub at %s: %w", *pubsubURL, err))
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
	fmt.Fprintln(os.Stderr, "count_to_pubsub:", err)
	os.Exit(1)
}
