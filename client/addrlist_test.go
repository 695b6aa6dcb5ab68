package client

import (
	"flag"
	"io"
	"slices"
	"testing"
)

func TestAddrList_RepeatedAndCommaSeparatedFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var l AddrList
	fs.Var(&l, "queue-url", "")
	if err := fs.Parse([]string{"--queue-url=http://a:1, b:2,", "--queue-url", "c:3"}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"http://a:1", "b:2", "c:3"}; !slices.Equal(l, want) {
		t.Fatalf("got %q, want %q", l, want)
	}
	if got := l.String(); got != "http://a:1,b:2,c:3" {
		t.Fatalf("String() = %q", got)
	}
}
