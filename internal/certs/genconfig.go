package certs

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/quorumq/quorumq/internal/cli"
)

// The kinds of GenConfig, the subcommands of `quorumq certs`.
const (
	KindCA   = "ca"   // a CA only
	KindNode = "node" // a node certificate from the directory's CA
	KindDev  = "dev"  // everything a development cluster needs
)

// Kinds lists every GenConfig kind.
var Kinds = []string{KindCA, KindNode, KindDev}

// DefaultDir is where the files go without --dir.
const DefaultDir = "./quorumq-certs"

// GenConfig describes what Generate writes. Start from DefaultGenConfig.
type GenConfig struct {
	// Kind is KindCA, KindNode or KindDev.
	Kind string
	// Dir receives the files (created 0700 if missing). For KindNode it
	// holds the CA that signs.
	Dir string
	// NodeID is the node of KindNode.
	NodeID string
	// Nodes are the nodes of KindDev; each certificate also has its node's
	// id as a DNS name.
	Nodes []string
	// DNSNames and IPs are added to every node certificate.
	DNSNames []string
	IPs      []net.IP
	// Loopback adds localhost, 127.0.0.1 and ::1 to every node
	// certificate, so that clusters and clients on one machine verify
	// without extra flags.
	Loopback bool
	// CAValidity and NodeValidity are how long new certificates are valid.
	CAValidity   time.Duration
	NodeValidity time.Duration
	// Force overwrites existing files; without it Generate refuses before
	// writing anything.
	Force bool
}

// DefaultGenConfig returns the defaults for kind: DefaultDir, the nodes
// node1, node2 and node3 (the ids of quorumq devcluster), loopback names
// included, DefaultCAValidity and DefaultNodeValidity.
func DefaultGenConfig(kind string) GenConfig {
	return GenConfig{
		Kind:         kind,
		Dir:          DefaultDir,
		Nodes:        []string{"node1", "node2", "node3"},
		Loopback:     true,
		CAValidity:   DefaultCAValidity,
		NodeValidity: DefaultNodeValidity,
	}
}

// RegisterFlags defines the flags of c.Kind on fs, writing into c, whose
// values are the flags' defaults.
func (c *GenConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Dir, "dir", c.Dir, "directory of the CA and the files written")
	fs.BoolVar(&c.Force, "force", c.Force, "overwrite existing files")
	if c.Kind == KindCA || c.Kind == KindDev {
		fs.DurationVar(&c.CAValidity, "ca-validity", c.CAValidity, "how long the CA certificate is valid")
	}
	if c.Kind == KindNode {
		fs.StringVar(&c.NodeID, "node-id", c.NodeID, "the node's id, as given to serve --node-id (required)")
	}
	if c.Kind == KindDev {
		fs.Var(&listFlag{p: &c.Nodes}, "nodes", "comma-separated node ids; each certificate also names its node id as a DNS name")
	}
	if c.Kind == KindNode || c.Kind == KindDev {
		fs.Var(&listFlag{p: &c.DNSNames}, "dns", "comma-separated DNS names for the node certificates")
		fs.Var(&ipListFlag{p: &c.IPs}, "ip", "comma-separated IP addresses for the node certificates")
		fs.BoolVar(&c.Loopback, "loopback", c.Loopback, "also name localhost, 127.0.0.1 and ::1 in the node certificates")
		fs.DurationVar(&c.NodeValidity, "validity", c.NodeValidity, "how long node certificates are valid (at most the CA's)")
	}
}

// Validate reports the first problem of c, an error matching ErrInvalid.
func (c GenConfig) Validate() error {
	if !slices.Contains(Kinds, c.Kind) {
		return invalid("kind %q: want ca, node or dev", c.Kind)
	}
	if c.Dir == "" {
		return invalid("dir is empty")
	}
	if c.Kind != KindNode && c.CAValidity <= 0 {
		return invalid("ca-validity=%v: must be positive", c.CAValidity)
	}
	switch c.Kind {
	case KindNode:
		if c.NodeID == "" {
			return invalid("node-id is required")
		}
	case KindDev:
		if len(c.Nodes) == 0 {
			return invalid("nodes is empty")
		}
		for i, id := range c.Nodes {
			if slices.Contains(c.Nodes[:i], id) {
				return invalid("nodes: %s is named twice", id)
			}
		}
	}
	if c.Kind != KindCA {
		for _, id := range c.nodeIDs() {
			if err := c.nodeRequest(id).validate(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c GenConfig) nodeIDs() []string {
	if c.Kind == KindNode {
		return []string{c.NodeID}
	}
	return c.Nodes
}

// nodeRequest is the certificate of node id: in a dev cluster the id is
// also its host name (as in docker-compose, where services are named
// after their nodes).
func (c GenConfig) nodeRequest(id string) NodeRequest {
	var dns []string
	if c.Kind == KindDev {
		dns = append(dns, id)
	}
	dns = append(dns, c.DNSNames...)
	ips := slices.Clone(c.IPs)
	if c.Loopback {
		dns = append(dns, "localhost")
		ips = append(ips, net.IPv4(127, 0, 0, 1), net.IPv6loopback)
	}
	return NodeRequest{ID: id, DNSNames: uniqueNames(dns), IPs: uniqueIPs(ips), Validity: c.NodeValidity}
}

func uniqueNames(names []string) []string {
	var out []string
	for _, n := range names {
		if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, n) }) {
			out = append(out, n)
		}
	}
	return out
}

func uniqueIPs(ips []net.IP) []net.IP {
	var out []net.IP
	for _, ip := range ips {
		if !slices.ContainsFunc(out, ip.Equal) {
			out = append(out, ip)
		}
	}
	return out
}

