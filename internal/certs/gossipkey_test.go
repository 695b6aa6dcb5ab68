package certs_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quorumq/quorumq/internal/certs"
)

func TestLoadGossipKeys_Format(t *testing.T) {
	k32 := base64.StdEncoding.EncodeToString(make([]byte, 32))
	k16 := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	tests := []struct {
		name, file string
		want       int
		bad        string
	}{
		{"one key", k32 + "\n", 1, ""},
		{"comments and blanks, primary first", "# rotation\n\n" + k16 + "\n  " + k32 + "  \n", 2, ""},
		{"not base64", "not*base64\n", 0, "not base64"},
		{"wrong size", base64.StdEncoding.EncodeToString(make([]byte, 20)) + "\n", 0, "20 bytes"},
		{"twice", k32 + "\n" + k32 + "\n", 0, "twice"},
		{"empty", "# nothing\n", 0, "no key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "gossip.key")
			os.WriteFile(p, []byte(tt.file), 0o600)
			keys, err := certs.LoadGossipKeys(p)
			if tt.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tt.bad) {
					t.Fatalf("err = %v, want one saying %q", err, tt.bad)
				}
				return
			}
			if err != nil || len(keys) != tt.want {
				t.Fatalf("%d keys, %v; want %d", len(keys), err, tt.want)
			}
		})
	}
}
