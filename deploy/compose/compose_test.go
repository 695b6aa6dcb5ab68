package compose

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/quorumq/quorumq/internal/health"
)

// The profile that adds nodes to the default cluster.
const scaleOutProfile = "scale-out"

// Subcommands other than serve that a service may run. Their flags are not
// checked (other issues own them); their addresses are. certs is the
// one-shot service that makes the TLS material and tokens.
var toolCommands = []string{"gen", "ps_to_http", "analyze", "bench", "status", certsCommand}

// The file loads, validates against the Compose Specification and passes
// compose-go's consistency checks with no profile, with each profile and
// with all of them; the cluster is the same topology as devcluster's plan.
func TestCompose_Loads(t *testing.T) {
	all := allProfiles(t)
	def := loadProject(t)
	if all.Name != "quorumq" {
		t.Errorf("project name %q, want quorumq (container names quorumq-node1-1, ...)", all.Name)
	}
	profiles := map[string]bool{}
	for _, s := range all.Services {
		for _, pr := range s.Profiles {
			profiles[pr] = true
		}
	}
	if !profiles[scaleOutProfile] {
		t.Errorf("no service in profile %q", scaleOutProfile)
	}
	for pr := range profiles {
		loadProject(t, pr)
	}
	for _, want := range []string{"node1", "node2", "node3", "redis", "generator", "ps_to_http", "analyze"} {
		if _, ok := def.Services[want]; !ok {
			t.Errorf("service %s is not in the default profile", want)
		}
	}
	for _, n := range nodes(t, all) {
		if len(n.svc.Profiles) > 0 && !slices.Contains(n.svc.Profiles, scaleOutProfile) {
			t.Errorf("%s: node in profiles %q; extra nodes belong to %q", n.svc.Name, n.svc.Profiles, scaleOutProfile)
		}
	}
	if len(nodes(t, def)) < 3 {
		t.Errorf("default profile has %d nodes, want at least 3 (a quorum that survives one failure)", len(nodes(t, def)))
	}
}

// Every QUORUMQ_* variable of a node is a flag of the `quorumq serve` that
// this tree builds, with a value of the flag's type (checked in nodes), and
// the flags the compose file relies on exist.
func TestCompose_NodeEnvironmentNamesServeFlags(t *testing.T) {
	flags := serveFlags(t)
	for _, f := range []string{"node-id", "data-dir", "queue-addr", "pubsub-addr", "raft-addr", "gossip-addr",
		"advertise", "join", "bootstrap-expect", "shutdown-timeout"} {
		if _, ok := flags[f]; !ok {
			t.Errorf("quorumq serve has no --%s (ARCHITECTURE.md's contract; docker-compose.yml uses it)", f)
		}
	}
	for _, n := range nodes(t, allProfiles(t)) {
		if len(n.svc.Entrypoint) > 0 {
			t.Errorf("%s: entrypoint %q overrides the image's quorumq", n.svc.Name, n.svc.Entrypoint)
		}
		for k := range n.svc.Environment {
			if !strings.HasPrefix(k, envPrefix) {
				t.Errorf("%s: environment %s is not a QUORUMQ_* setting; serve reads nothing else", n.svc.Name, k)
			}
		}
	}
}

