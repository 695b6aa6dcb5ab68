package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/quorumq/quorumq/deploy/bench/load"
	"github.com/quorumq/quorumq/internal/testport"
)

// allSystems are the systems of a full run, in report order.
var allSystems = []string{"quorumq1", "quorumq3", "quorumq3-wal", "redis-always", "redis-everysec", "nats-r3", "nats-r3-always"}

// system is one server configuration under test.
type system struct {
	Key, Name string
	// Durability says what an acknowledgment means.
	Durability string
	start      func(ctx context.Context) error
	stop       func()
	// driver makes workers for a peer; nil for quorumq (deploy/bench/load).
	driver driver
	// targets are quorumq queue addresses (node order).
	targets []string
	// processes lists the running system's processes, for CPU sampling;
	// quorumq's carry their node's role at the time of the call.
	processes func() ([]sysProc, error)
}

// driver makes load workers for a peer system.
type driver interface {
	// worker returns a worker for kind (put, batch or lease) on queue.
	worker(kind, queue string, size, batch int) (load.Worker, error)
	prefill(queue string, n, size int) error
}

func newSystem(key string, o options, self string) (*system, error) {
	dir := filepath.Join(o.work, key)
	switch key {
	case "quorumq1":
		return quorumqSystem(key, 1, o.binary, dir, ""), nil
	case "quorumq3":
		return quorumqSystem(key, 3, o.binary, dir, ""), nil
	case "quorumq1-base", "quorumq3-base":
		if o.baseline == "" {
			return nil, fmt.Errorf("system %s runs the --baseline binary: give one", key)
		}
		s := quorumqSystem(key, int(key[len("quorumq")]-'0'), o.baseline, dir, "")
		s.Name += ", before (" + filepath.Base(o.baseline) + ")"
		return s, nil
	case "quorumq3-wal":
		// The same cluster on raft-wal, the faster store.
		return quorumqSystem(key, 3, o.binary, dir, "wal"), nil
	case "redis-always", "redis-everysec":
		return redisSystem(key, strings.TrimPrefix(key, "redis-"), dir), nil
	case "nats-r3", "nats-r3-always":
		return natsSystem(key, key == "nats-r3-always", self, dir), nil
	}
	return nil, fmt.Errorf("unknown system %q (want some of %s)", key, strings.Join(allSystems, ", "))
}

// freePort returns a loopback port that was free for TCP and UDP a
// moment ago, below the ephemeral range (testport.Free), so that the load
// generator's own connections cannot take it before a server binds it;
// 0 when there is none (the server then fails to start, saying so).
func freePort() int {
	port, err := testport.Free()
	if err != nil {
		return 0
	}
	return port
}

// logTails is the last lines of each log in dir named in names, for an
// error that says why a system did not start.
func logTails(dir string, names []string) string {
	var b strings.Builder
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			fmt.Fprintf(&b, "\n%s: %v", name, err)
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		fmt.Fprintf(&b, "\n%s:\n  %s", name, strings.Join(lines[max(0, len(lines)-5):], "\n  "))
	}
	return b.String()
}

// proc is a child process with its output in a log file.
type proc struct {
	cmd *exec.Cmd
	log *os.File
}

func startProc(dir, logName, name string, args ...string) (*proc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	lf, err := os.Create(filepath.Join(dir, logName))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	return &proc{cmd: cmd, log: lf}, nil
}

// stop sends SIGTERM and waits, then kills.
func (p *proc) stop() {
	if p == nil || p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
	p.log.Close()
}

func stopAll(ps []*proc) {
	for i := len(ps) - 1; i >= 0; i-- {
		ps[i].stop()
	}
}

// waitFor polls ok every 100ms until it is true or the time is up.
func waitFor(ctx context.Context, d time.Duration, what string, ok func() bool) error {
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s", what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// quorumqSystem is n quorumq nodes; logStore is --raft-log-store ("":
// the default, which gives new data directories raft-boltdb).
func quorumqSystem(key string, n int, binary, dir, logStore string) *system {
	s := &system{
		Key: key, Name: fmt.Sprintf("quorumq, %d node", n),
		Durability: "fsync (raft-boltdb) before the ack",
	}
	if n > 1 {
		s.Name += "s"
		s.Durability = "fsync on a quorum (2 of 3) before the ack"
	}
	args := []string{"--log-level=warn"}
	if logStore != "" {
		s.Name += ", raft-" + logStore
		if n == 1 {
			s.Durability = "fsync (raft-" + logStore + ") before the ack"
		}
		args = append(args, "--raft-log-store="+logStore)
	}
	var procs []*proc
	s.start = func(ctx context.Context) error {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		type ports struct{ pubsub, queue, raft, gossip int }
		ps := make([]ports, n)
		var join []string
		for i := range ps {
			ps[i] = ports{freePort(), freePort(), freePort(), freePort()}
			join = append(join, "127.0.0.1:"+strconv.Itoa(ps[i].gossip))
		}
		s.targets = nil
		for i, p := range ps {
			id := fmt.Sprintf("node%d", i+1)
			flags := append([]string{"serve",
				"--node-id=" + id, "--data-dir=" + filepath.Join(dir, id),
				"--pubsub-addr=127.0.0.1:" + strconv.Itoa(p.pubsub), "--queue-addr=127.0.0.1:" + strconv.Itoa(p.queue),
				"--raft-addr=127.0.0.1:" + strconv.Itoa(p.raft), "--gossip-addr=127.0.0.1:" + strconv.Itoa(p.gossip),
				"--advertise=127.0.0.1", "--join=" + strings.Join(join, ","),
				"--bootstrap-expect=" + strconv.Itoa(n)}, args...)
			pr, err := startProc(dir, id+".log", binary, flags...)
			if err != nil {
				stopAll(procs)
				return err
			}
			procs = append(procs, pr)
			s.targets = append(s.targets, "127.0.0.1:"+strconv.Itoa(p.queue))
		}
		c := &http.Client{Timeout: time.Second}
		err := waitFor(ctx, 60*time.Second, s.Name+" ready", func() bool {
			for _, t := range s.targets {
				res, err := c.Get("http://" + t + "/readyz")
				if err != nil {
					return false
				}
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					return false
				}
			}
			return true
		})
		if err != nil {
			logs := make([]string, n)
			for i := range logs {
				logs[i] = fmt.Sprintf("node%d.log", i+1)
			}
			return fmt.Errorf("%w; the nodes' logs end:%s", err, logTails(dir, logs))
		}
		return nil
	}
	s.stop = func() { stopAll(procs); procs = nil }
	s.processes = func() ([]sysProc, error) {
		if len(procs) == 0 {
			return nil, errNotRunning
		}
		c := &http.Client{Timeout: 2 * time.Second}
		out := make([]sysProc, len(procs))
		for i, p := range procs {
			if i >= len(s.targets) {
				return nil, fmt.Errorf("node%d has no queue address", i+1)
			}
			role, err := nodeState(c, s.targets[i])
			if err != nil {
				return nil, err
			}
			out[i] = sysProc{Name: fmt.Sprintf("node%d", i+1), PID: p.cmd.Process.Pid, Role: role}
		}
		return out, nil
	}
	return s
}

