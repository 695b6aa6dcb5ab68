// Command readerproc is the reader process of the reader system tests
// (systemtest/reader_test.go). It reads messages {"n": N} (and a poison
// {"n": N, "poison": true}) with two tasks and records every task execution,
// every outcome and every give-up, one line each, to --log:
//
//	exec <n> <task> ok|fail <attempt> <delivery> <id>
//	event <n> <kind> <attempt> <delivery> <id> <lease_lost 0|1> <uncertain 0|1> <err 0|1>
//	giveup <n> <attempt> <delivery> <id>
//
// Each line is one write(2) to a file opened with O_APPEND, so a kill -9
// loses no line that was written. Task a always succeeds; task b fails on
// the first attempt of every message with n%10 == 3, and always on the
// poison. With --bench the tasks do nothing and nothing is logged.
// --tls-ca and --token reach a secured cluster, as quorumq's own tools do.
//
// SIGTERM or SIGINT: graceful shutdown; the last line of stderr is the
// reader's stats as JSON.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/reader"
)

func main() {
	var (
		addrs       = flag.String("addrs", "", "comma-separated queue URLs")
		queue       = flag.String("queue", "", "queue")
		logPath     = flag.String("log", "", "execution log")
		concurrency = flag.Int("concurrency", 4, "workers")
		mget        = flag.Int("mget", 0, "MGetItems (0: concurrency)")
		lease       = flag.Duration("lease", 8*time.Second, "lease")
		maxTries    = flag.Int("max-tries", 3, "MaxTries")
		delay       = flag.Duration("requeue-delay", 300*time.Millisecond, "RequeueDelay")
		sleep       = flag.Duration("task-sleep", 0, "time each task takes")
		balance     = flag.String("balance", "leader", "leader or spread")
		bench       = flag.Bool("bench", false, "trivial tasks, no log")
		progress    = flag.Duration("progress", 5*time.Second, "progress interval")
		token       string
		tlsConf     *tls.Config
	)
	client.RegisterSecurityFlags(flag.CommandLine, &token, &tlsConf)
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	bal, err := reader.ParseBalance(*balance)
	if err != nil {
		fatal(err)
	}
	var out *os.File
	if !*bench {
		out, err = os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fatal(err)
		}
	}
	write := func(format string, args ...any) {
		if out != nil {
			out.WriteString(fmt.Sprintf(format, args...) + "\n")
		}
	}
	type body struct {
		N      int  `json:"n"`
		Poison bool `json:"poison"`
	}
	decode := func(m *reader.Message) body {
		var b body
		if err := json.Unmarshal(m.Body, &b); err != nil {
			b.N = -1
		}
		return b
	}
	task := func(name string, fail func(b body, m *reader.Message) bool) reader.Task {
		if *bench {
			return func(ctx context.Context, m *reader.Message) error { return nil }
		}
		return func(ctx context.Context, m *reader.Message) error {
			if *sleep > 0 {
				time.Sleep(*sleep)
			}
			b := decode(m)
			if fail(b, m) {
				write("exec %d %s fail %d %d %s", b.N, name, m.Attempts, m.Deliveries, m.ID)
				return errors.New("fails on purpose")
			}
			write("exec %d %s ok %d %d %s", b.N, name, m.Attempts, m.Deliveries, m.ID)
			return nil
		}
	}
	bit := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	cfg := reader.DefaultConfig()
	cfg.Addrs = strings.Split(*addrs, ",")
	cfg.Queue = *queue
	cfg.Tasks = map[string]reader.Task{
		"a": task("a", func(body, *reader.Message) bool { return false }),
		"b": task("b", func(b body, m *reader.Message) bool { return b.Poison || b.N%10 == 3 && m.Attempts == 1 }),
	}
	cfg.MaxTries = *maxTries
	cfg.RequeueDelay = *delay
	cfg.MGetItems = *mget
	cfg.Lease = *lease
	cfg.Concurrency = *concurrency
	cfg.BackoffStep = -1
	cfg.Balance = bal
	cfg.ProgressInterval = *progress
	cfg.ShutdownGrace = 10 * time.Second
	cfg.Logger = logger
	cfg.Token, cfg.TLS = token, tlsConf
	cfg.GiveUp = func(ctx context.Context, m *reader.Message) {
		write("giveup %d %d %d %s", decode(m).N, m.Attempts, m.Deliveries, m.ID)
	}
	if !*bench {
		cfg.OnEvent = func(e reader.Event) {
			m := e.Message
			write("event %d %s %d %d %s %d %d %d", decode(m).N, e.Kind, m.Attempts, m.Deliveries, m.ID, bit(e.LeaseLost), bit(e.Uncertain), bit(e.Err != nil))
		}
	}
	r, err := reader.New(cfg)
	if err != nil {
		fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := r.Run(ctx); err != nil {
		fatal(err)
	}
	st, _ := json.Marshal(r.Stats())
	fmt.Fprintf(os.Stderr, "stats %s\n", st)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "readerproc:", err)
	os.Exit(1)
}
