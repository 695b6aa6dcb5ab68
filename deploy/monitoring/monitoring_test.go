package monitoring

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"

	"github.com/quorumq/quorumq/internal/node"
	"github.com/quorumq/quorumq/internal/node/nodetest"
	"github.com/quorumq/quorumq/internal/testwait"
)

// repoFile reads a file of the repository by its path from the root.
func repoFile(t *testing.T, rel string) []byte {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "..", filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rules is the part of a Prometheus rule file the checks read.
type rules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T) rules {
	t.Helper()
	var r rules
	if err := yaml.UnmarshalStrict(repoFile(t, "deploy/prometheus/alerts.yml"), &r); err != nil {
		t.Fatalf("deploy/prometheus/alerts.yml: %v", err)
	}
	return r
}

// dashboard is the part of the Grafana dashboard the checks read.
type dashboard struct {
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(repoFile(t, "deploy/grafana/dashboards/quorumq.json"), &d); err != nil {
		t.Fatalf("deploy/grafana/dashboards/quorumq.json: %v", err)
	}
	return d
}

// allPanels are d's panels, those inside rows included.
func (d dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// query is one PromQL expression and where it comes from.
type query struct{ where, expr string }

func queries(t *testing.T) []query {
	t.Helper()
	var qs []query
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			qs = append(qs, query{"alert " + r.Alert, r.Expr})
		}
	}
	for _, p := range loadDashboard(t).allPanels() {
		for i, tg := range p.Targets {
			qs = append(qs, query{fmt.Sprintf("panel %q target %d", p.Title, i), tg.Expr})
		}
	}
	return qs
}

// The alerts an operator is promised (docs/MONITORING.md explains them).
var wantAlerts = []string{
	"QuorumqNoLeader", "QuorumqLeaderFlapping", "QuorumqNodeDown", "QuorumqReplicationLag",
	"QuorumqQueueBacklogGrowing", "QuorumqOldestMessageOld", "QuorumqDeadLettersRising",
	"QuorumqQueuedBytesBudgetNearlyFull", "QuorumqHTTP5xxRate",
}

// TestAlerts_EveryRuleIsComplete: the rule file parses with no unknown
// field; every rule has a unique name, an expression, a severity of
// warning or critical, a summary and a description, a "for" that is a
// duration; the promised alerts are there and each is in
// docs/MONITORING.md.
func TestAlerts_EveryRuleIsComplete(t *testing.T) {
	r := loadRules(t)
	docs := string(repoFile(t, "docs/MONITORING.md"))
	seen := map[string]bool{}
	for _, g := range r.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: no name or no rules", g.Name)
		}
		for _, rule := range g.Rules {
			if rule.Alert == "" || seen[rule.Alert] {
				t.Errorf("group %s: alert name %q empty or repeated", g.Name, rule.Alert)
			}
			seen[rule.Alert] = true
			if strings.TrimSpace(rule.Expr) == "" {
				t.Errorf("%s: no expr", rule.Alert)
			}
			if s := rule.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", rule.Alert, s)
			}
			if rule.Annotations["summary"] == "" || rule.Annotations["description"] == "" {
				t.Errorf("%s: no summary or description", rule.Alert)
			}
			if rule.For != "" {
				if _, err := time.ParseDuration(rule.For); err != nil {
					t.Errorf("%s: for %q: %v", rule.Alert, rule.For, err)
				}
			}
			if !strings.Contains(docs, rule.Alert) {
				t.Errorf("%s is not in docs/MONITORING.md", rule.Alert)
			}
		}
	}
	for _, a := range wantAlerts {
		if !seen[a] {
			t.Errorf("no alert %s", a)
		}
	}
}

