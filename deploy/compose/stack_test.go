package compose

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
)

// stackEnv turns on TestStack (make compose-test): it needs root, a Docker
// engine package and minutes, so `go test ./...` leaves it out.
const stackEnv = "QUORUMQ_COMPOSE_STACK"

// Image names of the override file stack/compose.local.yml.
const (
	localQuorumq    = "quorumq-local:test"
	localRedis      = "quorumq-local-redis:test"
	localPrometheus = "quorumq-local-prometheus:test"
)

// The compose file's host ports (queue port per node; Prometheus).
var queuePorts = map[string]int{"node1": 8081, "node2": 8181, "node3": 8281, "node4": 8381, "node5": 8481}

const prometheusPort = 9090

// TestStack runs the repository's docker-compose.yml for real, on a Docker
// engine of its own, with images assembled on this machine (no registry),
// and checks what the README promises of it: healthy nodes, one queue
// behind every published port, the tutorial's chain up to the click graph,
// a killed leader, a restarted node, down and up again with the data, the
// scale-out and monitoring profiles. Each step logs its duration.
func TestStack(t *testing.T) {
	if os.Getenv(stackEnv) == "" {
		t.Skipf("set %s=1 (make compose-test) to run the compose stack on a private Docker engine", stackEnv)
	}
	if os.Geteuid() != 0 {
		t.Fatal("the compose stack test starts its own dockerd and needs root")
	}
	root := repoRoot(t)
	s := &stack{t: t, root: root}
	defer s.summary()

	s.step("start a private dockerd (vfs)", s.startDockerd)
	var composeErr, binErr error
	s.step("build the compose command and a static quorumq", func() {
		var wg sync.WaitGroup
		wg.Go(func() { composeErr = s.buildCompose() })
		wg.Go(func() { binErr = s.buildQuorumq() })
		wg.Wait()
		if composeErr != nil || binErr != nil {
			t.Fatalf("compose: %v; quorumq: %v", composeErr, binErr)
		}
	})
	s.step("assemble the images (no pull)", s.buildImages)
	s.step("up: certs, node1-3, redis and the chain", func() {
		s.compose(5*time.Minute, "up", "-d")
	})
	s.step("all nodes healthy", func() { s.waitHealthy("node1", "node2", "node3") })
	s.step("read the admin token and the CA", s.credentials)
	s.step("put on node1, get on node2 and node3: one queue", s.oneQueue)
	s.step("chain: generator -> pubsub -> ps_to_http -> queue -> analyze -> redis: click graph", s.clickGraph)
	s.step("docker kill of the leader: writes resume, no acknowledged put lost", s.killLeader)
	s.step("docker compose restart of a node", s.restartNode)
	s.step("down, then up: the cluster and its messages are back", s.downUp)
	s.step("scale-out profile: node4 and node5 join as voters", s.scaleOut)
	s.step("monitoring profile: Prometheus scrapes every node", s.monitoring)
}

type stack struct {
	t          *testing.T
	root       string
	dir        string // dockerd's state, the binaries, the build contexts
	sock       string
	project    string
	composeBin string // the compose binary
	quorumq    string
	client     *http.Client
	token      string
	prom       bool // a Prometheus image could be assembled
	// nofile is the nodes' open-file limit: the compose file's 65536, or
	// this process's hard limit where it is lower (an engine without
	// CAP_SYS_RESOURCE cannot raise it).
	nofile uint64
	steps  []stepTime
}

type stepTime struct {
	name string
	dur  time.Duration
	ok   bool
}

// step runs one check and logs its duration, whether it passed or not.
func (s *stack) step(name string, f func()) {
	s.t.Helper()
	s.t.Logf("step: %s ...", name)
	start := time.Now()
	ok := false
	defer func() {
		d := time.Since(start).Round(100 * time.Millisecond)
		s.steps = append(s.steps, stepTime{name, d, ok})
		verdict := "ok"
		if !ok {
			verdict = "FAILED"
		}
		s.t.Logf("step: %s: %s in %v", name, verdict, d)
	}()
	f()
	ok = !s.t.Failed()
}

