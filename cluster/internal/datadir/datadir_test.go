package datadir

import (
	"strings"
	"testing"

	"github.com/quorumq/quorumq/api"
)

// A generated id has the "<hostname>-<6 hex>" form and is persisted.
func TestNode_GeneratedID_Persisted(t *testing.T) {
	dir := t.TempDir()
	id, err := ResolveNodeID(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndexByte(id, '-')
	if i <= 0 || len(id)-i-1 != 6 || !api.ValidNodeID(id) {
		t.Fatalf("generated id %q", id)
	}
	again, err := ResolveNodeID(dir, "")
	if err != nil || again != id {
		t.Fatalf("second resolve = %q, %v; want %q", again, err, id)
	}
}
