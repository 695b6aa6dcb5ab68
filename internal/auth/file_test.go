package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	secretA = "A1b2C3d4E5f6G7h8" // exactly MinSecretLen
	secretB = "ingest-secret-0123456789"
	secretC = "consumer~token.0123456789_abc"
)

func mustParse(t *testing.T, text string) *Tokens {
	t.Helper()
	tok, err := Parse(strings.NewReader(text), "tokens")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return tok
}

// TestParse_GoodFiles: comments, blank lines, hashed and plain secrets,
// roles and scopes are read as written.
func TestParse_GoodFiles(t *testing.T) {
	text := "# the cluster's tokens\n" +
		"\n" +
		"ops      admin            " + secretA + "\n" +
		"ingest   produce          " + secretB + "   queue=clicks topic=clicks  # the bridge\n" +
		"  reader produce,consume  " + Hash(secretC) + " queue=jobs.*\n" +
		"prom     monitor          sha256:" + strings.Repeat("Ab", 32) + "\n"
	tok := mustParse(t, text)
	if tok.Len() != 4 {
		t.Fatalf("%d tokens, want 4", tok.Len())
	}
	for _, tc := range []struct {
		secret, name string
		roles        Role
		scopes       string
	}{
		{secretA, "ops", Admin, ""},
		{secretB, "ingest", Produce, "queue=clicks topic=clicks"},
		{secretC, "reader", Produce | Consume, "queue=jobs.*"},
	} {
		p, ok := tok.Authenticate(tc.secret)
		if !ok {
			t.Fatalf("%s: secret not found", tc.name)
		}
		var scopes []string
		for _, s := range p.Scopes {
			scopes = append(scopes, s.String())
		}
		if p.Name != tc.name || p.Roles != tc.roles || strings.Join(scopes, " ") != tc.scopes {
			t.Errorf("got %s %s %v, want %s %s %s", p.Name, p.Roles, scopes, tc.name, tc.roles, tc.scopes)
		}
	}
	// The hash itself is not a token: a stolen file gives nothing away.
	if _, ok := tok.Authenticate(Hash(secretC)); ok {
		t.Error("the sha256: form authenticates")
	}
	for _, guess := range []string{"", secretA[:15], secretA + "x", strings.ToLower(secretA)} {
		if p, ok := tok.Authenticate(guess); ok {
			t.Errorf("%q authenticates as %s", guess, p.Name)
		}
	}
	if len(tok.Warnings()) != 0 {
		t.Errorf("warnings from Parse: %v", tok.Warnings())
	}
}

// TestParse_BadLines: each bad line is refused with its line number and a
// reason, and never with its secret.
func TestParse_BadLines(t *testing.T) {
	const weak = "short-secret"
	for _, tc := range []struct {
		name, line, want string
	}{
		{"too few fields", "ops admin", "want NAME ROLES SECRET"},
		{"unknown role", "ops producer " + secretA, `unknown role "producer"`},
		{"empty role", "ops produce,,consume " + secretA, `unknown role ""`},
		{"weak secret", "ops admin " + weak, "secret is 12 characters, fewer than 16"},
		{"secret with a plus", "ops admin " + secretA + "+", "character outside"},
		{"upper-case hash prefix", "ops admin SHA256:" + strings.Repeat("a", 64), "character outside"},
		{"short hash", "ops admin sha256:abcd", "want sha256: and 64 hex digits"},
		{"hash not hex", "ops admin sha256:" + strings.Repeat("g", 64), "want sha256: and 64 hex digits"},
		{"bad name", "o/ps admin " + secretA, `invalid token name "o/ps"`},
		{"unknown scope", "ops admin " + secretA + " queues=x", `unknown scope "queues=x"`},
		{"empty glob", "ops admin " + secretA + " queue=", `scope "queue=" has no glob`},
		{"bad glob", "ops admin " + secretA + " topic=[a", "bad glob"},
		{"no tokens", "# nothing yet", "no tokens"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := "# header\n" + tc.line + "\n"
			_, err := Parse(strings.NewReader(text), "tokens.conf")
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want %q", err, tc.want)
			}
			if tc.name != "no tokens" && !strings.Contains(err.Error(), "tokens.conf:2: ") {
				t.Fatalf("error %q does not name line 2", err)
			}
			for _, secret := range []string{secretA, weak} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q shows the secret", err)
				}
			}
		})
	}
}

