// Package cli is the command-line machinery every quorumq program shares:
// simplehttp-style flag parsing with each unset flag filled from its
// environment variable, and the logger flags.
package cli

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Parse parses args into fs the way simplehttp's daemons read options
// (names are case-insensitive and "_" equals "-"), accepting both
// --name=value and --name value, then fills every flag not given on the
// command line from the environment variable envPrefix + its name,
// upper-cased with dashes as underscores (--max-depth with prefix
// "QUORUMQ_": QUORUMQ_MAX_DEPTH), and last the flags that have a shared
// variable (--token, --tls-ca) from it (see ApplySharedEnv). An empty
// envPrefix reads no environment. Stray arguments are an error.
func Parse(fs *flag.FlagSet, args []string, stderr io.Writer, envPrefix string) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(normalizeArgs(args)); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if envPrefix == "" {
		return nil
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := EnvName(envPrefix, f.Name)
		if v, ok := os.LookupEnv(env); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %v", env, shownValue(f.Name, v), e)
			}
		}
	})
	if err != nil {
		return err
	}
	return ApplySharedEnv(fs)
}

// shownValue is v as an error message may show it: never a token.
func shownValue(name, v string) string {
	if name == "token" {
		return "REDACTED"
	}
	return v
}

// EnvName is the environment variable that sets flag name under prefix.
func EnvName(prefix, name string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
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

// Given reports whether flag name was set on the command line or from the
// environment.
func Given(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// IsHelp reports whether a is a request for help.
func IsHelp(a string) bool {
	switch a {
	case "-h", "-help", "--help":
		return true
	}
	return false
}

// CommaList splits a comma-separated flag value, dropping empty items.
func CommaList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// LogFlags are the --log-level and --log-format flags.
type LogFlags struct {
	Level  string
	Format string
}

// Register adds the flags to fs, with the defaults info and text.
func (l *LogFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&l.Level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&l.Format, "log-format", "text", "text or json")
}

// Logger returns the logger the flags ask for, writing to w.
func (l LogFlags) Logger(w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.Level)); err != nil {
		return nil, fmt.Errorf("--log-level=%q: %v", l.Level, err)
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: oneLineAttr}
	switch l.Format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format=%q: want text or json", l.Format)
}

// oneLineAttr keeps every record on one line of text: a value with line
// breaks (hashicorp's multierror: "1 error occurred:\n\t* failed to
// join ...\n\n") would otherwise show as a blob of escapes.
func oneLineAttr(_ []string, a slog.Attr) slog.Attr {
	var s string
	switch v := a.Value.Resolve(); {
	case v.Kind() == slog.KindString:
		s = v.String()
	case v.Kind() == slog.KindAny:
		err, ok := v.Any().(error)
		if !ok {
			return a
		}
		s = err.Error()
	default:
		return a
	}
	if !strings.ContainsAny(s, "\r\n") {
		return a
	}
	return slog.String(a.Key, oneLine(s))
}

// oneLine joins the lines of s with "; ", leaving out blank lines,
// list bullets and multierror's "N errors occurred:" headers.
func oneLine(s string) string {
	var parts []string
	for _, line := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		line = strings.TrimSpace(line)
		line = strings.TrimSpace(strings.TrimPrefix(line, "* "))
		if line == "" || isErrorCount(line) {
			continue
		}
		parts = append(parts, line)
	}
	return strings.Join(parts, "; ")
}

// isErrorCount reports a multierror header such as "2 errors occurred:".
func isErrorCount(line string) bool {
	n, rest, ok := strings.Cut(line, " ")
	if !ok || strings.Trim(n, "0123456789") != "" {
		return false
	}
	return rest == "error occurred:" || rest == "errors occurred:"
}