// nodeState is a quorumq node's Raft state from its /cluster/status:
// "leader", "follower" or "candidate".
func nodeState(c *http.Client, target string) (string, error) {
	res, err := c.Get("http://" + target + "/cluster/status")
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var st struct {
		State string `json:"state"`
	}
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		return "", fmt.Errorf("%s/cluster/status: %w", target, err)
	}
	return st.State, nil
}

func redisSystem(key, fsync, dir string) *system {
	s := &system{
		Key: key, Name: "redis-server, appendfsync " + fsync,
		Durability: "AOF fdatasync before the reply (once per event-loop pass)",
	}
	if fsync == "everysec" {
		s.Durability = "AOF write before the reply, fdatasync once a second"
	}
	var p *proc
	var addr string
	s.start = func(ctx context.Context) error {
		port := freePort()
		addr = "127.0.0.1:" + strconv.Itoa(port)
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		var err error
		p, err = startProc(dir, "redis.log", "redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
			"--dir", dir, "--appendonly", "yes", "--appendfsync", fsync, "--save", "",
			"--protected-mode", "yes", "--daemonize", "no")
		if err != nil {
			return err
		}
		s.driver = &redisDriver{addr: addr}
		return waitFor(ctx, 20*time.Second, "redis-server", func() bool {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return false
			}
			defer c.Close()
			c.Write([]byte("*1\r\n$4\r\nPING\r\n"))
			b := make([]byte, 16)
			c.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := c.Read(b)
			return strings.HasPrefix(string(b[:n]), "+PONG")
		})
	}
	s.stop = func() { p.stop(); p = nil }
	s.processes = func() ([]sysProc, error) {
		if p == nil {
			return nil, errNotRunning
		}
		return []sysProc{{Name: "redis-server", PID: p.cmd.Process.Pid}}, nil
	}
	return s
}

func natsSystem(key string, always bool, self, dir string) *system {
	s := &system{
		Key: key, Name: "NATS JetStream 2.15.2, R3 file",
		Durability: "stream leader and a quorum have it in the page cache; fsync every 2 min",
	}
	if always {
		s.Name += ", sync_interval always"
		s.Durability = "Raft WAL fsynced on a quorum before the ack"
	}
	var procs []*proc
	s.start = func(ctx context.Context) error {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		type ports struct{ client, cluster int }
		ps := make([]ports, 3)
		var routes []string
		for i := range ps {
			ps[i] = ports{freePort(), freePort()}
			routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ps[i].cluster))
		}
		var urls []string
		for i, p := range ps {
			name := fmt.Sprintf("n%d", i+1)
			sync := ""
			if always {
				sync = "  sync_interval: always\n"
			}
			conf := fmt.Sprintf("server_name: %s\nlisten: 127.0.0.1:%d\njetstream {\n  store_dir: %q\n  max_file_store: 20GB\n  max_memory_store: 1GB\n%s}\ncluster {\n  name: peers\n  listen: 127.0.0.1:%d\n  routes: [ %s ]\n}\n",
				name, p.client, filepath.Join(dir, name), sync, p.cluster, strings.Join(routes, ", "))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			cf := filepath.Join(dir, name+".conf")
			if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
				return err
			}
			pr, err := startProc(dir, name+".log", self, "nats-node", "--config="+cf)
			if err != nil {
				stopAll(procs)
				return err
			}
			procs = append(procs, pr)
			urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", p.client))
		}
		d := &natsDriver{url: strings.Join(urls, ",")}
		s.driver = d
		return d.setup(ctx)
	}
	s.stop = func() {
		if d, ok := s.driver.(*natsDriver); ok {
			d.close()
		}
		stopAll(procs)
		procs = nil
	}
	s.processes = func() ([]sysProc, error) {
		if len(procs) == 0 {
			return nil, errNotRunning
		}
		out := make([]sysProc, len(procs))
		for i, p := range procs {
			out[i] = sysProc{Name: fmt.Sprintf("n%d", i+1), PID: p.cmd.Process.Pid}
		}
		return out, nil
	}
	return s
}

// errNotRunning is a system's processes asked for before it started.
var errNotRunning = errors.New("not running")
