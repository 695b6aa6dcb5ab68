package node_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/testwait"
)

// TestPubsubTopics_ListsEverySubscriberOfTheCluster checks GET
// /pubsub/topics on a cluster: each node's subscribers per topic, asked
// of the other nodes, the same on either port of any node; a node that
// stopped no longer counts.
func TestPubsubTopics_ListsEverySubscriberOfTheCluster(t *testing.T) {
	cfgs := clusterConfigs(t, 2)
	n1, _ := mustStart(t, cfgs[0])
	n2, stop2 := mustStart(t, cfgs[1])
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
	// A node that stops is listed with the reason, or not at all once
	// it has left: its subscribers are no longer counted.
	stop2()
	testwait.For(t, 30*time.Second, "/pubsub/topics on n1 without n2's subscribers", func() bool {
		_, body := call(t, http.MethodGet, n1.QueueAddr, "/pubsub/topics", "")
		var got struct {
			Topics []struct{ Name string }
			Nodes  []struct {
				ID          string
				Subscribers int
				Error       string
			}
		}
		if json.Unmarshal([]byte(body), &got) != nil || len(got.Topics) != 1 || got.Topics[0].Name != "news" {
			return false
		}
		for _, n := range got.Nodes {
			if n.ID == "n2" && (n.Subscribers != 0 || n.Error == "") {
				return false
			}
		}
		return true
	})
}