// waitFor polls cond (every 250 ms: each poll runs docker or an HTTPS
// request) until it holds; at the deadline the test fails with what cond
// said last.
func (s *stack) waitFor(timeout time.Duration, what string, cond func() (bool, string)) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out after %v waiting for %s; last: %s", timeout, what, state)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (s *stack) summary() {
	var b strings.Builder
	var total time.Duration
	for _, st := range s.steps {
		verdict := "ok"
		if !st.ok {
			verdict = "FAILED"
		}
		fmt.Fprintf(&b, "  %-6s %7v  %s\n", verdict, st.dur, st.name)
		total += st.dur
	}
	s.t.Logf("compose stack steps (%v in all):\n%s", total.Round(100*time.Millisecond), b.String())
}

// run runs a command with a deadline, Docker pointed at the private engine,
// and returns its combined output; a failure fails the test.
func (s *stack) run(timeout time.Duration, name string, args ...string) string {
	s.t.Helper()
	out, err := s.tryRun(timeout, name, args...)
	if err != nil {
		s.t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out
}

func (s *stack) tryRun(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = s.root
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+s.sock, "DOCKER_BUILDKIT=0",
		"DOCKER_CONFIG="+filepath.Join(s.dir, "docker-config"), "QUORUMQ_PUBLISH_IP=127.0.0.1",
		"QUORUMQ_NOFILE="+strconv.FormatUint(s.nofile, 10))
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// compose runs the compose command on the repository's file and the
// override that names the local images, as the private project.
func (s *stack) compose(timeout time.Duration, args ...string) string {
	s.t.Helper()
	return s.run(timeout, s.composeBin, s.composeArgs(args...)...)
}

func (s *stack) composeArgs(args ...string) []string {
	return append([]string{"-p", s.project, "-f", filepath.Join(s.root, "docker-compose.yml"),
		"-f", filepath.Join(s.root, "deploy", "compose", "stack", "compose.local.yml")}, args...)
}

func (s *stack) container(service string) string { return s.project + "-" + service + "-1" }

// startDockerd starts a Docker engine with its own data root, exec root
// and socket, no default bridge and no firewall rules (published ports go
// through its userland proxy); Cleanup takes the stack down, stops the
// engine and removes its state, whatever happened.
func (s *stack) startDockerd() {
	t := s.t
	for _, bin := range []string{"dockerd", "docker"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: make compose-test installs Debian's docker.io", bin)
		}
	}
	for _, p := range []int{8080, 8081, 8180, 8181, 8280, 8281, 8380, 8381, 8480, 8481, prometheusPort} {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("the compose file publishes 127.0.0.1:%d, which is taken: %v", p, err)
		}
		l.Close()
	}
	// The engine adds no firewall rules (--iptables=false), so the
	// containers of one network reach each other only if the host's
	// FORWARD chain lets bridged packets through.
	if out, err := exec.Command("iptables", "-S", "FORWARD").Output(); err == nil && strings.HasPrefix(string(out), "-P FORWARD DROP") {
		if nf, _ := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables"); strings.TrimSpace(string(nf)) == "1" {
			t.Fatal("the host's iptables FORWARD policy is DROP and bridged packets go through it: the containers could not reach each other")
		}
	}
	// Short: unix socket paths below it must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "qqstack")
	if err != nil {
		t.Fatal(err)
	}
	s.dir = dir
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	s.nofile = min(65536, lim.Max)
	if s.nofile < 65536 {
		t.Logf("the nodes' open-file limit: %d (QUORUMQ_NOFILE), this machine's hard limit, not the compose file's 65536", s.nofile)
	}
	s.sock = filepath.Join(dir, "docker.sock")
	s.project = "qqstack" + strconv.Itoa(os.Getpid())
	if err := os.MkdirAll(filepath.Join(dir, "docker-config"), 0o700); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	// The host is left as it was: no docker0, no firewall rules, no
	// change to ip_forward (containers of one bridge and the published
	// ports through the userland proxy need none of them).
	cmd := exec.Command("dockerd", "--storage-driver=vfs",
		"--data-root="+filepath.Join(dir, "data"), "--exec-root="+filepath.Join(dir, "exec"),
		"--pidfile="+filepath.Join(dir, "dockerd.pid"), "--host=unix://"+s.sock,
		"--bridge=none", "--iptables=false", "--ip-masq=false", "--ip-forward=false", "--log-level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpLogs()
		}
		if s.composeBin != "" {
			start := time.Now()
			out, err := s.tryRun(3*time.Minute, s.composeBin, s.composeArgs("--profile", "scale-out", "--profile", "monitoring", "down", "-v", "--remove-orphans", "-t", "10")...)
			t.Logf("cleanup: compose down -v: %v in %v\n%s", err, time.Since(start).Round(100*time.Millisecond), tail(out, 10))
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Log("cleanup: dockerd did not stop in 30 s; killing its process group")
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		unmountBelow(t, dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	s.waitFor(time.Minute, "dockerd answers", func() (bool, string) {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Fatalf("dockerd exited:\n%s", tail(string(log), 20))
		default:
		}
		out, err := s.tryRun(10*time.Second, "docker", "version", "--format", "{{.Server.Version}}")
		return err == nil, strings.TrimSpace(out)
	})
	t.Logf("dockerd %s, state in %s", strings.TrimSpace(s.run(10*time.Second, "docker", "version", "--format", "{{.Server.Version}}")), dir)
}

