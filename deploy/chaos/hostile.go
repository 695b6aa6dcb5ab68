package chaos

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/quorumq/quorumq/internal/testkit"
)

// StallTopic is the pubsub topic of the stalled subscribers and the
// publishers.
const StallTopic = "chaos-stall"

// HostileKind is a kind of hostile client.
type HostileKind string

// The hostile clients.
const (
	// StalledSub subscribes to StallTopic on the pubsub port, reads the
	// answer's status line, and then never reads again.
	StalledSub HostileKind = "stalled-sub"
	// SlowBody sends a request head (a /put on the queue port, a /pub on
	// the pubsub port) announcing a body of slowBodyLen bytes, then the
	// body one byte every WorkloadConfig.SlowByteEvery.
	SlowBody HostileKind = "slow-body"
	// IdleConn connects and sends nothing, not even a TLS hello.
	IdleConn HostileKind = "idle"
)

// ConnEnd is how a hostile connection ended.
type ConnEnd string

// How hostile connections end.
const (
	// EndClosedByServer: the node closed it while its process went on.
	EndClosedByServer ConnEnd = "closed-by-server"
	// EndNodeDown: the node's process ended (killed, restarted, left).
	EndNodeDown ConnEnd = "node-down"
	// EndOpen: still open when the run ended.
	EndOpen ConnEnd = "open-at-end"
	// EndRefused: the connection or TLS handshake failed (but for
	// "connection refused": nothing listens while a node starts), or a
	// stalled subscription was not answered 200.
	EndRefused ConnEnd = "refused"
)

// Ports of a node.
const (
	portQueue  = "queue"
	portPubsub = "pubsub"
)

const (
	// hostileTick is how often the hostile clients look at their
	// connections, send slow bytes and reconnect.
	hostileTick = time.Second
	// classifyAfter: a connection seen closed is classified this long
	// later, when a node that died has surely been reaped (its pid gone).
	classifyAfter = 3 * time.Second
	// dialTimeout bounds a connect plus TLS handshake plus, for a stalled
	// subscriber, its status line.
	dialTimeout = 3 * time.Second
	// slowBodyLen is the Content-Length a slow client announces: far more
	// than it sends in a run, well below any body limit.
	slowBodyLen = 64 << 10
)

// Hostile keeps hostile clients connected to every running member:
// stalled subscribers, slow-body senders and idle connections, as many
// per node as the WorkloadConfig says, reconnected when closed (a node
// that closes them is doing its job). Every connection is recorded in
// the History when it ends. It never fails the run: the checks look at
// whether the other clients were still served.
type Hostile struct {
	cfg  WorkloadConfig
	c    *testkit.Cluster
	h    *History
	logf Logf

	live []*hconn // owned by the loop until done is closed
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// hconn is one live hostile connection.
type hconn struct {
	rec       HostileConn
	nd        *testkit.Node
	pid       int      // the node's process when it was opened
	raw       net.Conn // the TCP connection
	conn      net.Conn // raw, or TLS over it
	lastByte  time.Duration
	closedAt  time.Duration // 0: open
	closedErr string
}

// NewHostile prepares the hostile clients; Start runs them.
func NewHostile(cfg WorkloadConfig, c *testkit.Cluster, h *History, logf Logf) *Hostile {
	return &Hostile{cfg: cfg, c: c, h: h, logf: logf, stop: make(chan struct{}), done: make(chan struct{})}
}

// Enabled reports whether any hostile client is configured.
func (hs *Hostile) Enabled() bool {
	return hs.cfg.StalledSubs+hs.cfg.SlowClients+hs.cfg.IdleClients > 0
}

// Start runs the hostile clients until Stop or ctx ends.
func (hs *Hostile) Start(ctx context.Context) {
	if !hs.Enabled() {
		close(hs.done)
		return
	}
	go hs.loop(ctx)
}

// Stop ends the hostile clients: every connection still open is recorded
// as EndOpen (or classified, if seen closed) and closed.
func (hs *Hostile) Stop() {
	hs.once.Do(func() { close(hs.stop) })
	<-hs.done
	now := hs.h.Now()
	var wg sync.WaitGroup
	for _, hc := range hs.live {
		if hc.closedAt == 0 {
			hc.rec.End, hc.rec.Ended = now, EndOpen
			if hc.rec.Kind == StalledSub {
				wg.Add(1)
				go func() { defer wg.Done(); drainStalled(hc) }()
			}
			continue
		}
		hs.finish(hc)
	}
	wg.Wait()
	for _, hc := range hs.live {
		if hc.closedAt == 0 {
			hc.conn.Close()
			hs.h.addHostile(hc.rec)
		}
	}
	hs.live = nil
}

// stalledDrainTime bounds the final read of a stalled subscriber.
const stalledDrainTime = 2 * time.Second

// drainStalled reads what a stalled subscriber left unread, once the
// publishers have stopped: a node that dropped it (a write timeout, a
// kick) may have closed its socket long ago with the FIN stuck behind the
// data this side never took, so the socket still looks established. An
// end of stream within stalledDrainTime, or no more data for 300 ms
// after it, tells which; the end of the stream is the node's last word (a
// kick notice, say).
func drainStalled(hc *hconn) {
	deadline := time.Now().Add(stalledDrainTime)
	buf := make([]byte, 64<<10)
	var tail []byte
	for time.Now().Before(deadline) {
		next := time.Now().Add(300 * time.Millisecond)
		if next.After(deadline) {
			next = deadline
		}
		hc.conn.SetReadDeadline(next)
		n, err := hc.conn.Read(buf)
		tail = append(tail, buf[:n]...)
		tail = tail[max(0, len(tail)-256):]
		var ne net.Error
		switch {
		case err == nil:
			continue
		case errors.As(err, &ne) && ne.Timeout():
			return // attached: nothing more to read
		}
		hc.rec.Ended, hc.rec.EndSeenLate = EndClosedByServer, true
		if i := bytes.LastIndex(tail, []byte("ERROR_")); i >= 0 {
			line, _, _ := bytes.Cut(tail[i:], []byte("\n"))
			hc.rec.Answer = string(line)
		}
		return
	}
}

func (hs *Hostile) loop(ctx context.Context) {
	defer close(hs.done)
	t := time.NewTicker(hostileTick)
	defer t.Stop()
	for {
		hs.tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-hs.stop:
			return
		case <-t.C:
		}
	}
}