// Each node has its own id, listens on every interface, keeps its data in
// its own named volume, and restarts on failure with a stop grace period
// longer than its graceful shutdown.
func TestCompose_NodeIdentityStorageAndLifecycle(t *testing.T) {
	p := allProfiles(t)
	ns := nodes(t, p)
	ids := map[string]string{}
	for _, n := range ns {
		name := n.svc.Name
		id := n.flags["node-id"]
		switch {
		case id == "":
			t.Errorf("%s: no QUORUMQ_NODE_ID: the id would be <hostname>-<random>, new on every recreated volume", name)
		case ids[id] != "":
			t.Errorf("%s and %s share node id %q", ids[id], name, id)
		default:
			ids[id] = name
		}

		for _, f := range []string{"queue-addr", "pubsub-addr", "raft-addr", "gossip-addr"} {
			host, _, err := net.SplitHostPort(n.flags[f])
			if err != nil {
				t.Errorf("%s: --%s=%q: %v", name, f, n.flags[f], err)
				continue
			}
			if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
				t.Errorf("%s: --%s=%q binds %s only; containers must bind 0.0.0.0 to be reachable", name, f, n.flags[f], host)
			}
		}

		dataDir := path.Clean(n.flags["data-dir"])
		if !path.IsAbs(dataDir) {
			t.Errorf("%s: data dir %q is not absolute", name, dataDir)
		}
		var mount *types.ServiceVolumeConfig
		for i, v := range n.svc.Volumes {
			if path.Clean(v.Target) == dataDir {
				mount = &n.svc.Volumes[i]
			}
		}
		switch {
		case mount == nil:
			t.Errorf("%s: nothing is mounted at its data dir %s: raft state would die with the container", name, dataDir)
		case mount.Type != types.VolumeTypeVolume:
			t.Errorf("%s: %s is a %s mount, want a named volume", name, dataDir, mount.Type)
		default:
			if _, ok := p.Volumes[mount.Source]; !ok {
				t.Errorf("%s: volume %q is not declared under volumes:", name, mount.Source)
			}
			for _, other := range p.Services {
				if other.Name == name {
					continue
				}
				for _, v := range other.Volumes {
					if v.Type == types.VolumeTypeVolume && v.Source == mount.Source {
						t.Errorf("%s and %s share volume %q: each node needs its own raft directory", name, other.Name, mount.Source)
					}
				}
			}
		}

		if r := n.svc.Restart; r != types.RestartPolicyUnlessStopped && r != types.RestartPolicyAlways {
			t.Errorf("%s: restart %q, want unless-stopped", name, r)
		}
		shutdown, err := time.ParseDuration(n.flags["shutdown-timeout"])
		if err != nil {
			t.Fatalf("%s: --shutdown-timeout=%q: %v", name, n.flags["shutdown-timeout"], err)
		}
		if g := n.svc.StopGracePeriod; g == nil || time.Duration(*g) <= shutdown {
			t.Errorf("%s: stop_grace_period %v must exceed the node's graceful shutdown (%v), or Docker kills it mid-shutdown",
				name, durationOrDefault(g), shutdown)
		}
	}
}

func durationOrDefault(d *types.Duration) string {
	if d == nil {
		return "unset (Docker's default 10s)"
	}
	return time.Duration(*d).String()
}

// Each node publishes its queue and pubsub ports on host ports of its
// own, and no two services publish the same host port.
func TestCompose_PublishedPorts(t *testing.T) {
	p := allProfiles(t)
	taken := map[string]string{}
	for _, s := range sortedServices(p) {
		for _, pc := range s.Ports {
			if pc.Published == "" {
				continue
			}
			if _, err := strconv.Atoi(pc.Published); err != nil {
				t.Errorf("%s: published port %q: use one port per mapping", s.Name, pc.Published)
			}
			proto := pc.Protocol
			if proto == "" {
				proto = "tcp"
			}
			key := pc.Published + "/" + proto
			if other, ok := taken[key]; ok {
				t.Errorf("%s and %s both publish host port %s", other, s.Name, key)
			}
			taken[key] = s.Name
		}
	}
	for _, n := range nodes(t, p) {
		for _, f := range []string{"queue-addr", "pubsub-addr"} {
			port := n.port(t, f)
			found := false
			for _, pc := range n.svc.Ports {
				if int(pc.Target) == port && pc.Published != "" {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: container port %d (--%s) is not published to the host", n.svc.Name, port, f)
			}
		}
	}
}

// A node is healthy when /readyz on its own queue port says so (a leader
// is known and the node caught up), not merely when the process runs. The
// check is `quorumq health`, which needs no HTTP client in the image and
// finds the port, the scheme and the CA in the node's own environment:
// what it would ask is computed here from the node's effective flags.
func TestCompose_NodeHealthchecks(t *testing.T) {
	for _, n := range nodes(t, allProfiles(t)) {
		hc := n.svc.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) == 0 {
			t.Errorf("%s: no healthcheck", n.svc.Name)
			continue
		}
		if want := []string{"CMD", "quorumq", "health"}; !slices.Equal(hc.Test, want) {
			t.Errorf("%s: healthcheck %q, want %q", n.svc.Name, hc.Test, want)
			continue
		}
		cfg := health.FromEnv(func(k string) string {
			return n.flags[strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, envPrefix), "_", "-"))]
		})
		url, err := cfg.URL()
		if err != nil {
			t.Errorf("%s: %v", n.svc.Name, err)
			continue
		}
		if want := fmt.Sprintf("127.0.0.1:%d/readyz", n.port(t, "queue-addr")); !strings.HasSuffix(url, want) {
			t.Errorf("%s: healthcheck asks %s, want the container's queue port (%s)", n.svc.Name, url, want)
		}
		if n.flags["tls-cert"] != "" && (!strings.HasPrefix(url, "https://") || cfg.CAFile != n.flags["tls-ca"] || cfg.CAFile == "") {
			t.Errorf("%s: healthcheck %s (CA %q): the node speaks HTTPS only and its CA is %q", n.svc.Name, url, cfg.CAFile, n.flags["tls-ca"])
		}
		if hc.StartPeriod == nil || time.Duration(*hc.StartPeriod) < 10*time.Second {
			t.Errorf("%s: healthcheck start_period %v: a node waits for its peers before it has a leader", n.svc.Name, durationOrDefault(hc.StartPeriod))
		}
	}
}