// unmountBelow unmounts whatever a killed engine left mounted under dir,
// deepest first, so that its removal cannot reach through a mount.
func unmountBelow(t *testing.T, dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mounts = append(mounts, f[4])
		}
	}
	slices.SortFunc(mounts, func(a, b string) int { return len(b) - len(a) })
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			t.Logf("cleanup: unmount %s: %v", m, err)
		}
	}
}

func (s *stack) dumpLogs() {
	if s.composeBin != "" {
		out, _ := s.tryRun(time.Minute, s.composeBin, s.composeArgs("--profile", "scale-out", "--profile", "monitoring", "ps", "-a")...)
		s.t.Logf("compose ps -a:\n%s", out)
		out, _ = s.tryRun(time.Minute, s.composeBin, s.composeArgs("--profile", "scale-out", "--profile", "monitoring", "logs", "--no-color", "--tail=30")...)
		s.t.Logf("compose logs (last 30 lines of each):\n%s", out)
	}
	log, _ := os.ReadFile(filepath.Join(s.dir, "dockerd.log"))
	s.t.Logf("dockerd log (tail):\n%s", tail(string(log), 30))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// buildCompose builds the compose command from its Go module (pinned in
// composecmd/go.mod), the only source of it besides an image registry.
func (s *stack) buildCompose() error {
	s.composeBin = filepath.Join(s.dir, "docker-compose")
	cmd := exec.Command("go", "build", "-o", s.composeBin, "github.com/docker/compose/v5/cmd")
	cmd.Dir = filepath.Join(s.root, "deploy", "compose", "composecmd")
	if out, err := cmd.CombinedOutput(); err != nil {
		s.composeBin = ""
		return fmt.Errorf("%v\n%s", err, out)
	}
	return nil
}

// buildQuorumq builds the binary as deploy/Dockerfile does: static, no cgo.
func (s *stack) buildQuorumq() error {
	s.quorumq = filepath.Join(s.dir, "quorumq")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=compose-test", "-o", s.quorumq, "./cmd/node")
	cmd.Dir = s.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v\n%s", err, out)
	}
	return nil
}