// tick looks at every connection (closed? a slow byte due?), classifies
// the ones closed a while ago, and opens what each running member lacks.
func (hs *Hostile) tick(ctx context.Context) {
	now := hs.h.Now()
	kept := hs.live[:0]
	for _, hc := range hs.live {
		if hc.closedAt == 0 {
			hs.poke(hc, now)
		}
		if hc.closedAt != 0 && now-hc.closedAt >= classifyAfter {
			hs.finish(hc)
			continue
		}
		kept = append(kept, hc)
	}
	clear(hs.live[len(kept):])
	hs.live = kept

	for _, nd := range hs.c.Members() {
		pid := nd.PID()
		if pid == 0 || nd.Paused() {
			continue // a paused node would hold the dial; it is not refusing
		}
		have := map[HostileKind]map[string]int{}
		for _, hc := range hs.live {
			if hc.nd == nd && hc.pid == pid && hc.closedAt == 0 {
				if have[hc.rec.Kind] == nil {
					have[hc.rec.Kind] = map[string]int{}
				}
				have[hc.rec.Kind][hc.rec.Port]++
			}
		}
		hs.fill(ctx, nd, pid, have)
	}
}

// fill opens the connections nd lacks, stopping at the first failure (a
// node that refuses is tried again next tick).
func (hs *Hostile) fill(ctx context.Context, nd *testkit.Node, pid int, have map[HostileKind]map[string]int) {
	want := []struct {
		kind HostileKind
		port string
		n    int
	}{
		{StalledSub, portPubsub, hs.cfg.StalledSubs},
		{SlowBody, portQueue, (hs.cfg.SlowClients + 1) / 2},
		{SlowBody, portPubsub, hs.cfg.SlowClients / 2},
		{IdleConn, portQueue, (hs.cfg.IdleClients + 1) / 2},
		{IdleConn, portPubsub, hs.cfg.IdleClients / 2},
	}
	for _, w := range want {
		for range w.n - have[w.kind][w.port] {
			hc, err := hs.open(ctx, nd, pid, w.kind, w.port)
			if errors.Is(err, syscall.ECONNREFUSED) {
				return // nothing listens yet: the node is starting
			}
			if err != nil {
				hs.h.addHostile(HostileConn{Kind: w.kind, Node: nd.ID, Port: w.port, Start: hs.h.Now(), End: hs.h.Now(),
					Ended: EndRefused, Error: err.Error(), Answer: hc.rec.Answer})
				return
			}
			hs.live = append(hs.live, hc)
		}
	}
}