// file is one file Generate writes.
type file struct {
	name string
	data []byte
	mode fs.FileMode
	what string // what it is for, reported to the user
}

// Generate writes the files of c.Kind into c.Dir and names each on out.
// Everything is made before anything is written, and existing files are
// refused (unless c.Force) before anything is written, so a refusal leaves
// the directory as it was. Bad input matches ErrInvalid; other errors are
// I/O failures.
func Generate(c GenConfig, out io.Writer) error {
	if err := c.Validate(); err != nil {
		return err
	}
	var files []file
	var ca Pair
	if c.Kind == KindNode {
		var err error
		if ca, err = readCA(c.Dir); err != nil {
			return err
		}
	} else {
		var err error
		if ca, err = NewCA(c.CAValidity); err != nil {
			return err
		}
		keyPEM, err := ca.KeyPEM()
		if err != nil {
			return err
		}
		files = append(files,
			file{CAFile, ca.CertPEM(), 0o644, "the CA certificate: --tls-ca of nodes and clients (curl --cacert)"},
			file{CAKeyFile, keyPEM, 0o600, "the CA key: keep it off the nodes; `quorumq certs node` signs with it"},
		)
	}
	if c.Kind != KindCA {
		for _, id := range c.nodeIDs() {
			p, err := ca.IssueNode(c.nodeRequest(id))
			if err != nil {
				return err
			}
			keyPEM, err := p.KeyPEM()
			if err != nil {
				return err
			}
			files = append(files,
				file{NodeCertFile(id), p.CertPEM(), 0o644, id + "'s certificate: its --tls-cert"},
				file{NodeKeyFile(id), keyPEM, 0o600, id + "'s key: its --tls-key"},
			)
		}
	}
	if c.Kind == KindDev {
		key, err := NewGossipKey()
		if err != nil {
			return err
		}
		token, err := NewToken()
		if err != nil {
			return err
		}
		files = append(files,
			file{GossipKeyFile, EncodeGossipKeys(key), 0o600, "the gossip key of every node: --gossip-key-file (the first line is the primary key)"},
			file{TokensFile, []byte(TokenLine(AdminTokenName, []string{AdminRole}, token)), 0o600, "the admin token: --auth-tokens-file"},
		)
	}
	if err := writeFiles(c.Dir, files, c.Force); err != nil {
		return err
	}
	for _, f := range files {
		fmt.Fprintf(out, "wrote %s: %s\n", filepath.Join(c.Dir, f.name), f.what)
	}
	if c.Kind == KindDev {
		fmt.Fprintf(out, "read the admin token with: awk '$1 == %q {print $3}' %s\n", AdminTokenName, shellQuote(filepath.Join(c.Dir, TokensFile)))
	}
	return nil
}

// writeFiles writes files into dir, refusing (unless force) if any of
// them exists.
func writeFiles(dir string, files []file, force bool) error {
	if !force {
		for _, f := range files {
			path := filepath.Join(dir, f.name)
			_, err := os.Lstat(path)
			if err == nil {
				return invalid("%s: %w (--force overwrites it)", path, fs.ErrExist)
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	// 0700: the directory holds the CA key and the secrets.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(dir, f.name), f.data, f.mode, force); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, data []byte, mode fs.FileMode, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	fh, err := os.OpenFile(path, flags, mode)
	if err != nil {
		return err
	}
	// An overwritten file keeps its old mode, which may have been wider;
	// the umask may have narrowed a new one.
	if err := fh.Chmod(mode); err != nil {
		fh.Close()
		return err
	}
	if _, err := fh.Write(data); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

// readCA reads the CA of dir. Missing or unusable files are bad input
// (the wrong --dir, or no `certs ca` yet); failing to read them is not.
func readCA(dir string) (Pair, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		return Pair{}, invalid("no CA in %s: %s does not exist (make one with quorumq certs ca)", dir, certPath)
	} else if err != nil {
		return Pair{}, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return Pair{}, invalid("no CA key in %s: %s does not exist", dir, keyPath)
	} else if err != nil {
		return Pair{}, err
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return Pair{}, invalid("%s: no PEM CERTIFICATE", certPath)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return Pair{}, invalid("%s: %v", certPath, err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return Pair{}, invalid("%s is not a CA certificate", certPath)
	}
	block, _ = pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		return Pair{}, invalid("%s: no PEM PRIVATE KEY (PKCS#8)", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return Pair{}, invalid("%s: %v", keyPath, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return Pair{}, invalid("%s is not the key of %s", keyPath, certPath)
	}
	return Pair{Cert: cert, Key: key}, nil
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// listFlag is a comma-separated list flag. The first value given
// replaces the default; later ones (a repeated flag) add to it.
type listFlag struct {
	p   *[]string
	set bool
}

func (l *listFlag) String() string {
	if l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}

func (l *listFlag) Set(v string) error {
	if !l.set {
		*l.p, l.set = nil, true
	}
	*l.p = append(*l.p, cli.CommaList(v)...)
	return nil
}

// ipListFlag is a comma-separated list of IP addresses, like listFlag.
type ipListFlag struct {
	p   *[]net.IP
	set bool
}

func (l *ipListFlag) String() string {
	if l.p == nil {
		return ""
	}
	s := make([]string, len(*l.p))
	for i, ip := range *l.p {
		s[i] = ip.String()
	}
	return strings.Join(s, ",")
}

func (l *ipListFlag) Set(v string) error {
	var ips []net.IP
	for _, s := range cli.CommaList(v) {
		ip := net.ParseIP(s)
		if ip == nil {
			return fmt.Errorf("%q is not an IP address", s)
		}
		ips = append(ips, ip)
	}
	if !l.set {
		*l.p, l.set = nil, true
	}
	*l.p = append(*l.p, ips...)
	return nil
}
