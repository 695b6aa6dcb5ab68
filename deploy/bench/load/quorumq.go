package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/quorumq/quorumq/client"
)

// Modes of a quorumq run.
const (
	ModePut    = "put"    // POST /put, one message per request
	ModeMPut   = "mput"   // POST /mput, Batch messages per request
	ModeGet    = "get"    // GET /get, pop one
	ModeMGet   = "mget"   // GET /mget?items=Batch, pop up to Batch
	ModeLease  = "lease"  // leased /get (or /mget) then /ack of what it got
	ModePubsub = "pubsub" // POST /pub to the pubsub port, subscribers on every node
)

// Modes lists every mode, for help texts.
var Modes = []string{ModePut, ModeMPut, ModeGet, ModeMGet, ModeLease, ModePubsub}

// Config is one load-generator run against a quorumq cluster. Start from
// DefaultConfig; RunQuorumq only validates.
type Config struct {
	// Mode is one of Modes.
	Mode string
	// Targets are node queue-port URLs ("http://127.0.0.1:9001" or
	// "127.0.0.1:9001"). With Spread the workers are spread over them in
	// turn; otherwise every worker talks to the leader, found through the
	// first target's /cluster/status.
	Targets []string
	Spread  bool
	Queue   string
	Topic   string
	// Size is the message size in bytes; Batch the messages per request
	// (mput, mget, lease with /mget, pub).
	Size  int
	Batch int
	// Lease is the lease= of the lease mode.
	Lease time.Duration
	// Prefill puts this many messages into Queue (through the leader,
	// with /mput) before a get, mget or lease run.
	Prefill int
	// Subscribers is the number of /sub connections of a pubsub run,
	// spread over every node of the cluster. 0: one per node.
	Subscribers int
	// Timeout bounds each request.
	Timeout time.Duration
	// Token, when set, goes with every request as a bearer token (the
	// run needs produce, consume or both, as its mode). TLS, when set,
	// verifies the nodes' HTTPS certificates (the cluster CA); the run
	// then speaks HTTPS only, to the targets as to the members it learns.
	Token string
	TLS   *tls.Config
	RunConfig
}

// authHeader is the Authorization header line of c's requests; nil
// without a token.
func (c Config) authHeader() []byte {
	if c.Token == "" {
		return nil
	}
	return []byte("Authorization: Bearer " + c.Token + "\r\n")
}

// Report is a Result with the run's parameters, as printed.
type Report struct {
	Mode    string   `json:"mode"`
	Targets []string `json:"targets"`
	Leader  string   `json:"leader,omitempty"`
	Queue   string   `json:"queue,omitempty"`
	Size    int      `json:"size"`
	Batch   int      `json:"batch"`
	*Result
}

// DefaultBatch is the batch of a mode, used when Config.Batch is 0.
func DefaultBatch(mode string) int {
	switch mode {
	case ModeMPut, ModeMGet:
		return 100
	}
	return 1
}

// RunQuorumq runs cfg (start from DefaultConfig) and returns what it
// measured. An invalid cfg is an error wrapping ErrInvalid.
func RunQuorumq(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultBatch(cfg.Mode)
	}
	if cfg.Label == "" {
		cfg.Label = cfg.Mode
	}
	addrs := make([]string, len(cfg.Targets))
	for i, t := range cfg.Targets {
		a, err := hostPort(t, cfg.TLS != nil)
		if err != nil {
			return nil, err
		}
		addrs[i] = a
	}
	rep := &Report{Mode: cfg.Mode, Targets: addrs, Queue: cfg.Queue, Size: cfg.Size, Batch: cfg.Batch}
	st, err := clusterStatus(cfg, addrs[0])
	if err != nil {
		return nil, err
	}
	leaderAddr := st.leaderQueueAddr()
	rep.Leader = st.LeaderID
	if !cfg.Spread && cfg.Mode != ModePubsub {
		if leaderAddr == "" {
			return nil, fmt.Errorf("%s knows no leader (or not its queue address) yet; retry, or use --spread", addrs[0])
		}
		addrs = []string{leaderAddr}
	}
	if cfg.Mode == ModePubsub {
		return runPubsub(ctx, cfg, rep, st)
	}
	if cfg.Mode == ModeGet || cfg.Mode == ModeMGet || cfg.Mode == ModeLease {
		if cfg.Prefill > 0 {
			if leaderAddr == "" {
				leaderAddr = addrs[0]
			}
			if err := prefill(ctx, leaderAddr, cfg); err != nil {
				return nil, fmt.Errorf("prefill: %w", err)
			}
		}
	}
	cfg.MsgsPerOp = cfg.Batch
	res, err := Run(ctx, cfg.RunConfig, func(i int) (Worker, error) {
		return newQueueWorker(cfg, addrs[i%len(addrs)]), nil
	})
	if err != nil {
		return nil, err
	}
	rep.Result = res
	return rep, nil
}

