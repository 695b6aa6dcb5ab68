package httpapi

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/pubsub"
)

// PubsubPeer is the node-to-node side of the pubsub port: the routes under
// /internal/ that the other nodes call. They are not bitly pubsub's API and
// none of them matches one of its route globs.
//
//   - POST /internal/deliver?topic=T, with the header X-Quorumq-Hop (a
//     request without it is a 400: it is not a publish API): the body is
//     one or more delivery records (pubsub.AppendDeliveryRecord:
//     length-prefixed, so any bytes survive). Each record goes to this
//     node's local subscribers of T, in order, through Deliver, and is
//     never forwarded: one hop. The answer is 200 with one line per
//     record: how many local subscribers were sent its last message.
//     400 for a bad topic or body, 413 for a body above twice
//     MaxBodySize plus 1 MiB (framing may double a body of empty
//     messages).
//   - GET /internal/subs: this node's subscriber-set entry as the cluster
//     gossips it (SubscriberSet), application/octet-stream. Peers fetch it
//     when they learned a newer version without its topics.
//   - GET /internal/clients: this node's subscribers as JSON
//     (pubsub.EncodeClients), for a cluster-wide /clients on another node.
type PubsubPeer struct {
	// Deliver hands messages published on another node to the local
	// subscribers (pubsub.Hub.Deliver). Required.
	Deliver func(topic string, msgs [][]byte) (delivered int)
	// SubscriberSet returns this node's encoded subscriber-set entry
	// (cluster.Node.LocalSubscriberSet). nil: /internal/subs is a 404.
	SubscriberSet func() []byte
}

// serveInternal answers a request under /internal/.
func (s *pubsubServer) serveInternal(w http.ResponseWriter, r *http.Request) {
	name, code := "none", http.StatusNotFound
	switch r.URL.Path {
	case api.PathDeliver:
		name, code = "internal_deliver", s.internalDeliver(w, r)
	case api.PathSubs:
		if s.o.Peer.SubscriberSet != nil {
			name = "internal_subs"
			code = s.internalGet(w, r, "application/octet-stream", s.o.Peer.SubscriberSet)
		} else {
			writeEmpty(w, code)
		}
	case api.PathClients:
		name = "internal_clients"
		code = s.internalGet(w, r, "application/json", func() []byte { return pubsub.EncodeClients(s.o.Hub.Clients()) })
	default:
		writeEmpty(w, code)
	}
	s.m.request(name, code)
}

func writeEmpty(w http.ResponseWriter, code int) {
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(code)
}

// internalRoute is the pubsubRoute of the internal endpoints, for fail.
var internalRoute = &pubsubRoute{name: "internal"}

func (s *pubsubServer) internalGet(w http.ResponseWriter, r *http.Request, ctype string, body func() []byte) int {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return s.fail(w, internalRoute, api.ErrMethodNotAllowed.Errorf("%s: use GET", r.URL.Path))
	}
	b := body()
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(b)
	}
	return http.StatusOK
}

// internalDeliver is POST /internal/deliver.
func (s *pubsubServer) internalDeliver(w http.ResponseWriter, r *http.Request) int {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return s.fail(w, internalRoute, api.ErrMethodNotAllowed.Errorf("%s: use POST", api.PathDeliver))
	}
	if r.Header.Get(api.HeaderHop) == "" {
		return s.fail(w, internalRoute, api.ErrBadRequest.Errorf("%s is for other nodes: missing %s (publish with /pub)", api.PathDeliver, api.HeaderHop))
	}
	topic, err := topicParam(parseQuery(r.URL.RawQuery))
	if err != nil {
		return s.fail(w, internalRoute, err)
	}
	limit := 2*s.o.MaxBodySize + 1<<20
	if r.ContentLength > limit {
		return s.fail(w, internalRoute, api.ErrTooLarge.Errorf("delivery body is %d bytes, more than the limit of %d bytes", r.ContentLength, limit))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return s.fail(w, internalRoute, api.ErrTooLarge.Errorf("delivery body is more than the limit of %d bytes", limit))
	case err != nil:
		return s.fail(w, internalRoute, api.ErrBadRequest.Errorf("reading the delivery body: %v", err))
	}
	records, err := pubsub.DecodeDelivery(body)
	if err != nil {
		return s.fail(w, internalRoute, api.ErrBadRequest.Errorf("%v", err))
	}
	out := make([]byte, 0, 4*len(records))
	for _, msgs := range records {
		out = strconv.AppendInt(out, int64(s.o.Peer.Deliver(topic, msgs)), 10)
		out = append(out, '\n')
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	w.Write(out)
	return http.StatusOK
}
