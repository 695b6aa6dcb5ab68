package node_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/testwait"
)

// TestPubsubTopics_ListsEverySubscriberOfTheCluster checks GET
// /pubsub/topics on a cluster: each node's subscribers per topic, asked
// of the other nodes, the same on either port of any node.
func TestPubsubTopics_ListsEverySubscriberOfTheCluster(t *testing.T) {
	cfgs := clusterConfigs(t, 2)
	n1, _ := mustStart(t, cfgs[0])
	n2, _ := mustStart(t, cfgs[1])
	testwait.For(t, 20*time.Second, "both nodes are members", func() bool {
		return len(n1.Node().Status().Members) == 2 && len(n2.Node().Status().Members) == 2
	})
	subscribe(t, n1.PubsubAddr, "news")
	subscribe(t, n2.PubsubAddr, "news")
	subscribe(t, n2.PubsubAddr, "alerts")
	want := `{"topics":[{"name":"alerts","subscribers":1,"nodes":{"n2":1}},{"name":"news","subscribers":2,"nodes":{"n1":1,"n2":1}}],` +
		`"nodes":[{"id":"n1","subscribers":1,"drops":0,"kicked":0},{"id":"n2","subscribers":2,"drops":0,"kicked":0}]}` + "\n"
	for _, addr := range []string{n1.PubsubAddr, n1.QueueAddr, n2.PubsubAddr} {
		var last string
		testwait.For(t, 10*time.Second, "/pubsub/topics on "+addr+" lists every subscriber", func() bool {
			_, last = call(t, http.MethodGet, addr, "/pubsub/topics", "")
			return last == want
		})
	}
}
