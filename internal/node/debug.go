package node

import (
	"net/http"
	"net/http/pprof"
)

// debugHandler serves Go's profiler: /debug/pprof/ (index, heap, goroutine,
// allocs, block, mutex, ...), /debug/pprof/profile (CPU, ?seconds=N) and
// /debug/pprof/trace. It is mounted only on --debug-addr, never on the
// queue or pubsub ports.
func debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
