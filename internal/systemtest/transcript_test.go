package systemtest

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestNode_SeedTranscript_ByteForByte replays the walk-through of the README
// (and of simplehttp's own docs) against the real binary and compares every
// body byte for byte.
func TestNode_SeedTranscript_ByteForByte(t *testing.T) {
	n := mustStartNode(t, open)
	stats := func(puts, gets, depth, hw, bytes string) string {
		return "puts:" + puts + "\ngets:" + gets + "\ndepth:" + depth + "\ndepth_high_water:" + hw + "\nbytes:" + bytes + "\noverflow:0\n"
	}
	expectBody(n, n.QueueURL+"/stats", stats("0", "0", "0", "0", "0"))

	// echo "H3110" | curl -d@- .../put  (curl -d strips the newline)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, n.QueueURL+"/put", strings.NewReader("H3110"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := n.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != 0 {
		t.Fatalf("put: status %d, content length %d; want 200 with an empty body", resp.StatusCode, resp.ContentLength)
	}

	expectBody(n, n.QueueURL+"/stats", stats("1", "0", "1", "1", "5"))
	expectBody(n, n.QueueURL+"/get", "H3110")
	expectBody(n, n.QueueURL+"/stats", stats("1", "1", "0", "1", "0"))
	expectBody(n, n.QueueURL+"/get", "")
	expectBody(n, n.QueueURL+"/stats?format=json", `{"puts": 1,"gets": 1,"depth": 0,"depth_high_water": 1,"bytes": 0,"overflow": 0}`+"\n")
}

func expectBody(n *node, url, want string) {
	n.t.Helper()
	if got := n.mustGet(url); got != want {
		n.t.Fatalf("GET %s:\n got  %q\n want %q", url, got, want)
	}
}
