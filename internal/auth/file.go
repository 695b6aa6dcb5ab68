package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/quorumq/quorumq/api"
)

const (
	hashPrefix = "sha256:"
	// MinSecretLen is the shortest plain secret the file accepts. A hashed
	// secret cannot be checked; whoever hashed it chose its length.
	MinSecretLen = 16
	// maxLine bounds a line of the file.
	maxLine = 4096
)

// ErrInvalid is every error of a tokens file that does not parse.
var ErrInvalid = errors.New("invalid tokens file")

// Load reads and checks the tokens file at path. Errors name the file and
// the line, and never contain a secret.
func Load(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	defer f.Close()
	t, err := Parse(f, path)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 && t.plain() {
		t.warnings = append(t.warnings, fmt.Sprintf(
			"%s holds plain tokens and other users may read it (mode %s): chmod 600, or store them as sha256:<hex>",
			path, fi.Mode().Perm()))
	}
	return t, nil
}

// Parse reads a tokens file from r; source names it in errors. Every bad
// line is reported, not only the first.
func Parse(r io.Reader, source string) (*Tokens, error) {
	t := &Tokens{}
	var errs []error
	bad := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: "+format, append([]any{source, line}, args...)...))
	}
	names := map[string]int{}
	secrets := map[[sha256.Size]byte]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxLine)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		for i, f := range fields {
			if strings.HasPrefix(f, "#") {
				fields = fields[:i]
				break
			}
		}
		if len(fields) == 0 {
			continue
		}
		p, msgs := parseLine(fields)
		for _, m := range msgs {
			bad(line, "%s", m)
		}
		if len(msgs) > 0 {
			continue
		}
		if first, dup := names[p.Name]; dup {
			bad(line, "token name %q is already used on line %d", p.Name, first)
			continue
		}
		if first, dup := secrets[p.digest]; dup {
			bad(line, "the secret of %q is the secret of line %d: each token needs its own", p.Name, first)
			continue
		}
		names[p.Name], secrets[p.digest] = line, line
		t.list = append(t.list, p)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("line longer than %d bytes", maxLine)
		}
		bad(line+1, "%v", err)
	}
	if len(errs) == 0 && len(t.list) == 0 {
		errs = append(errs, fmt.Errorf("%s: no tokens: with authentication on, no client could do anything", source))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return t, nil
}

// parseLine reads NAME ROLES SECRET [SCOPE...]. The messages say what is
// wrong; they name fields but never repeat a secret.
func parseLine(fields []string) (p Principal, msgs []string) {
	if len(fields) < 3 {
		return p, []string{fmt.Sprintf("want NAME ROLES SECRET [queue=GLOB|topic=GLOB ...], got %d field(s)", len(fields))}
	}
	p.Name = fields[0]
	if !api.ValidName(p.Name) {
		msgs = append(msgs, fmt.Sprintf("invalid token name %s: want %s", api.Quote(p.Name), api.NamePattern))
	}
	for r := range strings.SplitSeq(fields[1], ",") {
		role, ok := parseRole(r)
		if !ok {
			msgs = append(msgs, fmt.Sprintf("unknown role %s: want produce, consume, monitor or admin, comma-separated", api.Quote(r)))
		}
		p.Roles |= role
	}
	var err error
	p.hashed = strings.HasPrefix(fields[2], hashPrefix)
	if p.digest, err = parseSecret(fields[2]); err != nil {
		msgs = append(msgs, err.Error())
	}
	for _, f := range fields[3:] {
		s, err := parseScope(f)
		if err != nil {
			msgs = append(msgs, err.Error())
		}
		p.Scopes = append(p.Scopes, s)
	}
	return p, msgs
}

func parseRole(s string) (Role, bool) {
	for _, rn := range roleNames {
		if s == rn.name {
			return rn.role, true
		}
	}
	return 0, false
}

// parseSecret returns the SHA-256 of the token that secret stands for.
func parseSecret(secret string) ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	if h, ok := strings.CutPrefix(secret, hashPrefix); ok {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != sha256.Size {
			return d, errors.New("hashed secret: want sha256: and 64 hex digits")
		}
		copy(d[:], b)
		return d, nil
	}
	if len(secret) < MinSecretLen {
		return d, fmt.Errorf("secret is %d characters, fewer than %d: use a longer random token (or sha256:<hex> of one)", len(secret), MinSecretLen)
	}
	if i := bytes.IndexFunc([]byte(secret), func(r rune) bool { return !tokenChar(r) }); i >= 0 {
		return d, fmt.Errorf("secret has a character outside [A-Za-z0-9._~-] at position %d (a hashed secret is written sha256:<64 hex digits>)", i+1)
	}
	return sha256.Sum256([]byte(secret)), nil
}

// tokenChar: the characters of a plain token, those a URL leaves as they
// are (RFC 3986 unreserved), so token= needs no escaping.
func tokenChar(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' ||
		r == '.' || r == '_' || r == '~' || r == '-'
}

func parseScope(f string) (Scope, error) {
	k, glob, ok := strings.Cut(f, "=")
	var s Scope
	switch k {
	case "queue":
		s.Kind = Queue
	case "topic":
		s.Kind = Topic
	default:
		return s, fmt.Errorf("unknown scope %s: want queue=GLOB or topic=GLOB", api.Quote(f))
	}
	s.Glob = glob
	if !ok || glob == "" {
		return s, fmt.Errorf("scope %s has no glob", api.Quote(f))
	}
	if _, err := path.Match(glob, ""); err != nil {
		return s, fmt.Errorf("scope %s: bad glob: %v", api.Quote(f), err)
	}
	return s, nil
}

// plain reports whether the file holds any secret unhashed.
func (t *Tokens) plain() bool {
	for _, p := range t.list {
		if !p.hashed {
			return true
		}
	}
	return false
}
