package cli

import (
	"flag"
	"fmt"
	"os"
)

// Shared variables: one token and one CA file for every quorumq tool that
// talks to a cluster, so that an operator sets them once rather than per
// tool (QUORUMQ_GEN_TOKEN, QUORUMQ_BENCH_TOKEN, ...). serve reads
// QUORUMQ_TLS_CA as its own --tls-ca (its prefix is QUORUMQ_): the same
// file, the cluster CA, with the same meaning; serve has no --token.
const (
	EnvToken = "QUORUMQ_TOKEN"
	EnvTLSCA = "QUORUMQ_TLS_CA"
)

// sharedEnv maps the flags that have a shared variable to it.
var sharedEnv = map[string]string{"token": EnvToken, "tls-ca": EnvTLSCA}

// SharedEnv returns the shared variable of flag name ("" for none).
func SharedEnv(name string) string { return sharedEnv[name] }

// ApplySharedEnv sets every flag of fs that has a shared variable (--token:
// QUORUMQ_TOKEN, --tls-ca: QUORUMQ_TLS_CA) and was set neither on the
// command line nor from the program's own variable, from the shared
// variable. Parse calls it after the program's own variables; a program
// that parses with the flag package calls it after fs.Parse.
func ApplySharedEnv(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, env := range sharedEnv {
		if set[name] || fs.Lookup(name) == nil {
			continue
		}
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			// The value is not shown: it may be the token.
			return fmt.Errorf("%s: %v", env, err)
		}
	}
	return nil
}
