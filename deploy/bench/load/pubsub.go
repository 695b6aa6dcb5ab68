package load

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// stampLen is the width of the send time (Unix nanoseconds, zero-padded)
// at the start of every published message, from which subscribers compute
// the delivery latency. Publisher and subscribers share this machine's
// clock.
const stampLen = 19

// runPubsub publishes from Concurrency workers (spread over the targets'
// pubsub ports) to Subscribers /sub streams spread over every node, and
// reports publish requests as the run's operations plus the deliveries
// (Extra: delivered, delivered_per_s, and delivery latency percentiles in
// microseconds).
func runPubsub(ctx context.Context, cfg Config, rep *Report, st *status) (*Report, error) {
	pubAddr := map[string]string{} // queue addr -> pubsub addr
	var all []string
	for _, m := range st.Members {
		if m.PubsubAddr == "" || m.Status != "alive" {
			continue
		}
		pubAddr[m.QueueAddr] = m.PubsubAddr
		all = append(all, m.PubsubAddr)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("no member with a pubsub address in %s's /cluster/status", rep.Targets[0])
	}
	var pubs []string
	for _, t := range rep.Targets {
		if a, ok := pubAddr[t]; ok {
			pubs = append(pubs, a)
		}
	}
	if len(pubs) == 0 {
		pubs = all
	}
	if cfg.Size < stampLen+1 {
		cfg.Size = stampLen + 1
		rep.Size = cfg.Size
	}
	nsubs := cfg.Subscribers
	if nsubs <= 0 {
		nsubs = len(all)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		delivered atomic.Uint64
		measuring atomic.Bool
		mu        sync.Mutex
		hist      = new(Histogram)
		wg        sync.WaitGroup
		subErr    = make(chan error, nsubs)
		conns     []net.Conn
	)
	for i := 0; i < nsubs; i++ {
		addr := all[i%len(all)]
		c, err := dialNode(addr, cfg.Timeout, cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("subscriber to %s: %w", addr, err)
		}
		conns = append(conns, c)
		// HTTP/1.0 gets the raw stream: "\r\n", then one message per line.
		fmt.Fprintf(c, "GET /sub?multipart=0&topic=%s HTTP/1.0\r\nHost: %s\r\n%s\r\n", url.QueryEscape(cfg.Topic), addr, cfg.authHeader())
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := new(Histogram)
			err := readSubscription(c, func(line []byte) {
				if !measuring.Load() {
					return
				}
				delivered.Add(1)
				if ns, ok := parseStamp(line); ok {
					h.Record(time.Duration(time.Now().UnixNano() - ns))
				}
			})
			mu.Lock()
			hist.Merge(h)
			mu.Unlock()
			if err != nil && ctx.Err() == nil {
				subErr <- err
			}
		}()
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Subscriber sets travel by gossip: give them time to reach every node.
	time.Sleep(1500 * time.Millisecond)

	measuring.Store(true)
	start := time.Now()
	cfg.MsgsPerOp = cfg.Batch
	// Subscribers count from the first publish: no warmup phase.
	cfg.Warmup = 0
	res, err := Run(ctx, cfg.RunConfig, func(i int) (Worker, error) {
		return newPubWorker(cfg, pubs[i%len(pubs)]), nil
	})
	if err != nil {
		return nil, err
	}
	// Let the last messages arrive, then close the streams.
	time.Sleep(500 * time.Millisecond)
	elapsed := time.Since(start)
	measuring.Store(false)
	cancel()
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	select {
	case err := <-subErr:
		if res.FirstError == "" {
			res.FirstError = "subscriber: " + err.Error()
		}
	default:
	}
	d := delivered.Load()
	lat := Summarize(hist)
	res.Extra = map[string]float64{
		"subscribers":         float64(nsubs),
		"delivered":           float64(d),
		"delivered_per_s":     float64(d) / elapsed.Seconds(),
		"delivery_p50_us":     lat.P50,
		"delivery_p90_us":     lat.P90,
		"delivery_p99_us":     lat.P99,
		"delivery_p99_9_us":   lat.P999,
		"delivery_max_us":     lat.Max,
		"expected_deliveries": float64(res.Msgs) * float64(nsubs),
	}
	rep.Result = res
	rep.Targets = pubs
	return rep, nil
}

// readSubscription reads the HTTP/1.0 response header of a /sub?multipart=0
// stream, then calls fn with every line until the connection ends.
func readSubscription(c net.Conn, fn func(line []byte)) error {
	buf := make([]byte, 256<<10)
	r, w := 0, 0
	header := true
	for {
		n, err := c.Read(buf[w:])
		w += n
		for {
			i := bytes.IndexByte(buf[r:w], '\n')
			if i < 0 {
				break
			}
			line := bytes.TrimSuffix(buf[r:r+i], []byte{'\r'})
			r += i + 1
			if header {
				if r == i+1 && !bytes.HasPrefix(line, []byte("HTTP/1.")) {
					return fmt.Errorf("not an HTTP response: %q", line)
				}
				if r == i+1 && !bytes.Contains(line, []byte(" 200 ")) {
					return fmt.Errorf("subscribe: %s", line)
				}
				if len(line) == 0 {
					header = false
				}
				continue
			}
			if len(line) > 0 {
				fn(line)
			}
		}
		if r == w {
			r, w = 0, 0
		} else if w == len(buf) {
			if r == 0 {
				return fmt.Errorf("line longer than %d bytes", len(buf))
			}
			w = copy(buf, buf[r:w])
			r = 0
		}
		if err != nil {
			return err
		}
	}
}

// pubWorker publishes Batch time-stamped messages per POST /pub.
type pubWorker struct {
	conn *httpConn
	req  []byte
	// offsets of each message's stamp in req
	stamps []int
	batch  int
	res    response
}

func newPubWorker(cfg Config, addr string) *pubWorker {
	m := message(cfg.Size)
	body := make([]byte, 0, (cfg.Size+1)*cfg.Batch)
	var offs []int
	for i := 0; i < cfg.Batch; i++ {
		if i > 0 {
			body = append(body, '\n')
		}
		offs = append(offs, len(body))
		body = append(body, m...)
	}
	req := buildRequest(http.MethodPost, addr, "/pub?topic="+url.QueryEscape(cfg.Topic), cfg.authHeader(), body)
	hdr := len(req) - len(body)
	for i := range offs {
		offs[i] += hdr
	}
	return &pubWorker{conn: newHTTPConn(addr, cfg.Timeout, cfg.TLS), req: req, stamps: offs, batch: cfg.Batch}
}

func (w *pubWorker) Close() { w.conn.Close() }

func (w *pubWorker) Do() (int, error) {
	now := time.Now().UnixNano()
	for _, off := range w.stamps {
		putStamp(w.req[off:off+stampLen], now)
	}
	if err := w.conn.do(w.req, &w.res); err != nil {
		return 0, err
	}
	if w.res.status != http.StatusOK {
		return 0, statusError(&w.res)
	}
	return w.batch, nil
}

// parseStamp reads the send time at the start of a message.
func parseStamp(b []byte) (int64, bool) {
	if len(b) < stampLen {
		return 0, false
	}
	var v int64
	for _, c := range b[:stampLen] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// putStamp writes v as stampLen zero-padded decimal digits.
func putStamp(b []byte, v int64) {
	for i := stampLen - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
}
