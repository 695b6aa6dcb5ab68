package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/cli"
)

// Names of the files in a certificate directory; a node's are
// NodeCertFile and NodeKeyFile.
const (
	CAFile        = "ca.pem"
	CAKeyFile     = "ca-key.pem"
	GossipKeyFile = "gossip.key"
	TokensFile    = "tokens"
)

// NodeCertFile is the name of node id's certificate file.
func NodeCertFile(id string) string { return id + ".pem" }

// NodeKeyFile is the name of node id's key file.
func NodeKeyFile(id string) string { return id + "-key.pem" }

const (
	// DefaultCAValidity outlives any development cluster, so nobody has
	// to rotate a CA.
	DefaultCAValidity = 10 * 365 * 24 * time.Hour
	// DefaultNodeValidity is one year: node certificates are cheap to
	// reissue from the CA.
	DefaultNodeValidity = 365 * 24 * time.Hour
	// GossipKeySize makes memberlist use AES-256.
	GossipKeySize = 32
	// TokenPrefix starts every generated token, so a leaked one is easy
	// to recognise (and to search for).
	TokenPrefix = "qq_"
	// AdminTokenName and AdminRole name the token of a dev cluster.
	AdminTokenName = "admin"
	AdminRole      = "admin"
)

// The identity URI of a node is quorumq://node/<node-id>.
const (
	nodeURIScheme = "quorumq"
	nodeURIHost   = "node"
)

// backdate is how far before now certificates become valid, so that a
// certificate made on one machine is valid at once on nodes whose clocks
// are a little behind.
const backdate = time.Hour

// tokenBytes is the entropy of a generated token.
const tokenBytes = 32

// ErrInvalid marks bad input: a GenConfig or NodeRequest that is refused,
// files that exist without Force, a directory without a usable CA.
var ErrInvalid = errors.New("certs: invalid request")

// invalid is an error of bad input: it matches ErrInvalid and reads as
// the message alone.
func invalid(format string, a ...any) error {
	return cli.Mark(fmt.Errorf(format, a...), ErrInvalid)
}

// NodeURI is the URI SAN that carries node id's identity:
// quorumq://node/<id>.
func NodeURI(id string) *url.URL {
	return &url.URL{Scheme: nodeURIScheme, Host: nodeURIHost, Path: "/" + id}
}

// NodeIDFromCert returns the node id of c's single quorumq://node/ URI
// SAN. None, more than one, or one whose id is not a valid node id is an
// error: a certificate that names two nodes identifies neither.
func NodeIDFromCert(c *x509.Certificate) (string, error) {
	var found []*url.URL
	for _, u := range c.URIs {
		if u.Scheme == nodeURIScheme && u.Host == nodeURIHost {
			found = append(found, u)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("certificate %q names no node (no %s://%s/ URI)", c.Subject.CommonName, nodeURIScheme, nodeURIHost)
	case 1:
	default:
		return "", fmt.Errorf("certificate %q names %d nodes: want one", c.Subject.CommonName, len(found))
	}
	u := found[0]
	id, ok := strings.CutPrefix(u.Path, "/")
	// Anything beyond the plain path (user, query, fragment) is not what
	// NodeURI makes, so it is not trusted to mean the same id.
	if !ok || !api.ValidNodeID(id) || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("certificate %q: %s is not a node identity", c.Subject.CommonName, u)
	}
	return id, nil
}

// Pair is a certificate and its private key.
type Pair struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// CertPEM is the certificate as a PEM "CERTIFICATE" block.
func (p Pair) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Cert.Raw})
}

// KeyPEM is the key as a PKCS#8 PEM "PRIVATE KEY" block.
func (p Pair) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(p.Key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// TLSCertificate is p for a tls.Config, without writing files.
func (p Pair) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{p.Cert.Raw}, PrivateKey: p.Key, Leaf: p.Cert}
}