// buildImages assembles the build contexts (a rootfs of files from this
// machine) and builds the images FROM scratch: nothing is pulled.
func (s *stack) buildImages() {
	t := s.t
	stackDir := filepath.Join(s.root, "deploy", "compose", "stack")

	// quorumq + busybox: sh and the tools the compose scripts call.
	ctx := filepath.Join(s.dir, "ctx-quorumq")
	rootfs := filepath.Join(ctx, "rootfs")
	copyFile(t, s.quorumq, filepath.Join(rootfs, "usr/local/bin/quorumq"), 0o755)
	s.addBusybox(rootfs)
	writeFile(t, filepath.Join(rootfs, "etc/passwd"), "root:x:0:0:root:/:/bin/sh\nquorumq:x:10001:10001:quorumq:/data:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n", 0o644)
	writeFile(t, filepath.Join(rootfs, "etc/group"), "root:x:0:\nquorumq:x:10001:\nnogroup:x:65534:\n", 0o644)
	mkdirs(t, filepath.Join(rootfs, "tmp"), 0o1777)
	mkdirs(t, filepath.Join(ctx, "owned/data"), 0o755)
	mkdirs(t, filepath.Join(ctx, "owned/certs"), 0o750)
	s.dockerBuild(localQuorumq, filepath.Join(stackDir, "quorumq.Dockerfile"), ctx)

	// Redis: Debian's server and client with their libraries.
	ctx = filepath.Join(s.dir, "ctx-redis")
	rootfs = filepath.Join(ctx, "rootfs")
	for _, bin := range []string{"redis-server", "redis-cli"} {
		path, err := exec.LookPath(bin)
		if err != nil {
			t.Fatalf("%s not found: make compose-test installs Debian's redis-server", bin)
		}
		copyWithLibs(t, path, filepath.Join(rootfs, "usr/bin", bin), rootfs)
	}
	s.addBusybox(rootfs)
	writeFile(t, filepath.Join(rootfs, "usr/local/bin/docker-entrypoint.sh"), redisEntrypoint, 0o755)
	writeFile(t, filepath.Join(rootfs, "etc/passwd"), "root:x:0:0:root:/:/bin/false\n", 0o644)
	mkdirs(t, filepath.Join(rootfs, "data"), 0o755)
	mkdirs(t, filepath.Join(rootfs, "tmp"), 0o1777)
	s.dockerBuild(localRedis, filepath.Join(stackDir, "redis.Dockerfile"), ctx)

	// Prometheus: Debian's, when installed (the test skips it otherwise).
	path, err := exec.LookPath("prometheus")
	if err != nil {
		t.Logf("monitoring: no prometheus binary (Debian's prometheus package): its step will be skipped")
		return
	}
	ctx = filepath.Join(s.dir, "ctx-prometheus")
	rootfs = filepath.Join(ctx, "rootfs")
	copyWithLibs(t, path, filepath.Join(rootfs, "bin/prometheus"), rootfs)
	writeFile(t, filepath.Join(rootfs, "etc/passwd"), "root:x:0:0:root:/:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n", 0o644)
	mkdirs(t, filepath.Join(rootfs, "etc/prometheus"), 0o755)
	mkdirs(t, filepath.Join(rootfs, "tmp"), 0o1777)
	mkdirs(t, filepath.Join(ctx, "owned/prometheus"), 0o755)
	s.dockerBuild(localPrometheus, filepath.Join(stackDir, "prometheus.Dockerfile"), ctx)
	s.prom = true
}

// redisEntrypoint starts Redis as the official image's entrypoint does:
// without a config file, protected mode off.
const redisEntrypoint = `#!/bin/sh
if [ "$1" = redis-server ]; then
	case "$2" in
	*.conf) ;;
	*) shift; set -- redis-server --protected-mode no "$@" ;;
	esac
fi
exec "$@"
`

// addBusybox puts Debian's static busybox in rootfs/bin with the applets
// the compose file's scripts and the Redis entrypoint call.
func (s *stack) addBusybox(rootfs string) {
	t := s.t
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal("busybox not found: make compose-test installs Debian's busybox-static")
	}
	if out, _ := exec.Command("file", "-L", busybox).Output(); len(out) > 0 && !bytes.Contains(out, []byte("statically linked")) {
		t.Fatalf("%s is not statically linked (install busybox-static): %s", busybox, out)
	}
	copyFile(t, busybox, filepath.Join(rootfs, "bin/busybox"), 0o755)
	for _, applet := range []string{"sh", "awk", "head", "base64", "tr", "id", "mv", "rm", "rmdir", "chmod", "cat", "mkdir", "ls", "echo"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
}

