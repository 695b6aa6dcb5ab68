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
// than confirming an answer no one reads. Everything else is answered the
// same by either server.
func Lean(r *http.Request) bool {
	path := r.URL.Path
	if strings.HasPrefix(path, "/get") || strings.HasPrefix(path, "/mget") {
		return false
	}
	return !strings.Contains(r.URL.RawQuery, "wait=")
}
