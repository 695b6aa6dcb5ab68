package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// LoadCA reads a PEM file of CA certificates (such as the ca.pem that
// `quorumq certs dev` writes) into a pool. A file without a certificate is
// an error, so that a wrong path (a key, an empty file) fails at start
// rather than at the first handshake.
func LoadCA(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// TLSConfig returns the TLS configuration of a client that trusts only the
// CA certificates in caFile (PEM): a secured cluster's nodes carry
// certificates from its own CA, and trusting the system roots as well
// would let any public certificate for a node's name pass.
func TLSConfig(caFile string) (*tls.Config, error) {
	pool, err := LoadCA(caFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// NewHTTPClient returns an HTTP client over NewTransport that verifies
// HTTPS servers with tlsConf (nil: the system roots). Its Timeout is zero:
// calls are bounded by contexts.
func NewHTTPClient(tlsConf *tls.Config) *http.Client {
	t := NewTransport()
	if tlsConf != nil {
		t.TLSClientConfig = tlsConf.Clone()
	}
	return &http.Client{Transport: t}
}

// HTTPS returns rawURL as a client with Options.TLS dials it: without a
// scheme, or with http://, it becomes https://. Such a client speaks only
// HTTPS, so that a default http:// URL still reaches a secured node and a
// token never travels in the clear. Other URLs are returned unchanged.
func HTTPS(rawURL string) string {
	switch {
	case !strings.Contains(rawURL, "://"):
		return "https://" + rawURL
	case len(rawURL) >= len("http://") && strings.EqualFold(rawURL[:len("http://")], "http://"):
		return "https://" + rawURL[len("http://"):]
	}
	return rawURL
}

// SetToken adds token ("" adds nothing) to req as "Authorization: Bearer
// <token>": in the header, never in the URL, where access logs and error
// messages would keep it.
func SetToken(req *http.Request, token string) {
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
}

// redactedValue replaces a secret in a URL.
const redactedValue = "REDACTED"

// RedactURL returns s with the value of every token= query parameter (how
// the original simplehttp clients pass a token) replaced by REDACTED, for
// logs and error messages. It works on
// the text, so that a URL template that does not parse (ps_to_http's %s)
// is redacted too.
func RedactURL(s string) string {
	q := strings.IndexByte(s, '?')
	if q < 0 {
		return s
	}
	query, frag := s[q+1:], ""
	if h := strings.IndexByte(query, '#'); h >= 0 {
		query, frag = query[:h], query[h:]
	}
	params := strings.Split(query, "&")
	changed := false
	for i, p := range params {
		k, _, hasValue := strings.Cut(p, "=")
		if hasValue && isTokenParam(k) {
			params[i], changed = k+"="+redactedValue, true
		}
	}
	if !changed {
		return s
	}
	return s[:q+1] + strings.Join(params, "&") + frag
}

// isTokenParam reports whether a query key is token, as the server would
// read it (percent-decoded, any case).
func isTokenParam(k string) bool {
	if d, err := url.QueryUnescape(k); err == nil {
		k = d
	}
	return strings.EqualFold(k, "token")
}

// RedactError removes a token= value from the URL that net/http puts in
// its errors (a *url.Error, changed in place) and returns err.
func RedactError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = RedactURL(ue.URL)
	}
	return err
}

// RegisterSecurityFlags defines on fs the two flags of a client of a
// secured cluster: --token, written into *token, and --tls-ca, a PEM file
// of the cluster CA, loaded when the flag is set (a bad file is a flag
// error) into *tlsConf as TLSConfig makes it. The help never shows a
// token.
func RegisterSecurityFlags(fs *flag.FlagSet, token *string, tlsConf **tls.Config) {
	fs.Var((*tokenFlag)(token), "token", "bearer token sent to the cluster in the Authorization header (prefer the environment: a command line is visible to other users)")
	fs.Var(&caFlag{conf: tlsConf}, "tls-ca", "PEM file of the cluster CA: talk HTTPS and trust only it (http:// URLs and URLs without a scheme are used as https://)")
}

// tokenFlag is --token: String never shows the token, so neither the help
// nor anything that prints flags reveals it.
type tokenFlag string

func (f *tokenFlag) String() string {
	if f == nil || *f == "" {
		return ""
	}
	return redactedValue
}

func (f *tokenFlag) Set(v string) error {
	*f = tokenFlag(v)
	return nil
}

// caFlag is --tls-ca: the file is read when the flag is set.
type caFlag struct {
	conf *(*tls.Config)
	path string
}

func (f *caFlag) String() string {
	if f == nil {
		return ""
	}
	return f.path
}

func (f *caFlag) Set(v string) error {
	if v == "" {
		f.path, *f.conf = "", nil
		return nil
	}
	c, err := TLSConfig(v)
	if err != nil {
		return err
	}
	f.path, *f.conf = v, c
	return nil
}