func (s *stack) dockerBuild(tag, dockerfile, ctx string) {
	start := time.Now()
	s.run(5*time.Minute, "docker", "build", "-q", "-t", tag, "-f", dockerfile, ctx)
	size := strings.TrimSpace(s.run(time.Minute, "docker", "image", "inspect", "--format", "{{.Size}}", tag))
	n, _ := strconv.ParseInt(size, 10, 64)
	s.t.Logf("image %s: %.1f MB, built in %v", tag, float64(n)/1e6, time.Since(start).Round(100*time.Millisecond))
}

func mkdirs(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	mkdirs(t, filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(data), mode)
}

// copyWithLibs copies a dynamically linked program and every library ldd
// says it loads (the loader too) into rootfs, at the same paths.
func copyWithLibs(t *testing.T, bin, to, rootfs string) {
	t.Helper()
	copyFile(t, bin, to, 0o755)
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		// A static binary: "not a dynamic executable", exit 1.
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		var lib string
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			lib = f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			lib = f[0]
		default:
			continue
		}
		copyFile(t, lib, filepath.Join(rootfs, lib), 0o755)
	}
}

// waitHealthy waits for Docker to report the services' containers healthy
// (the compose file's healthcheck: `quorumq health`, /readyz).
func (s *stack) waitHealthy(services ...string) {
	s.t.Helper()
	s.waitFor(3*time.Minute, "healthy: "+strings.Join(services, ", "), func() (bool, string) {
		var states []string
		all := true
		for _, svc := range services {
			out, err := s.tryRun(10*time.Second, "docker", "inspect", "--format", "{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}", s.container(svc))
			state := strings.TrimSpace(out)
			if err != nil || state != "running/healthy" {
				all = false
			}
			states = append(states, svc+"="+state)
		}
		return all, strings.Join(states, " ")
	})
}

// credentials reads the admin token and the CA the certs service made, as
// the README tells users to, and makes the HTTPS client of the checks.
func (s *stack) credentials() {
	t := s.t
	s.token = strings.TrimSpace(s.compose(time.Minute, "exec", "-T", "node1", "awk", `$1 == "admin" {print $3}`, "/certs/tokens"))
	if s.token == "" {
		t.Fatal("no admin token in /certs/tokens")
	}
	pem := s.compose(time.Minute, "exec", "-T", "node1", "cat", "/certs/ca.pem")
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(pem)) {
		t.Fatalf("no certificate in /certs/ca.pem: %q", tail(pem, 3))
	}
	s.client = &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
}

// call is one HTTPS request to a published port, with the admin token.
func (s *stack) call(method string, port int, path string, body string) (int, string, error) {
	req, err := http.NewRequest(method, fmt.Sprintf("https://127.0.0.1:%d%s", port, path), strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp.StatusCode, string(b), err
}

// must is call that fails the test unless the answer is 200.
func (s *stack) must(method string, port int, path, body string) string {
	s.t.Helper()
	code, out, err := s.call(method, port, path, body)
	if err != nil || code != http.StatusOK {
		s.t.Fatalf("%s :%d%s: %d %v %q", method, port, path, code, err, tail(out, 3))
	}
	return out
}

func (s *stack) status(port int) (*api.Status, error) {
	code, out, err := s.call(http.MethodGet, port, "/cluster/status", "")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("%d %s", code, strings.TrimSpace(out))
	}
	var st api.Status
	return &st, json.Unmarshal([]byte(out), &st)
}