// TestParse_Duplicates: a name or a secret used twice (plain or hashed)
// refuses the file, naming both lines; every bad line is reported.
func TestParse_Duplicates(t *testing.T) {
	text := "a admin " + secretA + "\n" +
		"b produce " + secretB + "\n" +
		"a consume " + secretC + "\n" +
		"c consume " + Hash(secretB) + "\n" +
		"d nobody " + secretC + "x\n"
	_, err := Parse(strings.NewReader(text), "f")
	for _, want := range []string{
		`f:3: token name "a" is already used on line 1`,
		`f:4: the secret of "c" is the secret of line 2`,
		`f:5: unknown role "nobody"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// TestPrincipal_RolesAndScopes: admin holds every role, every token may
// observe; scopes are an allow-list over queues and topics together.
func TestPrincipal_RolesAndScopes(t *testing.T) {
	tok := mustParse(t, "p produce "+secretA+"\n"+
		"c consume "+secretB+" queue=jobs.* queue=mail\n"+
		"a admin "+secretC+" topic=news\n")
	p, _ := tok.Authenticate(secretA)
	c, _ := tok.Authenticate(secretB)
	a, _ := tok.Authenticate(secretC)
	for _, tc := range []struct {
		who  *Principal
		role Role
		want bool
	}{
		{p, Produce, true}, {p, Consume, false}, {p, Admin, false}, {p, Monitor, true},
		{c, Consume, true}, {c, Produce, false}, {c, Monitor, true},
		{a, Produce, true}, {a, Consume, true}, {a, Admin, true}, {a, Monitor, true},
	} {
		if got := tc.who.Has(tc.role); got != tc.want {
			t.Errorf("%s.Has(%s) = %v", tc.who.Name, tc.role, got)
		}
	}
	for _, tc := range []struct {
		who  *Principal
		kind Kind
		name string
		want bool
	}{
		{p, Queue, "anything", true}, {p, Topic, "anything", true}, {p, Queue, "", true},
		{c, Queue, "jobs.high", true}, {c, Queue, "mail", true}, {c, Queue, "jobs", false},
		{c, Queue, "mail.x", false}, {c, Topic, "mail", false}, {c, Queue, "", false},
		{a, Topic, "news", true}, {a, Queue, "news", false},
	} {
		if got := tc.who.Allows(tc.kind, tc.name); got != tc.want {
			t.Errorf("%s.Allows(%s, %q) = %v", tc.who.Name, tc.kind, tc.name, got)
		}
	}
}

// TestLoad_WarnsOnReadablePlainSecrets: a file others may read is loaded
// with a warning if it holds plain secrets, silently if all are hashed.
func TestLoad_WarnsOnReadablePlainSecrets(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		line string
		mode os.FileMode
		warn bool
	}{
		{"a admin " + secretA, 0o600, false},
		{"a admin " + secretA, 0o644, true},
		{"a admin " + Hash(secretA), 0o644, false},
	} {
		p := filepath.Join(dir, "tokens")
		if err := os.WriteFile(p, []byte(tc.line+"\n"), tc.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, tc.mode); err != nil { // past the umask
			t.Fatal(err)
		}
		tok, err := Load(p)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if got := len(tok.Warnings()) > 0; got != tc.warn {
			t.Errorf("%s with mode %s: warnings %v", tc.line[:8], tc.mode, tok.Warnings())
		}
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file loads")
	}
}
