package systemtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/testkit"
)

// user is a test as a user of its nodes: the HTTP client it talks to them
// with, the token it sends and the test it fails. On an open cluster the
// client speaks plain HTTP and sends no token; on a secured one it trusts
// the cluster CA only and sends the admin token with every request, as a
// bearer. The clients and tools a test starts (client.Queue, streams,
// ps_to_http, the reader) get the same from it. A cluster and each of its
// nodes share one user.
type user struct {
	t testing.TB
	// sec is the cluster's security material, nil when it is open.
	sec *testkit.Security
	// client answers within 10 s; noRedirect returns 3xx answers instead
	// of following them. Both go to the nodes directly, never through a
	// proxy from the environment (nodes in network namespaces have
	// non-loopback addresses).
	client, noRedirect *http.Client
	token              string
	tls                *tls.Config
}

// openTransport is the transport of every open user.
var openTransport = &http.Transport{
	Proxy:               nil,
	DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	MaxIdleConnsPerHost: 32,
	IdleConnTimeout:     30 * time.Second,
}

// newUser returns the user of a cluster secured with sec, or of an open
// one when sec is nil.
func newUser(t testing.TB, sec *testkit.Security) *user {
	u := &user{t: t, sec: sec}
	tr := http.RoundTripper(openTransport)
	if sec != nil {
		conf, err := client.TLSConfig(sec.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		u.token, u.tls = sec.Token, conf
		tr = sec.HTTPClient().Transport
	}
	u.client = &http.Client{Timeout: 10 * time.Second, Transport: tr}
	u.noRedirect = &http.Client{
		Timeout:       u.client.Timeout,
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return u
}

// secured reports whether the user's nodes are secured.
func (u *user) secured() bool { return u.sec != nil }

// response is an HTTP answer read whole.
type response struct {
	code   int
	header http.Header
	body   string
}

// do sends one request and reads the whole answer.
func (u *user) do(ctx context.Context, method, url string, body []byte) (response, error) {
	return u.send(ctx, u.client, method, url, body)
}

// doNoRedirect is do that returns a 3xx answer instead of following it.
func (u *user) doNoRedirect(ctx context.Context, method, url string, body []byte) (response, error) {
	return u.send(ctx, u.noRedirect, method, url, body)
}

func (u *user) send(ctx context.Context, c *http.Client, method, url string, body []byte) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return response{}, err
	}
	return u.roundTrip(c, req)
}

// roundTrip sends req, with the user's token, through c.
func (u *user) roundTrip(c *http.Client, req *http.Request) (response, error) {
	client.SetToken(req, u.token)
	resp, err := c.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{code: resp.StatusCode, header: resp.Header, body: string(b)}, nil
}

// get sends a GET and returns the status and body; on an error the
// status is 0 and the body the error.
func (u *user) get(url string) (int, string) {
	res, err := u.do(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	return res.code, res.body
}

// post sends a POST with body.
func (u *user) post(ctx context.Context, url string, body []byte) (int, string, error) {
	res, err := u.do(ctx, http.MethodPost, url, body)
	return res.code, res.body, err
}

// mustGet sends a GET and requires a 200; it returns the body.
func (u *user) mustGet(url string) string {
	u.t.Helper()
	code, body := u.get(url)
	if code != http.StatusOK {
		u.t.Fatalf("GET %s: %d %s", url, code, strings.TrimSpace(body))
	}
	return body
}

// mustGetStatus sends a GET and returns the answer, whatever its status.
func (u *user) mustGetStatus(url string) response {
	u.t.Helper()
	res, err := u.do(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		u.t.Fatalf("GET %s: %v", url, err)
	}
	return res
}

// mustPut sends one message with POST (to /put, /mput) and requires a
// 200.
func (u *user) mustPut(url, msg string) response {
	u.t.Helper()
	res, err := u.do(context.Background(), http.MethodPost, url, []byte(msg))
	if err != nil {
		u.t.Fatalf("POST %s: %v", url, err)
	}
	if res.code != http.StatusOK {
		u.t.Fatalf("POST %s: %d %s", url, res.code, strings.TrimSpace(res.body))
	}
	return res
}

// clientOptions are the options of a client.Queue or client.Pubsub of
// the user's nodes.
func (u *user) clientOptions() *client.Options {
	o := client.DefaultOptions()
	o.Token, o.TLS = u.token, u.tls
	return &o
}

// subscribeOptions are the options of a client.Subscribe on the user's
// nodes. Its client has no timeout: a stream lasts.
func (u *user) subscribeOptions() *client.SubscribeOptions {
	o := &client.SubscribeOptions{Token: u.token}
	if u.sec != nil {
		o.HTTPClient = u.sec.HTTPClient()
	}
	return o
}

// toolArgs are the flags that let a client tool (ps_to_http, the
// reader process) reach the user's nodes: the CA file and the token when
// they are secured, none when open.
func (u *user) toolArgs() []string {
	if u.sec == nil {
		return nil
	}
	return []string{"--tls-ca=" + u.sec.CAFile, "--token=" + u.token}
}
