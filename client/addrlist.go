package client

import "strings"

// AddrList is a command-line flag (flag.Value) for the node addresses a
// client is made with: repeatable, and each value may be a comma-separated
// list, so --queue-url=a --queue-url=b and --queue-url=a,b are the same.
// The addresses are checked when the client is made.
type AddrList []string

func (l *AddrList) String() string { return strings.Join(*l, ",") }

// Set appends the addresses in s, skipping empty ones.
func (l *AddrList) Set(s string) error {
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			*l = append(*l, a)
		}
	}
	return nil
}

// Or returns the addresses, or def when none were given.
func (l AddrList) Or(def ...string) []string {
	if len(l) == 0 {
		return def
	}
	return l
}
