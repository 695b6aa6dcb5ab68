package compose

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// testVersion is stamped into the test binary with the same -X flag the
// Dockerfile uses, so a renamed version variable fails here.
const testVersion = "compose-check"

var tmpDir string // removed by TestMain

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "quorumq-compose-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	tmpDir = dir
	return m.Run()
}

// repoRoot is the module root: this package lives in deploy/compose.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.Contains(string(mod), "module github.com/quorumq/quorumq") {
		t.Fatalf("%s is not the quorumq module root (go.mod: %v)", root, err)
	}
	return root
}

func readRepoFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return string(b)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// quorumqBinary builds ./cmd/node once per test run, stamped with the
// version flag the Dockerfile uses. It is not built static or trimmed like
// the image's, so it shares the build cache with the other tests.
func quorumqBinary(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	buildOnce.Do(func() {
		binPath = filepath.Join(tmpDir, "quorumq")
		cmd := exec.Command("go", "build", "-ldflags", "-X main.version="+testVersion, "-o", binPath, "./cmd/node")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/node: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// flagInfo is one flag of `quorumq serve --help`.
type flagInfo struct {
	Type    string // the type word flag.PrintDefaults shows: int, uint, duration, string, ...; "" for a bool
	Default string // "" when the help shows none (the zero value)
}

var (
	helpOnce  sync.Once
	helpFlags map[string]flagInfo
	helpErr   error
)

// serveFlags runs the freshly built `quorumq serve --help` and parses the
// flags it prints: the flags that exist now, with their real defaults.
func serveFlags(t *testing.T) map[string]flagInfo {
	t.Helper()
	bin := quorumqBinary(t)
	helpOnce.Do(func() {
		cmd := exec.Command(bin, "serve", "--help")
		cmd.Env = cleanEnv()
		out, err := cmd.CombinedOutput()
		if err != nil {
			helpErr = fmt.Errorf("quorumq serve --help: %v\n%s", err, out)
			return
		}
		helpFlags = parseFlagHelp(string(out))
		if len(helpFlags) == 0 {
			helpErr = fmt.Errorf("quorumq serve --help printed no flags:\n%s", out)
		}
	})
	if helpErr != nil {
		t.Fatal(helpErr)
	}
	return helpFlags
}

// cleanEnv is the environment without QUORUMQ_* variables, so that the
// developer's own settings do not change the defaults the help prints.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix) {
			env = append(env, kv)
		}
	}
	return env
}

var (
	helpNameRE    = regexp.MustCompile(`^  -([A-Za-z0-9][A-Za-z0-9_.-]*)(?: ([a-z0-9]+))?(?:\t|$)`)
	helpDefaultRE = regexp.MustCompile(`\(default (.*)\)\s*$`)
)

// parseFlagHelp reads flag.FlagSet.PrintDefaults output: a line of two
// spaces, "-name" and the type word, then usage lines indented by four
// spaces and a tab, the last one ending in "(default value)" unless the
// default is the zero value.
func parseFlagHelp(out string) map[string]flagInfo {
	flags := map[string]flagInfo{}
	current := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := helpNameRE.FindStringSubmatch(line); m != nil {
			current = m[1]
			flags[current] = flagInfo{Type: m[2]}
		}
		if current == "" {
			continue
		}
		if m := helpDefaultRE.FindStringSubmatch(line); m != nil {
			def := m[1]
			if u, err := strconv.Unquote(def); err == nil {
				def = u
			}
			fi := flags[current]
			fi.Default = def
			flags[current] = fi
		}
	}
	return flags
}

const envPrefix = "QUORUMQ_"

// envName is the environment variable of a serve flag (cmd/node/flags.go).
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// checkFlagValue reports whether v is a valid value for a flag of the type
// the help shows.
func checkFlagValue(fi flagInfo, v string) error {
	var err error
	switch fi.Type {
	case "":
		_, err = strconv.ParseBool(v)
	case "int":
		_, err = strconv.ParseInt(v, 0, 64)
	case "uint":
		_, err = strconv.ParseUint(v, 0, 64)
	case "float":
		_, err = strconv.ParseFloat(v, 64)
	case "duration":
		_, err = time.ParseDuration(v)
	}
	return err
}