// TestDashboard_PanelsQueryTheProvisionedDataSource: the dashboard has a
// stable uid, unique panel ids, an expression in every target, and every
// panel and target names the data source the provisioning file defines.
func TestDashboard_PanelsQueryTheProvisionedDataSource(t *testing.T) {
	var ds struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(repoFile(t, "deploy/grafana/provisioning/datasources/prometheus.yml"), &ds); err != nil || len(ds.Datasources) != 1 {
		t.Fatalf("datasources: %v, %d of them", err, len(ds.Datasources))
	}
	want := datasource{Type: ds.Datasources[0].Type, UID: ds.Datasources[0].UID}
	d := loadDashboard(t)
	if d.UID != "quorumq" || d.Title == "" {
		t.Errorf("dashboard uid %q title %q", d.UID, d.Title)
	}
	ids := map[int]bool{}
	panels := 0
	for _, p := range d.allPanels() {
		if ids[p.ID] {
			t.Errorf("panel id %d repeated", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		panels++
		if p.Datasource == nil || *p.Datasource != want || len(p.Targets) == 0 {
			t.Errorf("panel %q: data source %v, %d targets; want %v", p.Title, p.Datasource, len(p.Targets), want)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.Datasource == nil || *tg.Datasource != want {
				t.Errorf("panel %q: target %q on %v", p.Title, tg.Expr, tg.Datasource)
			}
		}
	}
	if panels < 20 {
		t.Errorf("%d panels", panels)
	}
}

// TestDeploy_PrometheusAndGrafanaLoadTheFiles: prometheus.yml loads the
// rules from where the compose file mounts them, and Grafana's provider
// reads the dashboards from where the compose file mounts them.
func TestDeploy_PrometheusAndGrafanaLoadTheFiles(t *testing.T) {
	var prom struct {
		RuleFiles []string `yaml:"rule_files"`
	}
	if err := yaml.Unmarshal(repoFile(t, "deploy/prometheus.yml"), &prom); err != nil {
		t.Fatal(err)
	}
	compose := string(repoFile(t, "docker-compose.yml"))
	if !slices.Contains(prom.RuleFiles, "/etc/prometheus/alerts.yml") || !strings.Contains(compose, "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro") {
		t.Errorf("rule_files %q; the compose file must mount deploy/prometheus/alerts.yml at /etc/prometheus/alerts.yml", prom.RuleFiles)
	}
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(repoFile(t, "deploy/grafana/provisioning/dashboards/quorumq.yml"), &prov); err != nil || len(prov.Providers) != 1 {
		t.Fatalf("dashboard provider: %v", err)
	}
	for _, mount := range []string{
		"./deploy/grafana/dashboards:" + prov.Providers[0].Options.Path + ":ro",
		"./deploy/grafana/provisioning:/etc/grafana/provisioning:ro",
	} {
		if !strings.Contains(compose, mount) {
			t.Errorf("docker-compose.yml does not mount %s", mount)
		}
	}
}

// Parts of PromQL that are not metric names.
var (
	quotedRE   = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	matchersRE = regexp.MustCompile(`\{[^{}]*\}`)
	rangeRE    = regexp.MustCompile(`\[[^\[\]]*\]`)
	groupingRE = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	identRE    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	keywords   = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
		"group_right": true, "and": true, "or": true, "unless": true, "bool": true, "offset": true, "Inf": true, "NaN": true, "inf": true, "nan": true}
)

// metricNames returns the metric names expr selects. Without a PromQL
// parser at hand it removes strings, label matchers, ranges and grouping
// lists, and keeps the identifiers that are no function call or keyword;
// brackets must balance.
func metricNames(expr string) ([]string, error) {
	e := quotedRE.ReplaceAllString(expr, `""`)
	depth := map[rune]int{}
	pairs := map[rune]rune{')': '(', '}': '{', ']': '['}
	for _, c := range e {
		switch c {
		case '(', '{', '[':
			depth[c]++
		case ')', '}', ']':
			if depth[pairs[c]]--; depth[pairs[c]] < 0 {
				return nil, fmt.Errorf("unbalanced %q", c)
			}
		}
	}
	for c, n := range depth {
		if n != 0 {
			return nil, fmt.Errorf("unclosed %q", c)
		}
	}
	e = matchersRE.ReplaceAllString(e, " ")
	e = rangeRE.ReplaceAllString(e, " ")
	e = groupingRE.ReplaceAllString(e, " ")
	var names []string
	for _, loc := range identRE.FindAllStringIndex(e, -1) {
		id := e[loc[0]:loc[1]]
		if keywords[id] || loc[0] > 0 && (e[loc[0]-1] == '$' || e[loc[0]-1] >= '0' && e[loc[0]-1] <= '9' || e[loc[0]-1] == '.') {
			continue // a keyword, a variable, or the exponent of a number
		}
		if rest := strings.TrimLeft(e[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function or an aggregation
		}
		names = append(names, id)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("selects no metric")
	}
	return names, nil
}

func TestMetricNames_FindsTheSelectedMetrics(t *testing.T) {
	for expr, want := range map[string]string{
		`sum by (route, le) (rate(a_bucket{code=~"5.."}[5m])) / on(instance) b > 0.05`:   "a_bucket b",
		`up{job="q", profile!="x"} == 0 or (c == 0 and on() count(d == 1) > 0)`:          "up c d",
		`histogram_quantile(0.99, sum by (le) (rate(e_bucket[$__rate_interval]))) > 1e3`: "e_bucket",
		`max by (queue) (deriv(f[15m])) > 0 and max by (queue) (g) > 1000`:               "f g",
	} {
		got, err := metricNames(expr)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("%s: %q %v, want %q", expr, got, err, want)
		}
	}
	for _, bad := range []string{`rate(a[5m]`, `a{b="c"`, `sum(rate(x[1m]))) `} {
		if _, err := metricNames(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// TestQueries_SelectMetricsTheNodesServe: every metric that a rule or a
// panel selects is on the /metrics of a real 3-node cluster that has had
// puts, gets, leases, acks, nacks and forwarded requests.
func TestQueries_SelectMetricsTheNodesServe(t *testing.T) {
	served := servedNames(t)
	served["up"] = true // Prometheus' own, per target
	for _, q := range queries(t) {
		names, err := metricNames(q.expr)
		if err != nil {
			t.Errorf("%s: %v: %s", q.where, err, q.expr)
			continue
		}
		for _, n := range names {
			if !served[n] {
				t.Errorf("%s: no node serves %s (%s)", q.where, n, q.expr)
			}
		}
	}
}

// servedNames starts three nodes, exercises them and returns the series
// names their /metrics have (histograms' _bucket, _sum and _count).
func servedNames(t *testing.T) map[string]bool {
	t.Helper()
	cfgs := nodetest.ClusterConfigs(t, 3)
	var servers []*node.Server
	for i := range cfgs {
		cfgs[i].Cluster.ProgressInterval = 50 * time.Millisecond
		servers = append(servers, nodetest.Start(t, cfgs[i]))
	}
	for _, s := range servers {
		nodetest.WaitReady(t, s)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	call := func(s *node.Server, target string) string {
		t.Helper()
		resp, err := hc.Get("http://" + s.QueueAddr + target)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Header.Get("X-Message-Id") + " " + string(b)
	}
	// Work through every node, so followers forward too.
	for i, s := range servers {
		call(s, fmt.Sprintf("/put?queue=jobs&data=m%d", i))
		call(s, "/put?queue=jobs&data=x")
		call(s, "/get?queue=jobs")
	}
	id, _, _ := strings.Cut(call(servers[0], "/get?queue=jobs&lease=30s"), " ")
	call(servers[0], "/ack?id="+id)
	id, _, _ = strings.Cut(call(servers[0], "/get?queue=jobs&lease=30s"), " ")
	call(servers[0], "/nack?id="+id)

	names := map[string]bool{}
	testwait.For(t, 30*time.Second, "a replication lag per follower on the leader", func() bool {
		for _, s := range servers {
			for line := range strings.Lines(call(s, "/metrics")) {
				if line == "" || line[0] == '#' || line[0] == ' ' {
					continue
				}
				if i := strings.IndexAny(line, "{ "); i > 0 {
					names[line[:i]] = true
				}
			}
		}
		return names["quorumq_replication_lag_entries"]
	})
	return names
}
