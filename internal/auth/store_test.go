package auth

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func writeFile(t *testing.T, p, text string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestStore_ReloadSwapsOrKeeps: a valid file replaces the set; an invalid
// one is refused and the set in use stays.
func TestStore_ReloadSwapsOrKeeps(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, p, "old admin "+secretA+"\n")
	var logs bytes.Buffer
	s, err := NewStore(p, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Authenticate(secretA); !ok {
		t.Fatal("old token refused")
	}

	writeFile(t, p, "new admin "+secretB+"\n")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Authenticate(secretA); ok {
		t.Error("a removed token still authenticates")
	}
	if pr, ok := s.Authenticate(secretB); !ok || pr.Name != "new" {
		t.Error("the new token is refused")
	}

	writeFile(t, p, "broken producer "+secretC+"\n")
	err = s.Reload()
	if err == nil || !strings.Contains(err.Error(), "keeping the 1 tokens loaded before") {
		t.Fatalf("Reload of a bad file: %v", err)
	}
	if _, ok := s.Authenticate(secretB); !ok {
		t.Error("a bad file dropped the tokens in use")
	}
	if strings.Contains(logs.String(), secretA) || strings.Contains(logs.String(), secretB) {
		t.Errorf("a secret reached the log:\n%s", logs.String())
	}
}

// TestStore_LookupsDuringReload: lookups never fail while reloads of the
// same tokens run (go test -race checks the rest).
func TestStore_LookupsDuringReload(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, p, "a admin "+secretA+"\n")
	s, err := NewStore(p, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var misses atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				if _, ok := s.Authenticate(secretA); !ok {
					misses.Add(1)
				}
			}
		})
	}
	for range 50 {
		if err := s.Reload(); err != nil {
			t.Error(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if misses.Load() != 0 {
		t.Errorf("%d lookups failed during reloads", misses.Load())
	}
}

// TestNewStore_RefusesBadFile: a node does not start on a bad file.
func TestNewStore_RefusesBadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, p, "x admin short\n")
	if _, err := NewStore(p, nil); err == nil {
		t.Fatal("a bad file was accepted")
	}
}
