package httpapi

import (
	"net/http"
	"strings"
)

// Lean reports whether a request of the queue port may be served by a
// server without net/http's background read (internal/leanhttp), whose
// request context does not end when the client goes away. Two kinds of
// request need that end: a long-poll (wait=), which would otherwise hold
// its goroutine for a client long gone, and a pop (/get, /mget), which
// gives its messages back when its client left before the answer rather
// than confirming an answer no one reads. A get with lease=DUR is no pop:
// what its client never reads comes back when the lease ends, as it would
// had the client read it and died. Everything else is answered the same by
// either server.
func Lean(r *http.Request) bool {
	raw := r.URL.RawQuery
	// Names match in any case (params.get); ToLower copies only a query
	// that has upper case.
	if strings.Contains(strings.ToLower(raw), "wait=") {
		return false
	}
	path := r.URL.Path
	if strings.HasPrefix(path, "/get") || strings.HasPrefix(path, "/mget") {
		lease, ok, err := parseQuery(raw).duration("lease", MaxLease)
		return ok && err == nil && lease > 0
	}
	return true
}
