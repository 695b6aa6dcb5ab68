package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/quorumq/quorumq/deploy/bench/load"
)

// ---- Redis: a list per queue. put = LPUSH q v; batch = LPUSH q v1..vB
// (one command, B values); lease = LMOVE q q:processing RIGHT LEFT then
// LREM q:processing 1 v (the reliable-queue pattern: get, then ack).

type redisDriver struct{ addr string }

func respCommand(args ...[]byte) []byte {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	return b
}

func (d *redisDriver) worker(kind, queue string, size, batch int) (load.Worker, error) {
	c, err := net.Dial("tcp", d.addr)
	if err != nil {
		return nil, err
	}
	w := &redisWorker{c: c, buf: make([]byte, 64<<10), n: 1}
	v := bytes.Repeat([]byte{'x'}, size)
	switch kind {
	case "put":
		w.cmds = [][]byte{respCommand([]byte("LPUSH"), []byte(queue), v)}
	case "batch":
		args := [][]byte{[]byte("LPUSH"), []byte(queue)}
		for i := 0; i < batch; i++ {
			args = append(args, v)
		}
		w.cmds, w.n = [][]byte{respCommand(args...)}, batch
	case "lease":
		w.cmds = [][]byte{
			respCommand([]byte("LMOVE"), []byte(queue), []byte(queue+":processing"), []byte("RIGHT"), []byte("LEFT")),
			respCommand([]byte("LREM"), []byte(queue+":processing"), []byte("1"), v),
		}
		w.lease = true
	default:
		return nil, fmt.Errorf("redis: no %s workload", kind)
	}
	return w, nil
}

func (d *redisDriver) prefill(queue string, n, size int) error {
	const per = 1000
	w, err := d.worker("batch", queue, size, per)
	if err != nil {
		return err
	}
	defer w.Close()
	for done := 0; done < n; done += per {
		if _, err := w.Do(); err != nil {
			return err
		}
	}
	return nil
}

type redisWorker struct {
	c     net.Conn
	buf   []byte
	r, w  int
	cmds  [][]byte
	n     int
	lease bool
}

func (w *redisWorker) Close() { w.c.Close() }

func (w *redisWorker) Do() (int, error) {
	if _, err := w.c.Write(w.cmds[0]); err != nil {
		return 0, err
	}
	nilReply, err := w.reply()
	if err != nil {
		return 0, err
	}
	if !w.lease {
		return w.n, nil
	}
	if nilReply { // empty queue
		return 0, nil
	}
	if _, err := w.c.Write(w.cmds[1]); err != nil {
		return 0, err
	}
	if _, err := w.reply(); err != nil {
		return 0, err
	}
	return 1, nil
}

func (w *redisWorker) line() ([]byte, error) {
	for {
		if i := bytes.IndexByte(w.buf[w.r:w.w], '\n'); i >= 0 {
			l := w.buf[w.r : w.r+i]
			w.r += i + 1
			return bytes.TrimSuffix(l, []byte{'\r'}), nil
		}
		if w.r > 0 {
			w.w = copy(w.buf, w.buf[w.r:w.w])
			w.r = 0
		}
		n, err := w.c.Read(w.buf[w.w:])
		w.w += n
		if err != nil && n == 0 {
			return nil, err
		}
	}
}

// reply reads one reply: integer, simple string, error or bulk string.
func (w *redisWorker) reply() (isNil bool, err error) {
	l, err := w.line()
	if err != nil {
		return false, err
	}
	if len(l) == 0 {
		return false, errors.New("redis: empty reply")
	}
	switch l[0] {
	case ':', '+':
		return false, nil
	case '-':
		return false, fmt.Errorf("redis: %s", l[1:])
	case '$':
		n, _ := strconv.Atoi(string(l[1:]))
		if n < 0 {
			return true, nil
		}
		for n+2 > w.w-w.r { // body and CRLF
			if w.r > 0 {
				w.w = copy(w.buf, w.buf[w.r:w.w])
				w.r = 0
			}
			k, err := w.c.Read(w.buf[w.w:])
			w.w += k
			if err != nil && k == 0 {
				return false, err
			}
		}
		w.r += n + 2
		return false, nil
	}
	return false, fmt.Errorf("redis: unexpected reply %q", l)
}