// The seeds are gossip addresses of node services; every node starts with
// the same bootstrap-expect, equal to the number of nodes that run without
// a profile; the advertised host is the node itself.
func TestCompose_JoinAdvertiseAndBootstrap(t *testing.T) {
	all := allProfiles(t)
	defNodes := nodes(t, loadProject(t))
	inDefault := map[string]bool{}
	for _, n := range defNodes {
		inDefault[n.svc.Name] = true
	}
	byName := names(all)
	allNodes := nodes(t, all)
	byService := map[string]node{}
	for _, n := range allNodes {
		byService[n.svc.Name] = n
	}

	for _, n := range allNodes {
		name := n.svc.Name
		join := n.flags["join"]
		if join == "" {
			t.Errorf("%s: no QUORUMQ_JOIN", name)
		}
		defaultSeeds := 0
		for _, seed := range strings.Split(join, ",") {
			seed = strings.TrimSpace(seed)
			if seed == "" {
				continue
			}
			host, port, err := net.SplitHostPort(seed)
			if err != nil {
				t.Errorf("%s: join address %q: %v", name, seed, err)
				continue
			}
			target, ok := byService[byName[host]]
			if !ok {
				t.Errorf("%s: join address %q is not a node service", name, seed)
				continue
			}
			if want := strconv.Itoa(target.port(t, "gossip-addr")); port != want {
				t.Errorf("%s: join address %q: %s gossips on port %s", name, seed, target.svc.Name, want)
			}
			if inDefault[target.svc.Name] {
				defaultSeeds++
			}
		}
		if join != "" && defaultSeeds == 0 {
			t.Errorf("%s: no seed in %q runs without a profile", name, join)
		}

		if adv := n.flags["advertise"]; adv != "" {
			host := adv
			if h, _, err := net.SplitHostPort(adv); err == nil {
				host = h
			}
			if byName[host] != name {
				t.Errorf("%s: QUORUMQ_ADVERTISE=%q does not name this service on its network", name, adv)
			}
		}

		want := strconv.Itoa(len(defNodes))
		if got := n.flags["bootstrap-expect"]; got != want {
			t.Errorf("%s: bootstrap-expect %s, want %s (the nodes of the default profile; every node must use the same value)", name, got, want)
		}
	}
}

// Nodes are known by name: each advertises a name (raft stores and dials
// it), and none pins an address, so `down` and `up` on a new network, or a
// container restarted on another IP, keeps the raft configuration valid.
// (That the name is the node's own is checked with the seeds above.)
func TestCompose_NodesAreKnownByNameNotAddress(t *testing.T) {
	for _, n := range nodes(t, allProfiles(t)) {
		adv := n.flags["advertise"]
		host := adv
		if h, _, err := net.SplitHostPort(adv); err == nil {
			host = h
		}
		if _, err := netip.ParseAddr(host); adv == "" || err == nil {
			t.Errorf("%s: QUORUMQ_ADVERTISE=%q: want the node's name, which survives a new IP", n.svc.Name, adv)
		}
		for netName, sn := range n.svc.Networks {
			if sn != nil && (sn.Ipv4Address != "" || sn.Ipv6Address != "") {
				t.Errorf("%s: pins an address on network %s; nodes are found by name", n.svc.Name, netName)
			}
		}
	}
}

var urlRE = regexp.MustCompile(`\b([a-z][a-z0-9+.-]*)://([^/\s,?"']+)([^\s,"']*)`)

// Paths served on one port only.
var (
	pubsubPaths = []string{"/pub", "/sub", "/clients"}
	queuePaths  = []string{"/put", "/get", "/mget", "/mput", "/dump", "/ack", "/nack", "/touch", "/config"}
)

