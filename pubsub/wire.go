package pubsub

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The bodies of the node-to-node routes (served by httpapi, called by
// Fanout): POST api.PathDeliver?topic=T with api.HeaderHop carries one or
// more delivery records (AppendDeliveryRecord), each delivered to the
// receiver's local subscribers, in order, and never forwarded; the answer
// is 200 with one line per record, the number of local subscribers that
// were sent the record's last message. GET api.PathClients answers the
// node's local subscribers as JSON (EncodeClients).

// DeliverContentType is the type of a delivery body.
const DeliverContentType = "application/x-quorumq-deliver"

var errBadDelivery = errors.New("bad delivery body")

// AppendDeliveryRecord appends one delivery record to b: the messages of
// one publish, length-prefixed so that any bytes survive:
//
//	uvarint  message count
//	per message: uvarint length, then the bytes
func AppendDeliveryRecord(b []byte, msgs [][]byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(msgs)))
	for _, m := range msgs {
		b = binary.AppendUvarint(b, uint64(len(m)))
		b = append(b, m...)
	}
	return b
}

// DecodeDelivery splits a delivery body into its records. The messages
// point into body.
func DecodeDelivery(body []byte) ([][][]byte, error) {
	var out [][][]byte
	for len(body) > 0 {
		n, k := binary.Uvarint(body)
		if k <= 0 {
			return nil, fmt.Errorf("%w: bad message count", errBadDelivery)
		}
		body = body[k:]
		// Every message takes at least one byte (its length): a bound on
		// what a malformed count makes us allocate.
		if n > uint64(len(body)) {
			return nil, fmt.Errorf("%w: %d messages in %d bytes", errBadDelivery, n, len(body))
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: record without messages", errBadDelivery)
		}
		msgs := make([][]byte, 0, n)
		for range n {
			size, k := binary.Uvarint(body)
			if k <= 0 || size > uint64(len(body)-k) {
				return nil, fmt.Errorf("%w: truncated message", errBadDelivery)
			}
			msgs = append(msgs, body[k:k+int(size):k+int(size)])
			body = body[k+int(size):]
		}
		out = append(out, msgs)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no records", errBadDelivery)
	}
	return out, nil
}

// wireClient is one subscriber in GET /internal/clients.
type wireClient struct {
	ID           uint64    `json:"id"`
	RemoteAddr   string    `json:"remote_addr"`
	ConnectedAt  time.Time `json:"connected_at"`
	PendingBytes int64     `json:"pending_bytes"`
	Topic        string    `json:"topic"`
	WebSocket    bool      `json:"websocket,omitempty"`
	Kicked       bool      `json:"kicked,omitempty"`
}

type wireClients struct {
	Clients []wireClient `json:"clients"`
}

// EncodeClients is the body of GET /internal/clients: {"clients":[...]}.
func EncodeClients(cs []Client) []byte {
	w := wireClients{Clients: make([]wireClient, len(cs))}
	for i, c := range cs {
		w.Clients[i] = wireClient{
			ID: c.ID, RemoteAddr: c.RemoteAddr, ConnectedAt: c.ConnectedAt,
			PendingBytes: c.PendingBytes, Topic: c.Topic, WebSocket: c.WebSocket, Kicked: c.Kicked,
		}
	}
	b, _ := json.Marshal(w) // nothing in it can fail to marshal
	return append(b, '\n')
}

// DecodeClients parses EncodeClients' output; Node is left empty.
func DecodeClients(b []byte) ([]Client, error) {
	var w wireClients
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	out := make([]Client, len(w.Clients))
	for i, c := range w.Clients {
		out[i] = Client{
			ID: c.ID, RemoteAddr: c.RemoteAddr, ConnectedAt: c.ConnectedAt,
			PendingBytes: c.PendingBytes, Topic: c.Topic, WebSocket: c.WebSocket, Kicked: c.Kicked,
		}
	}
	return out, nil
}
