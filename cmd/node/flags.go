package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// envPrefix is prepended to a flag's name, upper-cased with dashes as
// underscores, to find its environment variable (--max-depth: QUORUMQ_MAX_DEPTH).
const envPrefix = "QUORUMQ_"

// parseFlags parses args into fs the way simplehttp's daemons read options
// (names are case-insensitive and "_" equals "-"), accepting both
// --name=value and --name value, then fills every flag not given on the
// command line from its QUORUMQ_* environment variable.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(normalizeArgs(args)); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := envPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %v", env, v, e)
			}
		}
	})
	return err
}

func normalizeArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if strings.HasPrefix(a, "-") {
			name, value, hasValue := strings.Cut(a, "=")
			name = strings.ReplaceAll(strings.ToLower(name), "_", "-")
			if hasValue {
				a = name + "=" + value
			} else {
				a = name
			}
		}
		out = append(out, a)
	}
	return out
}