// The chain's services run a known subcommand, have the image's /readyz
// healthcheck turned off, and reach only services that exist, on ports
// those services listen on, after depending on them.
func TestCompose_DependentsUseDefinedAddresses(t *testing.T) {
	p := allProfiles(t)
	byName := names(p)
	nodeBy := map[string]node{}
	for _, n := range nodes(t, p) {
		nodeBy[n.svc.Name] = n
	}
	for _, s := range sortedServices(p) {
		if isNode(s) {
			continue
		}
		if isQuorumq(s) {
			if !slices.Contains(toolCommands, subcommand(s)) {
				t.Errorf("%s: runs `quorumq %s`, not one of %q", s.Name, subcommand(s), toolCommands)
			}
			if hc := s.HealthCheck; hc == nil || (!hc.Disable && strings.Contains(strings.Join(hc.Test, " "), "/readyz")) {
				t.Errorf("%s: inherits the image's /readyz healthcheck, which `quorumq %s` does not serve: set healthcheck: {disable: true}",
					s.Name, subcommand(s))
			}
			for _, a := range s.Command {
				if strings.HasPrefix(a, "--destination-get-url=") && !strings.Contains(a, "%s") {
					t.Errorf("%s: %q has no %%s for the message", s.Name, a)
				}
			}
		}
		var texts []string
		texts = append(texts, s.Command...)
		texts = append(texts, s.Entrypoint...)
		for _, k := range sortedKeys(s.Environment) {
			if v := s.Environment[k]; v != nil {
				texts = append(texts, *v)
			}
		}
		for _, text := range texts {
			for _, m := range urlRE.FindAllStringSubmatch(text, -1) {
				checkURL(t, p, s, m[0], m[1], m[2], m[3], byName, nodeBy)
			}
		}
	}
}

func checkURL(t *testing.T, p *types.Project, s types.ServiceConfig, raw, scheme, hostport, rest string,
	byName map[string]string, nodeBy map[string]node) {
	t.Helper()
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
		switch scheme {
		case "http":
			port = "80"
		case "redis":
			port = "6379"
		}
	}
	target, ok := byName[host]
	if !ok {
		t.Errorf("%s: %s: %q is not a service of this project", s.Name, raw, host)
		return
	}
	if _, ok := s.DependsOn[target]; !ok && target != s.Name {
		t.Errorf("%s: uses %s (%s) but does not depend on it", s.Name, target, raw)
	}
	if dep := p.Services[target]; len(s.Profiles) == 0 && len(dep.Profiles) > 0 {
		t.Errorf("%s: runs without a profile but uses %s, which only runs in %q", s.Name, target, dep.Profiles)
	}
	if n, ok := nodeBy[target]; ok {
		queue, pubsub := strconv.Itoa(n.port(t, "queue-addr")), strconv.Itoa(n.port(t, "pubsub-addr"))
		switch {
		case n.flags["tls-cert"] == "" && scheme != "http":
			t.Errorf("%s: %s: %s has no certificate and speaks http", s.Name, raw, target)
		case n.flags["tls-cert"] != "" && scheme != "https":
			t.Errorf("%s: %s: %s has a certificate and speaks https only", s.Name, raw, target)
		}
		first := "/" + strings.SplitN(strings.TrimPrefix(rest, "/"), "/", 2)[0]
		first, _, _ = strings.Cut(first, "?")
		switch {
		case slices.Contains(pubsubPaths, first) && port != pubsub:
			t.Errorf("%s: %s: %s is served on %s's pubsub port %s", s.Name, raw, first, target, pubsub)
		case slices.Contains(queuePaths, first) && port != queue:
			t.Errorf("%s: %s: %s is served on %s's queue port %s", s.Name, raw, first, target, queue)
		case port != queue && port != pubsub:
			t.Errorf("%s: %s: %s listens on %s (queue) and %s (pubsub), not %s", s.Name, raw, target, queue, pubsub, port)
		}
		return
	}
	if dep := p.Services[target]; strings.HasPrefix(path.Base(dep.Image), "redis") {
		if scheme != "redis" || port != "6379" {
			t.Errorf("%s: %s: redis listens on redis://%s:6379", s.Name, raw, host)
		}
	}
}

var promTargetRE = regexp.MustCompile(`^\s*-\s*["']?([A-Za-z0-9._-]+):(\d+)["']?\s*$`)