// ---- NATS JetStream: one stream BENCH (subjects bench.>, R3, file).
// put = synchronous js.Publish; batch = B PublishAsync then wait for every
// ack; lease = Fetch(1) on a shared durable pull consumer, then AckSync.

type natsDriver struct {
	url string
	mu  sync.Mutex
	nc  *nats.Conn
}

func (d *natsDriver) setup(ctx context.Context) error {
	return waitFor(ctx, 60*time.Second, "a JetStream cluster with a stream", func() bool {
		nc, err := nats.Connect(d.url, nats.Timeout(2*time.Second))
		if err != nil {
			return false
		}
		js, err := nc.JetStream()
		if err == nil {
			_, err = js.AddStream(&nats.StreamConfig{
				Name: "BENCH", Subjects: []string{"bench.>"}, Replicas: 3,
				Storage: nats.FileStorage, MaxBytes: 16 << 30,
			}, nats.MaxWait(5*time.Second))
		}
		if err != nil {
			nc.Close()
			return false
		}
		d.nc = nc
		return true
	})
}

func (d *natsDriver) close() {
	if d.nc != nil {
		d.nc.Close()
	}
}

func (d *natsDriver) worker(kind, queue string, size, batch int) (load.Worker, error) {
	nc, err := nats.Connect(d.url, nats.Timeout(5*time.Second))
	if err != nil {
		return nil, err
	}
	js, err := nc.JetStream(nats.PublishAsyncMaxPending(max(batch, 256)))
	if err != nil {
		nc.Close()
		return nil, err
	}
	w := &natsWorker{nc: nc, js: js, kind: kind, subj: "bench." + queue, data: bytes.Repeat([]byte{'x'}, size), batch: batch}
	if kind == "lease" {
		w.sub, err = js.PullSubscribe(w.subj, "lease-"+queue, nats.AckExplicit())
		if err != nil {
			nc.Close()
			return nil, err
		}
	}
	return w, nil
}

func (d *natsDriver) prefill(queue string, n, size int) error {
	w, err := d.worker("batch", queue, size, 1000)
	if err != nil {
		return err
	}
	defer w.Close()
	for done := 0; done < n; done += 1000 {
		if _, err := w.Do(); err != nil {
			return err
		}
	}
	return nil
}

type natsWorker struct {
	nc    *nats.Conn
	js    nats.JetStreamContext
	sub   *nats.Subscription
	kind  string
	subj  string
	data  []byte
	batch int
	futs  []nats.PubAckFuture
}

func (w *natsWorker) Close() { w.nc.Close() }

func (w *natsWorker) Do() (int, error) {
	switch w.kind {
	case "put":
		if _, err := w.js.Publish(w.subj, w.data); err != nil {
			return 0, err
		}
		return 1, nil
	case "batch":
		w.futs = w.futs[:0]
		for i := 0; i < w.batch; i++ {
			f, err := w.js.PublishAsync(w.subj, w.data)
			if err != nil {
				return 0, err
			}
			w.futs = append(w.futs, f)
		}
		for _, f := range w.futs {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return 0, err
			case <-time.After(30 * time.Second):
				return 0, errors.New("no ack within 30s")
			}
		}
		return w.batch, nil
	}
	msgs, err := w.sub.Fetch(1, nats.MaxWait(time.Second))
	if errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	for _, m := range msgs {
		if err := m.AckSync(); err != nil {
			return 0, err
		}
	}
	return len(msgs), nil
}

// runNATSNode is "peers nats-node --config=FILE": one nats-server,
// embedded from its Go module, until SIGTERM.
func runNATSNode(args []string) int {
	fs := flag.NewFlagSet("nats-node", flag.ContinueOnError)
	conf := fs.String("config", "", "nats-server configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	opts, err := natsserver.ProcessConfigFile(*conf)
	if err != nil {
		fmt.Fprintf(os.Stderr, "nats-node: %v\n", err)
		return 1
	}
	s, err := natsserver.NewServer(opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "nats-node: %v\n", err)
		return 1
	}
	s.ConfigureLogger()
	s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		fmt.Fprintln(os.Stderr, "nats-node: not ready")
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
	s.Shutdown()
	s.WaitForShutdown()
	return 0
}
