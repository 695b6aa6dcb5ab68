package httpapi

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"slices"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/adminui"
	"github.com/quorumq/quorumq/pubsub"
)

// The admin endpoints of the web UI: the UI's assets, the cluster's
// pubsub topics and the live analytics.

// PubsubNode is one node's pubsub as GET /pubsub/topics shows it.
type PubsubNode struct {
	ID      string
	Clients []pubsub.Client
	Stats   pubsub.Stats
	// Err, when set, is why the node's subscribers and counters are
	// missing (it did not answer): it is listed with the error.
	Err error
}

// AnalyticsQuery is what GET /analytics asks: the strongest links of
// Node (empty: the whole graph's heaviest edges), Top of them.
type AnalyticsQuery struct {
	Node string
	Top  int
}

// Analytics answers GET /analytics (Options.Analytics).
type Analytics interface {
	// AnalyticsReport returns what `quorumq analyze show` prints, as a
	// value for encoding/json. An error of an api kind is answered as
	// such; any other means the store did not answer (503).
	AnalyticsReport(ctx context.Context, q AnalyticsQuery) (any, error)
}

// Bounds of GET /analytics?top=N.
const (
	defaultAnalyticsTop = 20
	maxAnalyticsTop     = 500
)

// consoleRoutes are the UI's routes, on both ports: the assets (open),
// the topics and the analytics (monitor).
func (a *adminAPI) consoleRoutes(monitor func(params) (access, error)) []route {
	return []route{
		{name: "ui", path: adminui.Prefix, match: glob, methods: getOnly, style: adminStyle, handle: a.ui},
		{name: "pubsub_topics", path: "/pubsub/topics", methods: getOnly, style: adminStyle, needs: monitor, handle: a.pubsubTopics},
		{name: "analytics", path: "/analytics", methods: getOnly, style: adminStyle, needs: monitor, handle: a.analytics},
	}
}

// ui is GET /ui and /ui/...: the web UI's embedded assets.
func (a *adminAPI) ui(*request) (reply, error) {
	return reply{serve: func(w http.ResponseWriter, r *http.Request) error {
		adminui.Serve(w, r)
		return nil
	}}, nil
}

type topicsJSON struct {
	Topics []topicJSON      `json:"topics"`
	Nodes  []pubsubNodeJSON `json:"nodes"`
}

type topicJSON struct {
	Name        string         `json:"name"`
	Subscribers int            `json:"subscribers"`
	Nodes       map[string]int `json:"nodes"`
}

type pubsubNodeJSON struct {
	ID          string `json:"id"`
	Subscribers int    `json:"subscribers"`
	// Drops counts the messages of this node's publishes that did not
	// reach another node's subscribers (failed deliveries).
	Drops uint64 `json:"drops"`
	// Kicked counts the subscribers kicked for being too slow.
	Kicked uint64 `json:"kicked"`
	Error  string `json:"error,omitempty"`
}

// pubsubTopics is GET /pubsub/topics: every topic with subscribers on
// any node, how many on each, and each node's subscribers, drops and
// kicks. A kicked subscriber whose connection is still closing is not
// counted. A node that does not answer is listed with its error.
func (a *adminAPI) pubsubTopics(r *request) (reply, error) {
	if a.pubsubNodes == nil {
		return reply{}, api.ErrNotFound.Errorf("this node serves no pubsub topics")
	}
	nodes, err := a.pubsubNodes(r.Context())
	if err != nil {
		return reply{}, err
	}
	out := topicsJSON{Topics: []topicJSON{}, Nodes: make([]pubsubNodeJSON, 0, len(nodes))}
	topics := map[string]*topicJSON{}
	for _, n := range nodes {
		nj := pubsubNodeJSON{ID: n.ID, Drops: n.Stats.RemoteDropped, Kicked: n.Stats.KickedClients}
		if n.Err != nil {
			nj.Error = n.Err.Error()
		}
		for _, c := range n.Clients {
			if c.Kicked {
				continue
			}
			nj.Subscribers++
			t := topics[c.Topic]
			if t == nil {
				t = &topicJSON{Name: c.Topic, Nodes: map[string]int{}}
				topics[c.Topic] = t
			}
			t.Subscribers++
			t.Nodes[n.ID]++
		}
		out.Nodes = append(out.Nodes, nj)
	}
	for _, t := range topics {
		out.Topics = append(out.Topics, *t)
	}
	slices.SortFunc(out.Topics, func(x, y topicJSON) int { return cmp.Compare(x.Name, y.Name) })
	slices.SortFunc(out.Nodes, func(x, y pubsubNodeJSON) int { return cmp.Compare(x.ID, y.ID) })
	return jsonReply(out)
}

// analytics is GET /analytics[?node=X][&top=N]: the live analytics of
// the node's --analytics-redis.
func (a *adminAPI) analytics(r *request) (reply, error) {
	if a.analyticsSrc == nil {
		return reply{}, api.ErrNotFound.Errorf("no analytics on this node: start it with --analytics-redis=ADDR")
	}
	q := AnalyticsQuery{Top: defaultAnalyticsTop}
	if v, ok, err := r.p.noNUL("node", ""); err != nil {
		return reply{}, err
	} else if ok {
		q.Node = v
	}
	if n, ok, err := r.p.uint("top", maxAnalyticsTop); err != nil {
		return reply{}, err
	} else if ok {
		if n == 0 {
			return reply{}, api.ErrBadRequest.Errorf("invalid top=0: want 1 to %d", maxAnalyticsTop)
		}
		q.Top = int(n)
	}
	rep, err := a.analyticsSrc.AnalyticsReport(r.Context(), q)
	if err != nil {
		if _, _, known := api.Classify(err); !known {
			err = api.ErrUnavailable.Errorf("analytics store: %v", err)
		}
		return reply{}, err
	}
	return jsonReply(rep)
}

func jsonReply(v any) (reply, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return reply{}, err
	}
	return reply{contentType: typeJSON, body: append(body, '\n')}, nil
}

// pubsubStatsPeer is GET api.PathPubsubStats: this node's counters, as
// /stats?format=json writes them with the remote ones.
func (p *pubsubAPI) pubsubStatsPeer(*request) (reply, error) {
	return reply{contentType: typeJSON, body: pubsubStatsJSON(p.o.Hub.Stats(), true)}, nil
}
