package testkit

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/quorumq/quorumq/client"
)

const (
	// callTimeout bounds a Call whose context has no deadline.
	callTimeout = 5 * time.Second
	// maxBody bounds what a Call reads of an answer.
	maxBody = 64 << 20
)

// adminClient talks to the nodes directly, never through a proxy from
// the environment (nodes in network namespaces have non-loopback
// addresses).
var adminClient = &http.Client{Transport: client.NewTransport()}

// Call sends one request without a body to a node and returns the answer's
// body (at most 64 MiB) and status. It is bounded by ctx, and by 5 s when
// ctx has no deadline.
func Call(ctx context.Context, method, url string) (body string, code int, err error) {
	return call(ctx, adminClient, "", method, url)
}

// call is Call with client, sending token (unless empty) as a bearer.
func call(ctx context.Context, client *http.Client, token, method, url string) (body string, code int, err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, callTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return "", 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return "", 0, err
	}
	return string(b), resp.StatusCode, nil
}