// prefill puts cfg.Prefill messages into the queue, 1000 per /mput.
func prefill(ctx context.Context, addr string, cfg Config) error {
	const per = 1000
	pc := cfg
	pc.Mode, pc.Batch = ModeMPut, per
	rc := RunConfig{Label: "prefill", Concurrency: 4, Count: int64((cfg.Prefill + per - 1) / per), Progress: cfg.Progress}
	res, err := Run(ctx, rc, func(int) (Worker, error) { return newQueueWorker(pc, addr), nil })
	if err != nil {
		return err
	}
	if res.Errors > 0 {
		return fmt.Errorf("%d of %d requests failed: %s", res.Errors, res.Ops, res.FirstError)
	}
	return nil
}

// hostPort returns the host:port of target. The scheme does not choose
// TLS, --tls-ca does: an http:// target is dialled over TLS with it, as
// the client package does, and an https:// one needs it.
func hostPort(target string, tls bool) (string, error) {
	t := strings.TrimSpace(target)
	if !strings.Contains(t, "://") {
		t = "http://" + t
	}
	u, err := url.Parse(t)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("target %q: want http://host:port or host:port", target)
	}
	if u.Scheme == "https" && !tls {
		return "", fmt.Errorf("target %q: https needs --tls-ca, the cluster CA", target)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return "", fmt.Errorf("target %q: %v", target, err)
	}
	return u.Host, nil
}

// status is the part of GET /cluster/status a run needs.
type status struct {
	NodeID   string `json:"node_id"`
	LeaderID string `json:"leader_id"`
	Members  []struct {
		ID         string `json:"id"`
		Status     string `json:"status"`
		QueueAddr  string `json:"queue_addr"`
		PubsubAddr string `json:"pubsub_addr"`
	} `json:"members"`
}

func (s *status) leaderQueueAddr() string {
	for _, m := range s.Members {
		if m.ID == s.LeaderID && s.LeaderID != "" {
			return m.QueueAddr
		}
	}
	return ""
}

func clusterStatus(cfg Config, addr string) (*status, error) {
	c := client.NewHTTPClient(cfg.TLS)
	c.Timeout = cfg.Timeout
	scheme := "http://"
	if cfg.TLS != nil {
		scheme = "https://"
	}
	req, err := http.NewRequest(http.MethodGet, scheme+addr+"/cluster/status", nil)
	if err != nil {
		return nil, err
	}
	client.SetToken(req, cfg.Token)
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s/cluster/status: %s: %s", addr, res.Status, bytes.TrimSpace(b))
	}
	var st status
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s/cluster/status: %v", addr, err)
	}
	return &st, nil
}

// message returns a message body of size bytes without newlines.
func message(size int) []byte {
	return bytes.Repeat([]byte{'x'}, size)
}