// NewCA makes a self-signed CA valid for validity from now. It may sign
// node certificates only (MaxPathLen 0): a leaked node key cannot mint
// further certificates.
func NewCA(validity time.Duration) (Pair, error) {
	if validity <= 0 {
		return Pair{}, invalid("CA validity %v: must be positive", validity)
	}
	key, serial, err := newKeyAndSerial()
	if err != nil {
		return Pair{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// The serial's start tells two development CAs apart in a
		// certificate viewer.
		Subject:               pkix.Name{CommonName: "quorumq development CA " + serial.Text(16)[:8], Organization: []string{"quorumq"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	return sign(tmpl, tmpl, key, key)
}

// NodeRequest describes a node certificate.
type NodeRequest struct {
	// ID is the node id (--node-id of serve): the CommonName and the
	// NodeURI SAN.
	ID string
	// DNSNames and IPs are the names and addresses clients dial; exactly
	// these are included.
	DNSNames []string
	IPs      []net.IP
	// Validity is how long the certificate is valid from now; it ends with
	// the CA's validity at the latest.
	Validity time.Duration
}

// IssueNode makes a node certificate signed by ca, for both ServerAuth and
// ClientAuth: every node is a server and a client of mutual TLS.
func (ca Pair) IssueNode(r NodeRequest) (Pair, error) {
	if err := r.validate(); err != nil {
		return Pair{}, err
	}
	key, serial, err := newKeyAndSerial()
	if err != nil {
		return Pair{}, err
	}
	now := time.Now()
	notAfter := now.Add(r.Validity)
	// A certificate that outlives its CA fails verification once the CA
	// expires anyway; saying so in the certificate is clearer.
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: r.ID, Organization: []string{"quorumq"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		// ECDSA keys sign; they do not encipher, so no KeyEncipherment.
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:        []*url.URL{NodeURI(r.ID)},
		DNSNames:    r.DNSNames,
		IPAddresses: r.IPs,
	}
	return sign(tmpl, ca.Cert, key, ca.Key)
}

func (r NodeRequest) validate() error {
	if !api.ValidNodeID(r.ID) {
		return invalid("node id %q: want 1 to 128 letters, digits, '.', '_' or '-'", r.ID)
	}
	if r.Validity <= 0 {
		return invalid("node %s: validity %v: must be positive", r.ID, r.Validity)
	}
	for _, n := range r.DNSNames {
		if !validDNSName(n) {
			return invalid("node %s: DNS name %q: want letters, digits, '.', '-' or '_', optionally after \"*.\"", r.ID, n)
		}
	}
	for _, ip := range r.IPs {
		if ip.To16() == nil {
			return invalid("node %s: IP address %v", r.ID, ip)
		}
	}
	return nil
}

// validDNSName accepts host names (and a leading wildcard label) as Go's
// verifier matches them; anything else in a SAN would only fail later, in
// a handshake.
func validDNSName(n string) bool {
	n = strings.TrimPrefix(n, "*.")
	if n == "" || len(n) > 253 || strings.HasPrefix(n, ".") || strings.HasSuffix(n, ".") || strings.Contains(n, "..") {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// newKeyAndSerial makes an ECDSA P-256 key and a random positive 128-bit
// serial number.
func newKeyAndSerial() (*ecdsa.PrivateKey, *big.Int, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		serial, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, nil, err
		}
		if serial.Sign() > 0 { // RFC 5280: serials are positive
			return key, serial, nil
		}
	}
}

func sign(tmpl, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) (Pair, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return Pair{}, fmt.Errorf("create certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Pair{}, err
	}
	return Pair{Cert: cert, Key: key}, nil
}

// NewGossipKey is a random memberlist key of GossipKeySize bytes.
func NewGossipKey() ([]byte, error) {
	key := make([]byte, GossipKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return key, nil
}

// EncodeGossipKeys is the content of a gossip key file: each key in
// standard base64 on its own line. The first line is the primary key (the
// one that encrypts); the others are only accepted, which is how a key is
// rotated in: add it as a second line, make it the first, then drop the
// old one.
func EncodeGossipKeys(keys ...[]byte) []byte {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(base64.StdEncoding.EncodeToString(k))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// NewToken is a random API token: TokenPrefix and 32 random bytes in
// unpadded base64url, so it fits in a URL's token= parameter unescaped.
func NewToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// TokenLine is one line of a tokens file, NAME ROLES SECRET [SCOPE...]:
// roles comma-separated, scopes (queue or topic name globs) optional, e.g.
// "admin admin qq_...". The format lives here only.
func TokenLine(name string, roles []string, secret string, scopes ...string) string {
	fields := append([]string{name, strings.Join(roles, ","), secret}, scopes...)
	return strings.Join(fields, " ") + "\n"
}
