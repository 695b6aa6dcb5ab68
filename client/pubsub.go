package client

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/quorumq/quorumq/api"
)

// Pubsub is a client of the pubsub port (default 8080) of one or more
// nodes. A message published on any node reaches the subscribers of every
// node. It is safe for concurrent use.
type Pubsub struct {
	*nodes
}

// NewPubsub returns a client for the pubsub ports at addrs, base URLs such
// as "http://127.0.0.1:8080".
func NewPubsub(addrs []string, opts *Options) (*Pubsub, error) {
	n, err := newNodes(addrs, opts)
	if err != nil {
		return nil, err
	}
	return &Pubsub{n}, nil
}

// Pub publishes msgs, in order, to topic ("" is the default topic) with one
// /pub request, and returns the number of subscribers, cluster-wide, that
// were sent the last message (the <C> of "Published <M> messages to <C>
// clients."). Pubsub splits the body on "\n", so a message must not
// contain one (api.ErrBadRequest); an empty message is allowed. Publishing is
// not idempotent: a failure after the request was sent is
// api.ErrOutcomeUnknown and is not retried.
func (p *Pubsub) Pub(ctx context.Context, topic string, msgs [][]byte) (int, error) {
	if len(msgs) == 0 {
		return 0, fmt.Errorf("%w: no message to publish", api.ErrBadRequest)
	}
	for i, m := range msgs {
		if bytes.IndexByte(m, '\n') >= 0 {
			return 0, fmt.Errorf("%w: message %d contains a newline, which pubsub would split", api.ErrBadRequest, i)
		}
	}
	v := url.Values{}
	if topic != "" {
		v.Set("topic", topic)
	}
	body := bytes.Join(msgs, []byte{'\n'})
	if body == nil {
		body = []byte{}
	}
	res, err := p.do(ctx, request{method: http.MethodPost, path: "/pub", query: v, body: body})
	if err != nil {
		return 0, err
	}
	return parsePublished(res.body)
}

// parsePublished reads "Published <M> messages to <C> clients.\n".
func parsePublished(body []byte) (int, error) {
	var m, c int
	if _, err := fmt.Sscanf(string(body), "Published %d messages to %d clients.", &m, &c); err != nil {
		return 0, fmt.Errorf("quorumq: /pub: unexpected answer %q", firstLine(body))
	}
	return c, nil
}

// SubscribeTopic subscribes to topic ("" is the default topic) in newline
// mode (/sub?multipart=0) on the preferred node, moving to the next one
// when a node cannot be reached or answers 503. The stream does not
// reconnect by itself: when Next fails, subscribe again (messages
// published in between are not kept for you; pubsub has no memory).
func (p *Pubsub) SubscribeTopic(ctx context.Context, topic string, opts *SubscribeOptions) (*Stream, error) {
	v := url.Values{"multipart": {"0"}}
	if topic != "" {
		v.Set("topic", topic)
	}
	o := SubscribeOptions{}
	if opts != nil {
		o = *opts
	}
	if o.HTTPClient == nil {
		o.HTTPClient = p.o.HTTPClient
	}
	if o.Token == "" {
		o.Token = p.o.Token
	}
	start := int(p.pref.Load()) % len(p.addrs)
	var err error
	for attempt := 0; attempt < p.o.MaxAttempts; attempt++ {
		if attempt > 0 {
			if p.o.Backoff.Sleep(ctx, attempt-1) != nil {
				break
			}
		}
		i := (start + attempt) % len(p.addrs)
		var s *Stream
		s, err = Subscribe(ctx, p.addrs[i]+"/sub?"+v.Encode(), &o)
		if err == nil {
			p.pref.Store(uint32(i))
			return s, nil
		}
		if !retryable(err) || ctx.Err() != nil {
			return nil, err
		}
	}
	return nil, err
}
