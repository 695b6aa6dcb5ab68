// Command quorumq is the single binary of quorumq: `quorumq serve` runs a
// node; the other subcommands are tools around it. main only parses the
// subcommand and hands off.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/quorumq/quorumq/internal/cli"
)

// Environment prefixes of the subcommands' flags (--batch of gen:
// QUORUMQ_GEN_BATCH). Each subcommand has its own, so that a variable set
// for one (QUORUMQ_QUEUE_ADDR, serve's bind address) never reaches
// another; serve's is envPrefix, in serve.go.
const (
	envDevcluster = "QUORUMQ_DEVCLUSTER_"
	envPsToHTTP   = "QUORUMQ_PS_TO_HTTP_"
	envToHTTP     = "QUORUMQ_TO_HTTP_"
	envBackup     = "QUORUMQ_BACKUP_"
	envRestore    = "QUORUMQ_RESTORE_"
	envTop        = "QUORUMQ_TOP_"
	envTail       = "QUORUMQ_TAIL_"
	envGen        = "QUORUMQ_GEN_"
	envAnalyze    = "QUORUMQ_ANALYZE_"
	envBench      = "QUORUMQ_BENCH_"
	envStatus     = "QUORUMQ_STATUS_"
	envCerts      = "QUORUMQ_CERTS_"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `quorumq: a replicated message queue that speaks bitly's simplehttp API.

Usage: quorumq <command> [flags]

Commands:
  serve       run a node (queue port 8081, pubsub port 8080)
  devcluster  run N nodes on this machine as one cluster, for trying things out
  ps_to_http  forward a pubsub stream to HTTP destinations (e.g. a queue's /put)
  to_http     forward a queue to an HTTP endpoint, at least once (leases, retries, dead letters)
  backup      write a consistent snapshot of the queue state to a file
  restore     replace the cluster's queue state with a backup
  top         a refreshing view of the cluster's members and queues
  tail        print a queue's (or a topic's) messages as they come, consuming nothing
  gen         generate the tutorial's streams (count, random, usagov) into /pub, /put or /mput
  analyze     stream analytics readers (moments, histogram, graph) into Redis; show, reset
  bench       load generator: put, mput, get, mget, lease+ack, pubsub
  status      show a node's view of the cluster (members, leader, indexes)
  chaos       fault-injection test of real nodes (runs quorumq-chaos; see its --help)
  certs       make a development CA, node certificates, a gossip key and an admin token
  health      the container health check: is the node in this container ready
  version     print the version

Run "quorumq <command> --help" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serve(rest, stderr)
	case "devcluster":
		return runDevcluster(rest, stdout, stderr)
	case "ps_to_http":
		return runPsToHTTP(rest, stdout, stderr)
	case "to_http":
		return runToHTTP(rest, stderr)
	case "backup":
		return runBackup(rest, stdout, stderr)
	case "restore":
		return runRestore(rest, stdout, stderr)
	case "top":
		return runTop(rest, stdout, stderr)
	case "tail":
		return runTail(rest, stdout, stderr)
	case "gen":
		return runGen(rest, stdout, stderr)
	case "analyze":
		return runAnalyze(rest, stdout, stderr)
	case "bench":
		return runBench(rest, stdout, stderr)
	case "status":
		return runStatus(rest, stdout, stderr)
	case "certs":
		return runCerts(rest, stdout, stderr)
	case "chaos":
		return runChaos(rest, stdout, stderr)
	case "health":
		return runHealth(rest, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "quorumq %s\n", version)
		return 0
	case "help", "--help", "-h", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "quorumq: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

// parse parses args into fs, reading unset flags from the environment
// under prefix. ok false means the command is over with exit status code:
// 0 after --help, 2 after a bad flag (reported on stderr as "quorumq name:
// error").
func parse(fs *flag.FlagSet, args []string, stderr io.Writer, prefix string) (code int, ok bool) {
	if prefix != "" {
		usage := fs.Usage
		fs.Usage = func() {
			usage()
			fmt.Fprint(fs.Output(), envNote(fs, prefix))
		}
	}
	if err := cli.Parse(fs, args, stderr, prefix); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return fail(stderr, fs.Name(), err, 2), false
	}
	return 0, true
}

// envNote is the end of every --help: where else a flag's value can come
// from. fs names an example flag; nil leaves it out.
func envNote(fs *flag.FlagSet, prefix string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nEvery flag can also come from the environment (the command line wins):\n  %s<NAME>, the name upper-cased with dashes as underscores\n", prefix)
	example := ""
	if fs != nil {
		fs.VisitAll(func(f *flag.Flag) {
			if example == "" && f.Name != "token" && f.Name != "tls-ca" {
				example = f.Name
			}
		})
	}
	if example != "" {
		fmt.Fprintf(&b, "  (--%s: %s)\n", example, cli.EnvName(prefix, example))
	}
	if fs != nil && fs.Lookup("token") != nil {
		b.WriteString("--token and --tls-ca also fall back to QUORUMQ_TOKEN and QUORUMQ_TLS_CA.\n")
	}
	return b.String()
}

// kindsHelp is the --help of a command that takes a kind first (gen
// count): its usage text ends with "Flags:", which belong to each kind.
func kindsHelp(name string, kinds []string, usage, prefix string) string {
	return strings.TrimSuffix(usage, "Flags:\n") +
		fmt.Sprintf("Flags: each kind lists its own, \"quorumq %s %s --help\".\n", name, strings.Join(kinds, "|")) +
		envNote(nil, prefix)
}

// fail reports err of command name on one line of stderr and returns code.
func fail(stderr io.Writer, name string, err error, code int) int {
	fmt.Fprintf(stderr, "quorumq %s: %v\n", name, err)
	return code
}

// exitStatus reports err of command name on stderr and returns the exit
// status: 0 for no error, 2 for an error that wraps invalid (bad input),
// else 1.
func exitStatus(stderr io.Writer, name string, err, invalid error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, invalid):
		return fail(stderr, name, err, 2)
	}
	return fail(stderr, name, err, 1)
}

// pickKind splits off the kind a command takes first (gen count, certs
// dev). ok false means the command is over with exit status code: 0
// after --help (usage on stdout), 2 with no kind or an unknown one (usage
// on stderr).
func pickKind(name string, kinds []string, usage, prefix string, args []string, stdout, stderr io.Writer) (kind string, rest []string, code int, ok bool) {
	help := kindsHelp(name, kinds, usage, prefix)
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && cli.IsHelp(args[0]) {
			fmt.Fprint(stdout, help)
			return "", nil, 0, false
		}
		fmt.Fprint(stderr, help)
		return "", nil, 2, false
	}
	if !slices.Contains(kinds, args[0]) {
		fmt.Fprintf(stderr, "quorumq %s: unknown command %q: want %s\n\n%s", name, args[0], strings.Join(kinds, ", "), help)
		return "", nil, 2, false
	}
	return args[0], args[1:], 0, true
}