// oneQueue puts on node1's published port and gets on node2's and
// node3's: the three ports are one replicated queue.
func (s *stack) oneQueue() {
	const n = 10
	for i := range n {
		s.must(http.MethodPost, queuePorts["node1"], "/put?queue=stack-one", fmt.Sprintf("m-%d", i))
	}
	for i := range n {
		port := queuePorts["node2"]
		if i%2 == 1 {
			port = queuePorts["node3"]
		}
		if got, want := s.must(http.MethodGet, port, "/get?queue=stack-one", ""), fmt.Sprintf("m-%d", i); got != want {
			s.t.Fatalf("get %d on :%d: %q, want %q (in put order)", i, port, got, want)
		}
	}
	if got := s.must(http.MethodGet, queuePorts["node3"], "/get?queue=stack-one", ""); got != "" {
		s.t.Fatalf("get on an emptied queue: %q", got)
	}
	// Round the ring: each node's port takes a put that the next one's
	// get returns.
	ring := []string{"node1", "node2", "node3"}
	for i, from := range ring {
		to := ring[(i+1)%len(ring)]
		s.must(http.MethodPost, queuePorts[from], "/put?queue=stack-ring", "from-"+from)
		if got := s.must(http.MethodGet, queuePorts[to], "/get?queue=stack-ring", ""); got != "from-"+from {
			s.t.Fatalf("put on %s, get on %s: %q", from, to, got)
		}
	}
	s.t.Logf("%d messages put on :%d came out of :%d and :%d in order; a put on each node's port came out of the next one's", n, queuePorts["node1"], queuePorts["node2"], queuePorts["node3"])
}