// Prometheus (profile monitoring) scrapes every node on a port that serves
// /metrics, from the file the service mounts.
func TestCompose_PrometheusScrapesNodes(t *testing.T) {
	p := allProfiles(t)
	var prom *types.ServiceConfig
	for _, s := range sortedServices(p) {
		if strings.Contains(s.Image, "prometheus") {
			prom = &s
		}
	}
	if prom == nil {
		t.Skip("no prometheus service")
	}
	if len(prom.Profiles) == 0 {
		t.Errorf("prometheus runs without a profile; put it under one (monitoring)")
	}
	want := filepath.Join(repoRoot(t), "deploy", "prometheus.yml")
	mounted := false
	for _, v := range prom.Volumes {
		if v.Type == types.VolumeTypeBind && filepath.Clean(v.Source) == want {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("prometheus does not mount deploy/prometheus.yml")
	}
	byName := names(p)
	scraped := map[string]bool{}
	nodeBy := map[string]node{}
	for _, n := range nodes(t, p) {
		nodeBy[n.svc.Name] = n
	}
	for i, line := range strings.Split(readRepoFile(t, "deploy/prometheus.yml"), "\n") {
		m := promTargetRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n, ok := nodeBy[byName[m[1]]]
		if !ok {
			t.Errorf("deploy/prometheus.yml:%d: target %s:%s is not a node service", i+1, m[1], m[2])
			continue
		}
		if q, ps := strconv.Itoa(n.port(t, "queue-addr")), strconv.Itoa(n.port(t, "pubsub-addr")); m[2] != q && m[2] != ps {
			t.Errorf("deploy/prometheus.yml:%d: %s serves /metrics on %s and %s, not %s", i+1, n.svc.Name, q, ps, m[2])
		}
		scraped[n.svc.Name] = true
	}
	for name := range nodeBy {
		if !scraped[name] {
			t.Errorf("deploy/prometheus.yml does not scrape %s", name)
		}
	}
}

// The Dockerfile builds the binary the way the compose file and the
// release need it, and its final stage declares what the nodes rely on.
func TestDockerfile(t *testing.T) {
	flags := serveFlags(t)
	stages := dockerfileStages(t)
	final := stages[len(stages)-1]
	find := func(st stage, cmd string) []instruction {
		var out []instruction
		for _, in := range st.Ins {
			if in.Cmd == cmd {
				out = append(out, in)
			}
		}
		return out
	}
	last := func(st stage, cmd string) (instruction, bool) {
		ins := find(st, cmd)
		if len(ins) == 0 {
			return instruction{}, false
		}
		return ins[len(ins)-1], true
	}

	// Build stage: static, trimmed, version stamped, the real main package.
	var build *instruction
	for _, st := range stages[:len(stages)-1] {
		for _, in := range find(st, "RUN") {
			if strings.Contains(in.Args, "go build") {
				build = &in
			}
		}
	}
	if build == nil {
		t.Fatal("no build stage runs go build")
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w", "-X main.version=${VERSION}", "./cmd/node"} {
		if !strings.Contains(build.Args, want) {
			t.Errorf("line %d: go build lacks %q", build.Line, want)
		}
	}
	out, err := runBinary(t, "version")
	if err != nil || strings.TrimSpace(out) != "quorumq "+testVersion {
		t.Errorf("a binary built with -X main.version=%s prints %q (%v): the Dockerfile's -X flag would not stamp the version", testVersion, out, err)
	}

	// Final stage.
	base := final.From
	distroless := strings.Contains(base, "distroless")
	if !distroless && !(strings.Contains(base, "debian") && strings.Contains(base, "slim")) {
		t.Errorf("final image %q: want debian-slim or distroless", base)
	}
	if in, ok := last(final, "USER"); !ok {
		t.Error("final stage has no USER: the node would run as root")
	} else {
		user, _, _ := strings.Cut(in.Args, ":")
		if user == "root" || user == "0" {
			t.Errorf("line %d: USER %s", in.Line, in.Args)
		}
	}

	queueDefault, err := portOf(flags["queue-addr"].Default)
	if err != nil {
		t.Fatalf("serve --queue-addr default %q: %v", flags["queue-addr"].Default, err)
	}
	if in, ok := last(final, "HEALTHCHECK"); !ok {
		t.Error("no HEALTHCHECK")
	} else {
		// `quorumq health` asks /readyz on the port of QUORUMQ_QUEUE_ADDR,
		// serve's default when unset.
		url, err := health.FromEnv(func(string) string { return "" }).URL()
		switch {
		case !strings.Contains(in.Args, `"quorumq", "health"`):
			t.Errorf("line %d: HEALTHCHECK %s, want CMD [\"quorumq\", \"health\"] (the image needs no HTTP client)", in.Line, in.Args)
		case err != nil || !strings.HasSuffix(url, ":"+strconv.Itoa(queueDefault)+"/readyz"):
			t.Errorf("quorumq health asks %s (%v) by default, but serve's queue port is %d", url, err, queueDefault)
		}
	}

	exposed := map[string]bool{}
	for _, in := range find(final, "EXPOSE") {
		for _, f := range strings.Fields(in.Args) {
			if !strings.Contains(f, "/") {
				f += "/tcp"
			}
			exposed[f] = true
		}
	}
	for _, want := range []struct{ flag, proto string }{
		{"pubsub-addr", "tcp"}, {"queue-addr", "tcp"}, {"raft-addr", "tcp"}, {"gossip-addr", "tcp"}, {"gossip-addr", "udp"},
	} {
		port, err := portOf(flags[want.flag].Default)
		if err != nil {
			t.Errorf("serve --%s default %q: %v", want.flag, flags[want.flag].Default, err)
			continue
		}
		if p := fmt.Sprintf("%d/%s", port, want.proto); !exposed[p] {
			t.Errorf("EXPOSE lacks %s (--%s)", p, want.flag)
		}
	}

	env := dockerfileEnv(t)
	dataDir := env[envName("data-dir")]
	if dataDir != "/data" {
		t.Errorf("ENV %s=%q, want /data", envName("data-dir"), dataDir)
	}
	volumes := map[string]bool{}
	for _, in := range find(final, "VOLUME") {
		vs, err := execForm(in.Args)
		if err != nil {
			vs = strings.Fields(in.Args)
		}
		for _, v := range vs {
			volumes[path.Clean(v)] = true
		}
	}
	if !volumes[dataDir] {
		t.Errorf("no VOLUME %s", dataDir)
	}

	if in, ok := last(final, "ENTRYPOINT"); !ok {
		t.Error("no ENTRYPOINT")
	} else if ep, err := execForm(in.Args); err != nil || !slices.Equal(ep, []string{"quorumq"}) {
		t.Errorf("line %d: ENTRYPOINT %s, want [\"quorumq\"] (exec form, so SIGTERM reaches the node)", in.Line, in.Args)
	}
	if in, ok := last(final, "CMD"); !ok {
		t.Error("no CMD")
	} else if c, err := execForm(in.Args); err != nil || !slices.Equal(c, []string{"serve"}) {
		t.Errorf("line %d: CMD %s, want [\"serve\"]", in.Line, in.Args)
	}
	copied := false
	for _, in := range find(final, "COPY") {
		f := strings.Fields(in.Args)
		if strings.HasPrefix(in.Args, "--from=") && len(f) > 0 {
			dst := f[len(f)-1]
			if dst == "/usr/local/bin/quorumq" || dst == "/usr/local/bin/" || dst == "/usr/bin/quorumq" {
				copied = true
			}
		}
	}
	if !copied {
		t.Error("the final stage does not COPY --from the build stage into /usr/local/bin/quorumq")
	}
	if in, ok := last(final, "STOPSIGNAL"); ok && in.Args != "SIGTERM" {
		t.Errorf("line %d: STOPSIGNAL %s: serve shuts down gracefully on SIGTERM", in.Line, in.Args)
	}
}

func runBinary(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runCmd(quorumqBinary(t), args...)
}

// .dockerignore keeps local state and git out of the build context but
// not what the build needs.
func TestDockerignore(t *testing.T) {
	var patterns []string
	for _, line := range strings.Split(readRepoFile(t, ".dockerignore"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "!") {
			continue
		}
		patterns = append(patterns, strings.TrimPrefix(line, "/"))
	}
	if !slices.Contains(patterns, ".git") {
		t.Error(".dockerignore does not exclude .git")
	}
	for _, need := range []string{"go.mod", "go.sum", "cmd", "cmd/node", "cmd/node/main.go"} {
		for _, pat := range patterns {
			if ok, _ := filepath.Match(strings.TrimPrefix(pat, "**/"), need); ok {
				t.Errorf(".dockerignore pattern %q excludes %s, which the build needs", pat, need)
			}
		}
	}
}
