package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/auth"
	"github.com/quorumq/quorumq/pubsub"
)

// pubsubAPI serves bitly pubsub's routes (spec section 3) with topic=NAME,
// and the pubsub port's node-to-node routes (peer.go). Pubsub is not
// replicated: no request here goes through raft, so none needs the leader.
type pubsubAPI struct {
	o   Options
	log *slog.Logger
}

// routes lists the reference's routes in its order: /pub*, /sub*, /stats*
// (prefix globs, so /subscribe is /sub) and /clients, which has no star:
// with a query string it is a 404, as in the reference. GET and POST run
// the same code; HEAD is refused on /pub and /stats?reset.
func (p *pubsubAPI) routes() []route {
	return []route{
		{name: "pub", path: "/pub", match: glob, methods: getPost, style: pubsubStyle, writes: always, maxBody: p.o.MaxBodySize,
			needs: topicAccess(auth.Produce), handle: p.pub},
		{name: "sub", path: "/sub", match: glob, methods: getPost, style: pubsubStyle, needs: topicAccess(auth.Consume), handle: p.sub},
		{name: "pubsub_stats", path: "/stats", match: glob, methods: getPost, style: pubsubStyle, writes: pubsubReset,
			needs: pubsubStatsAccess, handle: p.stats},
		{name: "pubsub_clients", path: "/clients", match: exactURI, methods: getPost, style: pubsubStyle,
			needs: roleAccess(auth.Monitor), handle: p.clients},
	}
}

// pubsubReset reports /stats?reset with any value, even empty.
func pubsubReset(p params) bool { return p.has("reset") }

// routeError words a Route failure for the publisher.
func routeError(err error) error {
	kind := api.ErrRouteFailed
	if errors.Is(err, api.ErrTooLarge) {
		kind = api.ErrTooLarge
	}
	return kind.Errorf("nothing was published: %v", err)
}

// topicParam returns topic=NAME, api.DefaultTopic when absent.
func topicParam(p params) (string, error) { return p.topic() }

// pub is /pub: publish the POST body, split on "\n" into count+1
// messages (nothing trimmed; a GET or an empty body is one empty message;
// data= is ignored), to the topic's subscribers on every node. The answer
// is "Published <M> messages to <C> clients.\n", where C counts the
// subscribers, local plus remote, that were sent the last message.
func (p *pubsubAPI) pub(r *request) (reply, error) {
	topic, err := topicParam(r.p)
	if err != nil {
		return reply{}, err
	}
	body, err := r.body()
	if err != nil {
		return reply{}, err
	}
	msgs := bytes.Split(body, []byte{'\n'})
	if p.o.Route != nil {
		// Enqueue first: if it fails nothing was published, and the
		// publisher's retry does not repeat messages to subscribers. The
		// enqueue goes on if the publisher hangs up (as the fan-out does).
		if err := p.o.Route(context.WithoutCancel(r.Context()), topic, msgs); err != nil {
			return reply{}, routeError(err)
		}
	}
	// The remote half starts first, on its own goroutine, so that the
	// deliveries travel while the local subscribers are handed the
	// messages: once woken, thousands of local writers would compete
	// with every step of sending them. It goes on if the publisher hangs
	// up (the local subscribers have the messages), and ends within
	// FanoutTimeout.
	var remote chan int
	if p.o.Fanout != nil {
		remote = make(chan int, 1)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), p.o.FanoutTimeout)
		go func() {
			defer cancel()
			n, err := p.o.Fanout.Publish(ctx, topic, msgs)
			if err != nil {
				p.log.Debug("publish did not reach every node", "topic", topic, "err", err)
			}
			remote <- n
		}()
	}
	n := p.o.Hub.Publish(topic, msgs)
	if remote != nil {
		n += <-remote
	}
	return reply{body: fmt.Appendf(nil, "Published %d messages to %d clients.\n", len(msgs), n)}, nil
}

// sub is /sub: the hub takes the connection over until the subscriber
// leaves (multipart= parsed with atoi: absent or non-zero is multipart,
// "abc" is 0; HEAD gets the head of the stream and no subscription). See
// package pubsub.
func (p *pubsubAPI) sub(r *request) (reply, error) {
	topic, err := topicParam(r.p)
	if err != nil {
		return reply{}, err
	}
	multipart := true
	if v, ok := r.p.get("multipart"); ok {
		multipart = atoi(v) != 0
	}
	opts := pubsub.SubscribeOptions{Topic: topic, Multipart: multipart}
	return reply{serve: func(w http.ResponseWriter, r *http.Request) error {
		return p.o.Hub.Subscribe(w, r, opts)
	}}, nil
}

// stats is /stats: the counters as the X-PUBSUB-* headers and as the
// reference's text, or with format=json the same keys in the same order
// as valid JSON (the reference's trailing comma before "}", a listed
// defect, is dropped). reset, with any value, zeroes messages received and
// sent after the reply is built.
func (p *pubsubAPI) stats(r *request) (reply, error) {
	var st pubsub.Stats
	if pubsubReset(r.p) {
		st = p.o.Hub.ResetStats()
	} else {
		st = p.o.Hub.Stats()
	}
	u := func(n uint64) []string { return []string{strconv.FormatUint(n, 10)} }
	// Set directly: the reference spells these in capitals.
	h := http.Header{
		"X-PUBSUB-TOTAL-CONNECTIONS":  u(st.TotalConnections),
		"X-PUBSUB-ACTIVE-CONNECTIONS": {strconv.FormatInt(st.CurrentConnections, 10)},
		"X-PUBSUB-MESSAGES-RECEIVED":  u(st.MessagesReceived),
		"X-PUBSUB-MESSAGES-SENT":      u(st.MessagesSent),
		"X-PUBSUB-KICKED-CLIENTS":     u(st.KickedClients),
	}
	// A cluster node (with a Fanout) adds its remote counters after the
	// reference's lines and keys; a plain pubsub keeps them exactly.
	cluster := p.o.Fanout != nil
	if format, _ := r.p.get("format"); format == "json" {
		return reply{header: h, body: pubsubStatsJSON(st, cluster)}, nil
	}
	return reply{header: h, body: pubsubStatsText(st, cluster)}, nil
}