// clickGraph waits for the chain to feed the click graph in Redis, read
// through node1's /analytics (the nodes read the compose Redis).
func (s *stack) clickGraph() {
	var edges int
	var top string
	s.waitFor(3*time.Minute, "click graph edges in /analytics", func() (bool, string) {
		code, out, err := s.call(http.MethodGet, queuePorts["node1"], "/analytics?top=3", "")
		if err != nil || code != http.StatusOK {
			return false, fmt.Sprintf("%d %v %s", code, err, tail(out, 2))
		}
		var rep struct {
			Graph struct {
				NodeCount int `json:"node_count"`
				Edges     []struct {
					From   string  `json:"from"`
					To     string  `json:"to"`
					Weight float64 `json:"weight"`
				} `json:"edges"`
			} `json:"graph"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			return false, err.Error()
		}
		edges = len(rep.Graph.Edges)
		if edges > 0 {
			b, _ := json.Marshal(rep.Graph.Edges[0])
			top = fmt.Sprintf("%d nodes, heaviest edge %s", rep.Graph.NodeCount, b)
		}
		return edges > 0, fmt.Sprintf("%d edges", edges)
	})
	stats := s.must(http.MethodGet, queuePorts["node1"], "/stats?queue=clicks&format=json", "")
	s.t.Logf("click graph: %s; queue clicks: %s", top, strings.TrimSpace(stats))
}

// leader asks the given ports in turn for the cluster's leader.
func (s *stack) leader(ports ...int) (string, error) {
	var last error
	for _, p := range ports {
		st, err := s.status(p)
		if err == nil && st.LeaderID != "" {
			return st.LeaderID, nil
		}
		last = fmt.Errorf(":%d: %v", p, err)
	}
	return "", fmt.Errorf("no leader known: %v", last)
}

// writer puts numbered messages, each with an idempotency key, into one
// queue through the given ports, moving to the next port on any error; a
// message counts as acknowledged once a node answered 200.
type writer struct {
	s     *stack
	queue string
	ports []int
	mu    sync.Mutex
	acked []time.Time // acked[i]: when message i was acknowledged
	stop  chan struct{}
	done  chan struct{}
}

func (s *stack) startWriter(queue string, ports []int) *writer {
	w := &writer{s: s, queue: queue, ports: ports, stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *writer) loop() {
	defer close(w.done)
	port := 0
	for i := 0; ; {
		select {
		case <-w.stop:
			return
		default:
		}
		code, _, err := w.s.call(http.MethodPost, w.ports[port%len(w.ports)], fmt.Sprintf("/put?queue=%s&id=w-%d", w.queue, i), fmt.Sprintf("w-%d", i))
		if err == nil && code == http.StatusOK {
			w.mu.Lock()
			w.acked = append(w.acked, time.Now())
			w.mu.Unlock()
			i++
			continue
		}
		port++
		select {
		case <-w.stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (w *writer) count() int { w.mu.Lock(); defer w.mu.Unlock(); return len(w.acked) }

// pauseAfter is the longest wait between two acknowledged puts from t on
// (the first counted from t): how long writes stopped after a kill at t.
func (w *writer) pauseAfter(t time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var longest time.Duration
	prev := t
	for _, a := range w.acked {
		if a.Before(t) {
			continue
		}
		longest = max(longest, a.Sub(prev))
		prev = a
	}
	return longest
}

func (w *writer) halt() int { close(w.stop); <-w.done; return w.count() }

// drain pops every message of queue through port and returns the data.
func (s *stack) drain(port int, queue string) []string {
	s.t.Helper()
	var got []string
	for {
		out := s.must(http.MethodGet, port, "/mget?items=1000&queue="+queue, "")
		if out == "" {
			return got
		}
		for _, m := range strings.Split(out, "\n") {
			if m != "" {
				got = append(got, m)
			}
		}
	}
}

// killLeader kills the leader's container (SIGKILL, no goodbye) under a
// steady stream of puts, measures how long the puts stop, then brings the
// container back and checks that every acknowledged put is in the queue.
func (s *stack) killLeader() {
	t := s.t
	all := []int{queuePorts["node1"], queuePorts["node2"], queuePorts["node3"]}
	leader, err := s.leader(all...)
	if err != nil {
		t.Fatal(err)
	}
	var ports []int
	for _, n := range []string{"node1", "node2", "node3"} {
		if n != leader {
			ports = append(ports, queuePorts[n])
		}
	}
	// The writer starts on a survivor, and moves on when its node fails.
	w := s.startWriter("stack-failover", append(ports, queuePorts[leader]))
	s.waitFor(30*time.Second, "20 puts acknowledged before the kill", func() (bool, string) {
		return w.count() >= 20, strconv.Itoa(w.count())
	})
	killed := time.Now()
	s.run(time.Minute, "docker", "kill", s.container(leader))
	before := w.count()
	t.Logf("killed %s (the leader) after %d acknowledged puts", leader, before)
	s.waitFor(60*time.Second, "puts acknowledged after the kill", func() (bool, string) {
		return w.count() >= before+20, fmt.Sprintf("%d after the kill", w.count()-before)
	})
	pause := w.pauseAfter(killed)
	newLeader, err := s.leader(ports...)
	if err != nil {
		t.Fatal(err)
	}
	acked := w.halt()
	t.Logf("writes stopped for at most %v after the kill (longest wait between two acknowledged puts); new leader %s", pause.Round(10*time.Millisecond), newLeader)

	// Docker does not restart a container it was told to kill.
	s.run(time.Minute, "docker", "start", s.container(leader))
	s.waitHealthy("node1", "node2", "node3")
	got := s.drain(queuePorts[leader], "stack-failover")
	have := map[string]bool{}
	for _, m := range got {
		have[m] = true
	}
	var lost []string
	for i := range acked {
		if m := fmt.Sprintf("w-%d", i); !have[m] {
			lost = append(lost, m)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged puts lost: %v", len(lost), acked, lost)
	}
	t.Logf("acknowledged %d puts, drained %d messages (through the restarted %s), none lost", acked, len(got), leader)
}

// restartNode restarts node2 with compose (SIGTERM, then start): it comes
// back healthy and serves the queue.
func (s *stack) restartNode() {
	start := time.Now()
	s.compose(2*time.Minute, "restart", "node2")
	s.t.Logf("compose restart node2 returned in %v", time.Since(start).Round(100*time.Millisecond))
	s.waitHealthy("node1", "node2", "node3")
	s.must(http.MethodPost, queuePorts["node2"], "/put?queue=stack-restart", "after-restart")
	if got := s.must(http.MethodGet, queuePorts["node1"], "/get?queue=stack-restart", ""); got != "after-restart" {
		s.t.Fatalf("get after the restart: %q", got)
	}
}

// downUp puts messages, takes the whole stack down (containers and
// network, not the volumes) and up again: the nodes find each other by
// name on the new network, keep their raft state and the messages.
func (s *stack) downUp() {
	t := s.t
	for i := range 5 {
		s.must(http.MethodPost, queuePorts["node3"], "/put?queue=stack-persist", fmt.Sprintf("p-%d", i))
	}
	before, err := s.status(queuePorts["node1"])
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s.compose(3*time.Minute, "down")
	t.Logf("down in %v", time.Since(start).Round(100*time.Millisecond))
	start = time.Now()
	s.compose(5*time.Minute, "up", "-d")
	s.waitHealthy("node1", "node2", "node3")
	t.Logf("up and healthy again in %v", time.Since(start).Round(100*time.Millisecond))
	after, err := s.status(queuePorts["node1"])
	if err != nil {
		t.Fatal(err)
	}
	if voters(after) != voters(before) || after.Term < before.Term || after.CommitIndex < before.CommitIndex {
		t.Fatalf("after down/up: voters %s term %d commit %d; before: voters %s term %d commit %d",
			voters(after), after.Term, after.CommitIndex, voters(before), before.Term, before.CommitIndex)
	}
	for i := range 5 {
		if got, want := s.must(http.MethodGet, queuePorts["node2"], "/get?queue=stack-persist", ""), fmt.Sprintf("p-%d", i); got != want {
			t.Fatalf("after down/up, get %d: %q, want %q", i, got, want)
		}
	}
	t.Logf("same voters (%s), term %d -> %d, commit index %d -> %d, the 5 messages back in order",
		voters(after), before.Term, after.Term, before.CommitIndex, after.CommitIndex)
}

func voters(st *api.Status) string {
	var v []string
	for _, m := range st.Members {
		if m.Voter {
			v = append(v, m.ID)
		}
	}
	slices.Sort(v)
	return strings.Join(v, ",")
}

// scaleOut starts the scale-out profile's nodes; the leader adds them and
// promotes them to voters once they caught up.
func (s *stack) scaleOut() {
	s.compose(5*time.Minute, "--profile", "scale-out", "up", "-d", "node4", "node5")
	s.waitHealthy("node4", "node5")
	want := "node1,node2,node3,node4,node5"
	s.waitFor(2*time.Minute, "five voters", func() (bool, string) {
		st, err := s.status(queuePorts["node4"])
		if err != nil {
			return false, err.Error()
		}
		alive := 0
		for _, m := range st.Members {
			if m.Status == api.MemberAlive {
				alive++
			}
		}
		return voters(st) == want && alive == 5, fmt.Sprintf("voters %s, %d alive", voters(st), alive)
	})
	s.must(http.MethodPost, queuePorts["node5"], "/put?queue=stack-scale", "via-node5")
	if got := s.must(http.MethodGet, queuePorts["node4"], "/get?queue=stack-scale", ""); got != "via-node5" {
		s.t.Fatalf("get on node4: %q", got)
	}
}

// monitoring starts the monitoring profile's Prometheus and waits until
// every node's target is up (Grafana, an image Debian does not package,
// is not started).
func (s *stack) monitoring() {
	if !s.prom {
		s.t.Log("monitoring: skipped: no Prometheus image could be assembled (Debian's prometheus package is not installed)")
		return
	}
	s.t.Log("monitoring: grafana is not started: Debian does not package it and no registry is reachable")
	s.compose(3*time.Minute, "--profile", "monitoring", "up", "-d", "prometheus")
	plain := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	s.waitFor(2*time.Minute, "Prometheus: every node's target up", func() (bool, string) {
		resp, err := plain.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/targets?state=active", prometheusPort))
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var body struct {
			Data struct {
				ActiveTargets []struct {
					ScrapeURL string `json:"scrapeUrl"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
			return false, err.Error()
		}
		up := 0
		var states []string
		for _, tg := range body.Data.ActiveTargets {
			if tg.Health == "up" {
				up++
			}
			states = append(states, fmt.Sprintf("%s=%s %s", tg.ScrapeURL, tg.Health, tg.LastError))
		}
		return up == len(queuePorts) && len(body.Data.ActiveTargets) == len(queuePorts), strings.Join(states, "; ")
	})
	s.t.Logf("Prometheus scrapes all %d nodes over HTTPS with the monitor token", len(queuePorts))
}
