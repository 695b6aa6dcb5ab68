// Package auth holds a node's client tokens: the tokens file
// (--auth-tokens-file), its roles and scopes, and the lookup of a token in
// constant time. It decides what a token may do; which role an HTTP
// request needs is httpapi's business.
//
// The tokens file has one token per line, NAME ROLES SECRET [SCOPE...]:
//
//	# name      roles     secret                                 scopes
//	ingest      produce   3dd2c1d0a8e44b6bb4b8d3c7e55e1f02       queue=clicks topic=clicks
//	analytics   consume   sha256:<64 hex digits>                 queue=clicks
//	prometheus  monitor   sha256:<64 hex digits>
//	ops         admin     sha256:<64 hex digits>
//
// The fields:
//
//   - NAME identifies the token in logs and error messages (never the
//     secret): [A-Za-z0-9._-]{1,64}, unique in the file.
//   - ROLES is a comma-separated list of produce, consume, monitor, admin.
//   - SECRET is the token itself, at least 16 characters of
//     [A-Za-z0-9._~-] (so that it travels unchanged in a URL and a header),
//     or sha256:<64 hex digits>, the SHA-256 of the token, so that the file
//     need not hold the token at all (printf %s "$TOKEN" | sha256sum).
//     Two lines may not have the same secret.
//   - SCOPE is queue=GLOB or topic=GLOB (path.Match syntax: * ? [...]).
//     A token without scopes may touch every queue and topic; a token with
//     scopes only the queues and topics one of them matches, so
//     "queue=clicks" alone allows no topic at all.
//
// Blank lines and lines starting with # are ignored, and # starts a
// comment after a field. Any error refuses the whole file, with the line
// numbers of every bad line; an empty file (no token) is refused too, since
// it would lock every client out.
//
// A file that holds plain secrets and that other users may read is loaded
// with a warning, not refused: container secrets are often mounted
// world-readable, and a file of sha256: lines gives nothing away.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"path"
	"strings"
)

// Role is a set of roles.
type Role uint8

// The roles. What each lets a client do is in httpapi's table (see the
// README); in short:
const (
	// Produce: put, mput, pub.
	Produce Role = 1 << iota
	// Consume: get, mget, ack, nack, touch, dump, sub.
	Consume
	// Monitor: the read-only views (stats, config, status, metrics,
	// clients). Every token has it; a monitor-only token has nothing
	// else, for a metrics scraper or a dashboard.
	Monitor
	// Admin: changes of the cluster and of queue settings (config
	// changes, stats resets, leave, membership), and every other role.
	Admin
)

var roleNames = []struct {
	name string
	role Role
}{{"produce", Produce}, {"consume", Consume}, {"monitor", Monitor}, {"admin", Admin}}

// String lists the roles in r, comma-separated.
func (r Role) String() string {
	var b strings.Builder
	for _, rn := range roleNames {
		if r&rn.role != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(rn.name)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// Kind is what a scope limits: queues or topics.
type Kind uint8

const (
	Queue Kind = iota + 1
	Topic
)

func (k Kind) String() string {
	if k == Topic {
		return "topic"
	}
	return "queue"
}

// Scope limits a token to the queues or topics whose names match Glob.
type Scope struct {
	Kind Kind
	Glob string
}

func (s Scope) String() string { return s.Kind.String() + "=" + s.Glob }

// Principal is one token of the file, without its secret.
type Principal struct {
	Name   string
	Roles  Role
	Scopes []Scope

	digest [sha256.Size]byte
	hashed bool // the file holds the digest, not the secret
}

// Has reports whether p holds role. Admin holds every role, and every
// token may observe (Monitor).
func (p *Principal) Has(role Role) bool {
	return p.Roles&(role|Admin) != 0 || role == Monitor
}

// Allows reports whether p may touch the queue or topic name. A token
// without scopes may touch any; one with scopes only what they match. An
// empty name is a request that may touch any queue (an ack by id alone):
// only a token without scopes may send it.
func (p *Principal) Allows(kind Kind, name string) bool {
	if len(p.Scopes) == 0 {
		return true
	}
	if name == "" {
		return false
	}
	for _, s := range p.Scopes {
		if s.Kind == kind {
			if ok, _ := path.Match(s.Glob, name); ok {
				return true
			}
		}
	}
	return false
}

// Tokens is one loaded tokens file. It never changes; a reload makes a new
// one (see Store).
type Tokens struct {
	list     []Principal
	warnings []string
}

// Len is the number of tokens.
func (t *Tokens) Len() int { return len(t.list) }

// Warnings are what was accepted but deserves the operator's attention
// (a world-readable file of plain secrets), one line each.
func (t *Tokens) Warnings() []string { return t.warnings }

// Authenticate returns the principal whose secret is token. The token's
// SHA-256 is compared with every entry's in constant time, and the loop
// never stops early, so the time taken says nothing about how much of a
// secret a guess got right.
func (t *Tokens) Authenticate(token string) (*Principal, bool) {
	if token == "" {
		return nil, false
	}
	digest := sha256.Sum256([]byte(token))
	var found *Principal
	for i := range t.list {
		if subtle.ConstantTimeCompare(digest[:], t.list[i].digest[:]) == 1 {
			found = &t.list[i]
		}
	}
	return found, found != nil
}

// Hash returns the hashed form of a secret for the tokens file:
// "sha256:" and the hex SHA-256 of token.
func Hash(token string) string {
	d := sha256.Sum256([]byte(token))
	const hex = "0123456789abcdef"
	b := make([]byte, 0, len(hashPrefix)+2*len(d))
	b = append(b, hashPrefix...)
	for _, c := range d {
		b = append(b, hex[c>>4], hex[c&15])
	}
	return string(b)
}