// pubsubStatsText writes the reference's five lines, then with remote
// the cluster's counters, one "Name: value" line each:
//
//	Remote messages received: <messages published elsewhere, delivered here>
//	Remote failures: <deliveries to other nodes that failed>
//	Remote messages dropped: <messages in those deliveries>
//	Remote messages sent: <messages other nodes answered as delivered>
func pubsubStatsText(st pubsub.Stats, remote bool) []byte {
	b := make([]byte, 0, 128)
	b = append(b, "Active connections: "...)
	b = strconv.AppendInt(b, st.CurrentConnections, 10)
	b = append(b, "\nTotal connections: "...)
	b = strconv.AppendUint(b, st.TotalConnections, 10)
	b = append(b, "\nMessages received: "...)
	b = strconv.AppendUint(b, st.MessagesReceived, 10)
	b = append(b, "\nMessages sent: "...)
	b = strconv.AppendUint(b, st.MessagesSent, 10)
	b = append(b, "\nKicked clients: "...)
	b = strconv.AppendUint(b, st.KickedClients, 10)
	if remote {
		b = append(b, "\nRemote messages received: "...)
		b = strconv.AppendUint(b, st.RemoteReceived, 10)
		b = append(b, "\nRemote failures: "...)
		b = strconv.AppendUint(b, st.RemoteFailures, 10)
		b = append(b, "\nRemote messages dropped: "...)
		b = strconv.AppendUint(b, st.RemoteDropped, 10)
		b = append(b, "\nRemote messages sent: "...)
		b = strconv.AppendUint(b, st.RemoteSent, 10)
	}
	return append(b, '\n')
}

// pubsubStatsJSON writes the reference's JSON layout (a space after each
// colon, none after commas, one line ending in "\n") without its trailing
// comma, so that the result is valid JSON. With remote, the keys
// remote_messages_received, remote_failures, remote_messages_dropped and
// remote_messages_sent follow the reference's five.
func pubsubStatsJSON(st pubsub.Stats, remote bool) []byte {
	b := make([]byte, 0, 128)
	b = append(b, `{"current_connections": `...)
	b = strconv.AppendInt(b, st.CurrentConnections, 10)
	b = append(b, `,"total_connections": `...)
	b = strconv.AppendUint(b, st.TotalConnections, 10)
	b = append(b, `,"messages_received": `...)
	b = strconv.AppendUint(b, st.MessagesReceived, 10)
	b = append(b, `,"messages_sent": `...)
	b = strconv.AppendUint(b, st.MessagesSent, 10)
	b = append(b, `,"kicked_clients": `...)
	b = strconv.AppendUint(b, st.KickedClients, 10)
	if remote {
		b = append(b, `,"remote_messages_received": `...)
		b = strconv.AppendUint(b, st.RemoteReceived, 10)
		b = append(b, `,"remote_failures": `...)
		b = strconv.AppendUint(b, st.RemoteFailures, 10)
		b = append(b, `,"remote_messages_dropped": `...)
		b = strconv.AppendUint(b, st.RemoteDropped, 10)
		b = append(b, `,"remote_messages_sent": `...)
		b = strconv.AppendUint(b, st.RemoteSent, 10)
	}
	return append(b, "}\n"...)
}

// clients is /clients: one line per subscriber in connect order, or
// "no /sub connections\n"; with Options.Clients, every node's.
func (p *pubsubAPI) clients(r *request) (reply, error) {
	var list []pubsub.Client
	if p.o.Clients != nil {
		var err error
		if list, err = p.o.Clients(r.Context()); err != nil {
			return reply{}, err
		}
	} else {
		list = p.o.Hub.Clients()
	}
	if len(list) == 0 {
		return reply{body: []byte("no /sub connections\n")}, nil
	}
	b := make([]byte, 0, 96*len(list))
	for _, c := range list {
		b = appendClientLine(b, c)
	}
	return reply{body: b}, nil
}

// clientState is libevent's EVCON_WRITING, what the reference shows for a
// subscriber in the normal case.
const clientState = 7

// appendClientLine writes one /clients line as the reference does:
// "<ip>:<port> connected at <YYYY-MM-DD HH:MM:SS>. output buffer
// size:<pending bytes> state:7" in UTC, then " node:<id>" when the client
// belongs to a cluster-wide listing.
func appendClientLine(b []byte, c pubsub.Client) []byte {
	b = append(b, c.RemoteAddr...)
	b = append(b, " connected at "...)
	b = c.ConnectedAt.UTC().AppendFormat(b, time.DateTime)
	b = append(b, ". output buffer size:"...)
	b = strconv.AppendInt(b, c.PendingBytes, 10)
	b = append(b, " state:"...)
	b = strconv.AppendInt(b, clientState, 10)
	if c.Node != "" {
		b = append(b, " node:"...)
		b = append(b, c.Node...)
	}
	return append(b, '\n')
}