// buildRequest returns a complete HTTP/1.1 request; auth is the
// Authorization header line (nil: none).
func buildRequest(method, host, target string, auth, body []byte) []byte {
	b := make([]byte, 0, 160+len(auth)+len(body))
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\nUser-Agent: quorumq-bench\r\n"...)
	b = append(b, auth...)
	if method == http.MethodPost {
		b = append(b, "Content-Type: application/octet-stream\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, body...)
}

// queueWorker drives one connection to one node's queue port.
type queueWorker struct {
	mode  string
	host  string
	conn  *httpConn
	req   []byte // the request of every operation (for lease: the get)
	ack   []byte // scratch for the lease mode's /ack
	auth  []byte // Authorization header line
	batch int
	res   response
}

func newQueueWorker(cfg Config, addr string) *queueWorker {
	w := &queueWorker{mode: cfg.Mode, host: addr, conn: newHTTPConn(addr, cfg.Timeout, cfg.TLS), batch: cfg.Batch, auth: cfg.authHeader()}
	q := "queue=" + url.QueryEscape(cfg.Queue)
	switch cfg.Mode {
	case ModePut:
		w.req = buildRequest(http.MethodPost, addr, "/put?"+q, w.auth, message(cfg.Size))
	case ModeMPut:
		m := message(cfg.Size)
		body := make([]byte, 0, (cfg.Size+1)*cfg.Batch)
		for i := 0; i < cfg.Batch; i++ {
			if i > 0 {
				body = append(body, '\n')
			}
			body = append(body, m...)
		}
		w.req = buildRequest(http.MethodPost, addr, "/mput?"+q, w.auth, body)
	case ModeGet:
		w.req = buildRequest(http.MethodGet, addr, "/get?"+q, w.auth, nil)
	case ModeMGet:
		w.req = buildRequest(http.MethodGet, addr, "/mget?"+q+"&items="+strconv.Itoa(cfg.Batch), w.auth, nil)
	case ModeLease:
		lease := "&lease=" + cfg.Lease.String()
		if cfg.Batch > 1 {
			w.req = buildRequest(http.MethodGet, addr, "/mget?"+q+"&items="+strconv.Itoa(cfg.Batch)+lease, w.auth, nil)
		} else {
			w.req = buildRequest(http.MethodGet, addr, "/get?"+q+lease, w.auth, nil)
		}
		w.ack = make([]byte, 0, 256)
	}
	return w
}

func (w *queueWorker) Close() { w.conn.Close() }

func (w *queueWorker) Do() (int, error) {
	if err := w.conn.do(w.req, &w.res); err != nil {
		return 0, err
	}
	if w.res.status != http.StatusOK {
		return 0, statusError(&w.res)
	}
	switch w.mode {
	case ModePut:
		return 1, nil
	case ModeMPut:
		return w.batch, nil
	case ModeGet:
		if w.res.bodyLen > 0 {
			return 1, nil
		}
		return 0, nil
	case ModeMGet:
		return countIDs(w.res.msgIDs), nil
	}
	// lease: ack what we got.
	ids := w.res.msgID
	if w.batch > 1 {
		ids = w.res.msgIDs
	}
	n := countIDs(ids)
	if n == 0 {
		return 0, nil
	}
	w.ack = append(w.ack[:0], "GET /ack?id="...)
	w.ack = append(w.ack, ids...)
	w.ack = append(w.ack, " HTTP/1.1\r\nHost: "...)
	w.ack = append(w.ack, w.host...)
	w.ack = append(w.ack, "\r\nUser-Agent: quorumq-bench\r\n"...)
	w.ack = append(w.ack, w.auth...)
	w.ack = append(w.ack, "\r\n"...)
	if err := w.conn.do(w.ack, &w.res); err != nil {
		return 0, fmt.Errorf("ack: %w", err)
	}
	if w.res.status != http.StatusOK {
		return 0, fmt.Errorf("ack: %w", statusError(&w.res))
	}
	return n, nil
}

func countIDs(ids []byte) int {
	if len(ids) == 0 {
		return 0
	}
	return bytes.Count(ids, []byte{','}) + 1
}

func statusError(r *response) error {
	return fmt.Errorf("HTTP %d: %s", r.status, bytes.TrimSpace(r.body[:min(len(r.body), 200)]))
}
