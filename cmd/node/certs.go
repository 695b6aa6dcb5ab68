package main

import (
	"flag"
	"io"

	"github.com/quorumq/quorumq/internal/certs"
)

const certsUsage = `Usage:
  quorumq certs ca   [--dir=DIR] [flags]
  quorumq certs node --node-id=ID [--dir=DIR] [--dns=NAME,...] [--ip=ADDR,...] [flags]
  quorumq certs dev  [--nodes=node1,node2,node3] [--dir=DIR] [--dns=...] [--ip=...] [flags]

Makes the TLS material of a cluster, for development and trials (ECDSA
P-256 keys, PEM files; keys and secrets are written 0600):
  ca     a CA: DIR/ca.pem (give it to nodes and clients as --tls-ca) and
         DIR/ca-key.pem (keep it off the nodes)
  node   a certificate for node ID signed by DIR's CA: DIR/ID.pem and
         DIR/ID-key.pem (--tls-cert, --tls-key). It names the node as
         quorumq://node/ID (what peers check) and as its CommonName, and
         carries the --dns names and --ip addresses clients dial
  dev    everything a development cluster needs in one go: a CA, a
         certificate per node (each also naming its node id as a DNS
         name), DIR/gossip.key (--gossip-key-file) and DIR/tokens
         (--auth-tokens-file) holding an admin token
Node certificates also name localhost, 127.0.0.1 and ::1 unless
--loopback=false. Existing files are not overwritten without --force.

Flags:
`

// runCerts is `quorumq certs`.
func runCerts(args []string, stdout, stderr io.Writer) int {
	kind, args, code, ok := pickKind("certs", certs.Kinds, certsUsage, envCerts, args, stdout, stderr)
	if !ok {
		return code
	}
	cfg := certs.DefaultGenConfig(kind)
	fs := flag.NewFlagSet("certs "+kind, flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	fs.Usage = func() {
		io.WriteString(fs.Output(), certsUsage)
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args, stderr, envCerts); !ok {
		return code
	}
	return exitStatus(stderr, fs.Name(), certs.Generate(cfg, stdout), certs.ErrInvalid)
}