// loadProject loads docker-compose.yml with compose-go, schema validation
// and consistency checks on, with the given profiles ("*": all). The
// environment is empty, so the file's own ${VAR:-default}s apply whatever
// the developer's shell holds.
func loadProject(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	root := repoRoot(t)
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root),
		cli.WithProfiles(profiles),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := opts.LoadProject(ctx)
	if err != nil {
		t.Fatalf("docker-compose.yml (profiles %q) does not load: %v", profiles, err)
	}
	return p
}

// allProfiles loads the project with every profile enabled.
func allProfiles(t *testing.T) *types.Project { return loadProject(t, "*") }

// sortedServices returns the services of p by name.
func sortedServices(p *types.Project) []types.ServiceConfig {
	var out []types.ServiceConfig
	for _, s := range p.Services {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b types.ServiceConfig) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// isQuorumq reports whether s runs the image built from deploy/Dockerfile.
func isQuorumq(s types.ServiceConfig) bool {
	if s.Build != nil && strings.HasSuffix(filepath.ToSlash(s.Build.Dockerfile), "deploy/Dockerfile") {
		return true
	}
	repo := s.Image
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return path.Base(repo) == "quorumq"
}

// subcommand is the quorumq subcommand s runs: the image's CMD is serve.
func subcommand(s types.ServiceConfig) string {
	if len(s.Command) == 0 {
		return "serve"
	}
	return s.Command[0]
}

func isNode(s types.ServiceConfig) bool { return isQuorumq(s) && subcommand(s) == "serve" }

// node is a node service with the serve flags it effectively runs with:
// the help's defaults, then the image's ENV, then the service's
// environment, then its command line.
type node struct {
	svc   types.ServiceConfig
	flags map[string]string
}

func (n node) port(t *testing.T, flag string) int {
	t.Helper()
	p, err := portOf(n.flags[flag])
	if err != nil {
		t.Fatalf("%s: --%s=%q: %v", n.svc.Name, flag, n.flags[flag], err)
	}
	return p
}

func portOf(hostport string) (int, error) {
	_, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 {
		return 0, fmt.Errorf("bad port %q", port)
	}
	return p, nil
}

// nodes returns the node services of p with their effective flags; a
// QUORUMQ_* variable or a command-line flag that serve does not have fails
// the test.
func nodes(t *testing.T, p *types.Project) []node {
	t.Helper()
	flags := serveFlags(t)
	byEnv := map[string]string{}
	for name := range flags {
		byEnv[envName(name)] = name
	}
	imageEnv := dockerfileEnv(t)
	var out []node
	for _, s := range sortedServices(p) {
		if !isNode(s) {
			continue
		}
		eff := map[string]string{}
		for name, fi := range flags {
			eff[name] = fi.Default
		}
		set := func(origin, flag, v string) {
			fi, ok := flags[flag]
			if !ok {
				t.Errorf("%s: %s names no `quorumq serve` flag", s.Name, origin)
				return
			}
			if err := checkFlagValue(fi, v); err != nil {
				t.Errorf("%s: %s=%q is not a valid %s: %v", s.Name, origin, v, fi.Type, err)
			}
			eff[flag] = v
		}
		for _, k := range sortedKeys(imageEnv) {
			if strings.HasPrefix(k, envPrefix) {
				set("image ENV "+k, byEnv[k], imageEnv[k])
			}
		}
		for _, k := range sortedKeys(s.Environment) {
			if !strings.HasPrefix(k, envPrefix) {
				continue
			}
			v := s.Environment[k]
			if v == nil {
				t.Errorf("%s: environment %s has no value", s.Name, k)
				continue
			}
			flag, ok := byEnv[k]
			if !ok {
				t.Errorf("%s: environment %s names no `quorumq serve` flag (serve --help has no --%s)",
					s.Name, k, strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(k, envPrefix)), "_", "-"))
				continue
			}
			set("environment "+k, flag, *v)
		}
		if len(s.Command) > 1 {
			args := s.Command[1:]
			for i := 0; i < len(args); i++ {
				a := args[i]
				if !strings.HasPrefix(a, "-") {
					t.Errorf("%s: unexpected serve argument %q", s.Name, a)
					continue
				}
				name, v, hasV := strings.Cut(strings.TrimLeft(a, "-"), "=")
				name = strings.ReplaceAll(strings.ToLower(name), "_", "-")
				if !hasV && flags[name].Type != "" && i+1 < len(args) {
					i++
					v = args[i]
				} else if !hasV {
					v = "true"
				}
				set("argument "+a, name, v)
			}
		}
		out = append(out, node{svc: s, flags: eff})
	}
	if len(out) == 0 {
		t.Fatal("docker-compose.yml defines no node service (image from deploy/Dockerfile running serve)")
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// names maps every name a service answers to on its networks (service
// name, hostname, aliases, fixed IPs) to the service.
func names(p *types.Project) map[string]string {
	m := map[string]string{}
	for _, s := range p.Services {
		m[s.Name] = s.Name
		if s.Hostname != "" {
			m[s.Hostname] = s.Name
		}
		if s.ContainerName != "" {
			m[s.ContainerName] = s.Name
		}
		for _, nc := range s.Networks {
			if nc == nil {
				continue
			}
			for _, a := range nc.Aliases {
				m[a] = s.Name
			}
			if nc.Ipv4Address != "" {
				m[nc.Ipv4Address] = s.Name
			}
		}
	}
	return m
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case
	Args string
	Line int
}

type stage struct {
	From string
	Name string
	Ins  []instruction
}

// parseDockerfile splits a Dockerfile into stages of instructions. It
// handles comments and backslash continuations, which is all the
// Dockerfile in this repository uses.
func parseDockerfile(text string) []stage {
	var stages []stage
	var buf strings.Builder
	start := 0
	flush := func() {
		s := strings.TrimSpace(buf.String())
		buf.Reset()
		if s == "" {
			return
		}
		cmd, args, _ := strings.Cut(s, " ")
		in := instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start}
		if in.Cmd == "FROM" {
			f := strings.Fields(in.Args)
			st := stage{}
			for i := 0; i < len(f); i++ {
				switch {
				case strings.HasPrefix(f[i], "--"):
				case strings.EqualFold(f[i], "AS") && i+1 < len(f):
					st.Name = f[i+1]
					i++
				case st.From == "":
					st.From = f[i]
				}
			}
			stages = append(stages, st)
		}
		if len(stages) > 0 {
			stages[len(stages)-1].Ins = append(stages[len(stages)-1].Ins, in)
		}
	}
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if buf.Len() == 0 {
			if trimmed == "" {
				continue
			}
			start = i + 1
		}
		if strings.HasSuffix(trimmed, `\`) {
			buf.WriteString(strings.TrimSuffix(trimmed, `\`))
			buf.WriteString(" ")
			continue
		}
		buf.WriteString(trimmed)
		flush()
	}
	flush()
	return stages
}

func dockerfileStages(t *testing.T) []stage {
	t.Helper()
	st := parseDockerfile(readRepoFile(t, "deploy/Dockerfile"))
	if len(st) == 0 {
		t.Fatal("deploy/Dockerfile has no FROM")
	}
	return st
}

// dockerfileEnv is the ENV of the final stage of deploy/Dockerfile.
func dockerfileEnv(t *testing.T) map[string]string {
	t.Helper()
	st := dockerfileStages(t)
	env := map[string]string{}
	for _, in := range st[len(st)-1].Ins {
		if in.Cmd != "ENV" {
			continue
		}
		f := strings.Fields(in.Args)
		if len(f) > 0 && !strings.Contains(f[0], "=") {
			env[f[0]] = unquote(strings.TrimSpace(strings.TrimPrefix(in.Args, f[0])))
			continue
		}
		for _, kv := range f {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = unquote(v)
		}
	}
	return env
}

func unquote(s string) string {
	if u, err := strconv.Unquote(s); err == nil {
		return u
	}
	return s
}

// execForm parses a JSON exec-form argument (["a","b"]).
func execForm(args string) ([]string, error) {
	var out []string
	err := json.Unmarshal([]byte(args), &out)
	return out, err
}

func runCmd(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// argPairs returns the values that follow flag in args, as "--flag value"
// or "--flag=value".
func argPairs(args []string, flag string) []string {
	var out []string
	for i, a := range args {
		switch {
		case a == flag && i+1 < len(args):
			out = append(out, args[i+1])
		case strings.HasPrefix(a, flag+"="):
			out = append(out, strings.TrimPrefix(a, flag+"="))
		}
	}
	return out
}
