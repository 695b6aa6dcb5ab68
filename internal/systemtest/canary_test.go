package systemtest

import (
	"fmt"
	"net/url"
	"strings"
)

// canary is the guard of the abuse probes: 100 messages put into their
// own queue before a probe runs, which must all come out afterwards, in
// order and nothing else, whatever the probe did to the node.
type canary struct {
	queue string
	msgs  []string
}

// canarySize is how many messages a canary puts.
const canarySize = 100

// mustPutCanary puts the canary's messages through nd, one /put each.
func (n *node) mustPutCanary(name string) canary {
	n.t.Helper()
	c := canary{queue: "canary-" + name}
	for i := range canarySize {
		msg := fmt.Sprintf("%s-%03d", name, i)
		n.mustPut(n.QueueURL+"/put?queue="+url.QueryEscape(c.queue), msg)
		c.msgs = append(c.msgs, msg)
	}
	return c
}

// mustComeOutInOrder pops the canary's queue through nd and requires
// exactly its messages, in the order they were put, then an empty queue.
func (c canary) mustComeOutInOrder(nd *node) {
	nd.t.Helper()
	for i, want := range c.msgs {
		got := nd.mustGet(nd.QueueURL + "/get?queue=" + url.QueryEscape(c.queue))
		if got != want {
			nd.t.Fatalf("canary %s: message %d is %q, want %q", c.queue, i, abbrev(got), want)
		}
	}
	if rest := nd.mustGet(nd.QueueURL + "/get?queue=" + url.QueryEscape(c.queue)); strings.TrimSpace(rest) != "" {
		nd.t.Fatalf("canary %s: a message after the last one: %q", c.queue, abbrev(rest))
	}
}