// open connects one hostile client and sends what it sends at once.
func (hs *Hostile) open(ctx context.Context, nd *testkit.Node, pid int, kind HostileKind, port string) (*hconn, error) {
	hc := &hconn{nd: nd, pid: pid, rec: HostileConn{Kind: kind, Node: nd.ID, Port: port}}
	addr := nd.QueueAddr
	if port == portPubsub {
		addr = nd.PubsubAddr
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	d := net.Dialer{}
	if kind == StalledSub {
		d.Control = smallReceiveBuffer(hs.cfg.StalledRcvBuf)
	}
	raw, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return hc, err
	}
	hc.raw, hc.conn = raw, raw
	fail := func(err error) (*hconn, error) {
		raw.Close()
		return hc, err
	}
	if kind == IdleConn {
		hc.rec.Start = hs.h.Now()
		return hc, nil
	}
	deadline, _ := dctx.Deadline()
	raw.SetDeadline(deadline)
	if hs.cfg.TLS != nil {
		conf := hs.cfg.TLS.Clone()
		conf.ServerName, _, _ = net.SplitHostPort(addr)
		tc := tls.Client(raw, conf)
		if err := tc.HandshakeContext(dctx); err != nil {
			return fail(fmt.Errorf("TLS handshake: %w", err))
		}
		hc.conn = tc
	}
	var head string
	switch {
	case kind == StalledSub:
		head = "GET /sub?topic=" + StallTopic + "&multipart=0 HTTP/1.1\r\n"
	case port == portQueue:
		head = "POST /put?queue=chaos-slow HTTP/1.1\r\n"
	default:
		head = "POST /pub?topic=chaos-slow HTTP/1.1\r\n"
	}
	head += "Host: " + addr + "\r\nUser-Agent: quorumq-chaos-" + string(kind) + "\r\n"
	if hs.cfg.Token != "" {
		head += "Authorization: Bearer " + hs.cfg.Token + "\r\n"
	}
	if kind == SlowBody {
		head += fmt.Sprintf("Content-Type: application/octet-stream\r\nContent-Length: %d\r\n", slowBodyLen)
	}
	if _, err := hc.conn.Write([]byte(head + "\r\n")); err != nil {
		return fail(err)
	}
	if kind == StalledSub {
		// The status line says whether it is subscribed; nothing is read
		// after it (the stream's first bytes may come along: a few
		// hundred at most).
		line, err := readLine(hc.conn)
		hc.rec.Answer = line
		if err != nil {
			return fail(fmt.Errorf("reading the status line: %w", err))
		}
		if !strings.HasPrefix(line, "HTTP/1.1 200") && !strings.HasPrefix(line, "HTTP/1.0 200") {
			return fail(errors.New("subscription refused"))
		}
	}
	raw.SetDeadline(time.Time{})
	hc.rec.Start = hs.h.Now()
	hc.lastByte = hc.rec.Start
	return hc, nil
}

// poke notes a connection that was closed, or whose node's process is
// gone (killed, restarted, left), and sends a slow client's next byte when it is due.
func (hs *Hostile) poke(hc *hconn, now time.Duration) {
	// A node that died may leave the socket established on this side:
	// its kernel holds the FIN behind data a stalled subscriber never
	// takes. A connection of a process that is gone is over anyway.
	if closed, _ := tcpClosed(hc.raw); closed || hc.nd.PID() != hc.pid {
		hc.closedAt = now
		return
	}
	if hc.rec.Kind != SlowBody || now-hc.lastByte < hs.cfg.SlowByteEvery || hc.rec.BodyBytes >= slowBodyLen {
		return
	}
	hc.conn.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := hc.conn.Write([]byte{'x'}); err != nil {
		hc.closedAt, hc.closedErr = now, err.Error()
		return
	}
	hc.rec.BodyBytes++
	hc.lastByte = now
}

// finish classifies a connection seen closed, reads what the node
// answered (slow and idle clients), closes and records it.
func (hs *Hostile) finish(hc *hconn) {
	hc.rec.End, hc.rec.Error = hc.closedAt, hc.closedErr
	hc.rec.Ended = EndClosedByServer
	if hc.nd.PID() != hc.pid {
		hc.rec.Ended = EndNodeDown
	}
	if hc.rec.Kind != StalledSub {
		hc.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if line, _ := readLine(hc.conn); line != "" {
			hc.rec.Answer = line
		}
	}
	hc.conn.Close()
	hs.h.addHostile(hc.rec)
}

// readLine reads up to the first "\n" (at most 512 bytes, in small reads
// so as not to take more of a stream than needed) and returns it without
// the line end.
func readLine(c net.Conn) (string, error) {
	var buf []byte
	b := make([]byte, 64)
	for len(buf) < 512 {
		n, err := c.Read(b)
		buf = append(buf, b[:n]...)
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			return strings.TrimRight(string(buf[:i]), "\r"), nil
		}
		if err != nil {
			return strings.TrimRight(string(buf), "\r\n"), err
		}
	}
	return string(buf), nil
}
