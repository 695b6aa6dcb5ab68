// Package certs is quorumq's cluster PKI: the development material that
// `quorumq certs` generates (a CA, node certificates, a gossip key, an
// admin token) and the loading of a node's TLS material.
//
// A node's identity is its node id. Its certificate carries the id twice:
// as the Subject CommonName, for people reading it, and as the URI SAN
// quorumq://node/<node-id> (NodeURI), which is what peers check
// (NodeIDFromCert). Node certificates are for both ServerAuth and
// ClientAuth, because every node is a server and a client of mutual TLS.
//
// Files written into a directory:
//
//	ca.pem, ca-key.pem           the CA; its key stays off the nodes
//	<node-id>.pem, -key.pem      a node's certificate and key
//	gossip.key                   memberlist keys, base64, one per line; the first is primary
//	tokens                       tokens-file lines: NAME ROLES SECRET [SCOPE...]
//
// Keys and secrets are written 0600 and nothing existing is overwritten
// unless asked (GenConfig.Force).
package certs
