package leanhttp

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// handler answers in the ways the queue port's engine does, chosen by
// path, so that the same requests can be sent to net/http and to leanhttp.
func handler(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello\n") })
	mux.HandleFunc("/typed", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=ISO-8859-1")
		w.Header().Set("X-Message-Id", "42")
		io.WriteString(w, "<b>x</b>")
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-Message-Id", "7") })
	mux.HandleFunc("/large", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		for i := range 300 {
			fmt.Fprintf(w, "line %04d of a long dump\n", i)
		}
	})
	mux.HandleFunc("/sized", func(w http.ResponseWriter, r *http.Request) {
		body := strings.Repeat("z", 5000)
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		io.WriteString(w, body)
	})
	mux.HandleFunc("/flushed", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		http.NewResponseController(w).Flush()
		io.WriteString(w, "second\n")
	})
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/error", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "no leader: retry", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/multi", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("X-B", "2")
		w.Header().Add("X-A", "1")
		w.Header().Add("X-A", "one\r\nmore")
		w.WriteHeader(http.StatusTeapot)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%s %s host=%s ua=%q len=%d body=%q q=%q\n", r.Method, r.URL.Path, r.Host, r.UserAgent(), r.ContentLength, b, r.URL.Query().Get("data"))
	})
	mux.HandleFunc("/unread", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ignored the body") })
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	return mux
}

// startPair serves h with net/http and with leanhttp (its fallback a
// second net/http server) and returns both addresses.
func startPair(t *testing.T, h http.Handler, lean func(*http.Request) bool) (std, fast string, s *Server) {
	t.Helper()
	stdLn := mustListen(t)
	stdSrv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go stdSrv.Serve(stdLn)
	t.Cleanup(func() { stdSrv.Close() })

	ln := mustListen(t)
	s, err := New(h, &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}, Options{
		HeaderTimeout: 5 * time.Second, IdleTimeout: 10 * time.Second, Lean: lean,
	})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return stdLn.Addr().String(), ln.Addr().String(), s
}

func mustListen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

var dateLine = regexp.MustCompile(`(?m)^Date: [^\r]*\r\n`)

// exchange sends raw on a new connection and returns, with the Date
// header's value blanked, the raw answers to the first n requests, and
// whether the server then closed the connection.
func exchange(t *testing.T, addr, raw string, n int) (answers string, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &got))
	methods := requestMethods(raw)
	for i := range n {
		req := &http.Request{Method: methods[i]}
		res, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("answer %d: %v (read so far %q)", i+1, err, got.String())
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	// What the reader buffered past the answers is the server's too.
	rest, _ := br.Peek(br.Buffered())
	out := got.String()[:got.Len()-len(rest)]
	// Open or closed: one more request is answered, or meets the end of
	// the connection.
	if _, err := io.WriteString(c, "GET /small HTTP/1.1\r\nHost: q\r\n\r\n"); err != nil {
		return dateLine.ReplaceAllString(out, "Date: -\r\n"), true
	}
	res, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err == nil {
		res.Body.Close()
	}
	closed = err != nil
	return dateLine.ReplaceAllString(out, "Date: -\r\n"), closed
}

// requestMethods lists the methods of the requests in raw, in order.
func requestMethods(raw string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^(GET|POST|HEAD|PUT) /`).FindAllStringSubmatch(raw, -1) {
		out = append(out, m[1])
	}
	return append(out, "GET", "GET")
}

func TestServer_AnswersAsNetHTTPDoes(t *testing.T) {
	std, fast, _ := startPair(t, handler(t), nil)
	const host = "Host: q\r\n"
	for _, tc := range []struct {
		name string
		raw  string
		n    int // answers expected
	}{
		{"small body, sniffed type", "GET /small HTTP/1.1\r\n" + host + "\r\n", 1},
		{"typed body and header", "GET /typed HTTP/1.1\r\n" + host + "\r\n", 1},
		{"empty body", "POST /empty HTTP/1.1\r\n" + host + "Content-Length: 0\r\n\r\n", 1},
		{"large body chunked", "GET /large HTTP/1.1\r\n" + host + "\r\n", 1},
		{"handler's Content-Length", "GET /sized HTTP/1.1\r\n" + host + "\r\n", 1},
		{"flushed early", "GET /flushed HTTP/1.1\r\n" + host + "\r\n", 1},
		{"204", "GET /nocontent HTTP/1.1\r\n" + host + "\r\n", 1},
		{"http.Error", "GET /error HTTP/1.1\r\n" + host + "\r\n", 1},
		{"sorted, repeated and cleaned headers", "GET /multi HTTP/1.1\r\n" + host + "\r\n", 1},
		{"404", "GET /nothing HTTP/1.1\r\n" + host + "\r\n", 1},
		{"HEAD", "HEAD /small HTTP/1.1\r\n" + host + "\r\n", 1},
		{"HEAD of a large body", "HEAD /large HTTP/1.1\r\n" + host + "\r\n", 1},
		{"body and query", "POST /echo?data=a%20b HTTP/1.1\r\n" + host + "User-Agent: curl/8\r\nContent-Length: 5\r\n\r\nhello", 1},
		{"lower-case names", "POST /echo HTTP/1.1\r\nhost: q\r\nuser-agent: x\r\ncontent-length: 2\r\n\r\nhi", 1},
		{"body left unread", "POST /unread HTTP/1.1\r\n" + host + "Content-Length: 3\r\n\r\nabcGET /small HTTP/1.1\r\n" + host + "\r\n", 2},
		{"client asks to close", "GET /small HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n", 1},
		{"handler closes", "GET /close HTTP/1.1\r\n" + host + "\r\n", 1},
		{"pipelined, in order", "GET /small HTTP/1.1\r\n" + host + "\r\nPOST /echo HTTP/1.1\r\n" + host + "Content-Length: 1\r\n\r\nxGET /typed HTTP/1.1\r\n" + host + "\r\n", 3},
		// Handed over to net/http, which answers them itself.
		{"chunked request body", "POST /echo HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 1},
		{"expect 100-continue", "POST /echo HTTP/1.1\r\n" + host + "Expect: 100-continue\r\nContent-Length: 2\r\n\r\nok", 1},
		{"HTTP/1.0", "GET /small HTTP/1.0\r\n\r\n", 1},
		{"no Host", "GET /small HTTP/1.1\r\n\r\n", 1},
		{"bad request line", "GET /small\r\n" + host + "\r\n", 1},
		{"bad header name", "GET /small HTTP/1.1\r\n" + host + "Bad Name: x\r\n\r\n", 1},
		{"two Content-Lengths", "POST /echo HTTP/1.1\r\n" + host + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", 1},
		{"handed over after a lean request", "GET /small HTTP/1.1\r\n" + host + "\r\nPOST /echo HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, wantClosed := exchange(t, std, tc.raw, tc.n)
			got, gotClosed := exchange(t, fast, tc.raw, tc.n)
			if got != want {
				t.Errorf("leanhttp answered\n%q\nnet/http\n%q", got, want)
			}
			if gotClosed != wantClosed {
				t.Errorf("connection closed after the answers: leanhttp %v, net/http %v", gotClosed, wantClosed)
			}
		})
	}
}

func TestServer_LeanRefused_HandedOverWithTheRequest(t *testing.T) {
	var refused atomic.Int32
	_, fast, _ := startPair(t, handler(t), func(r *http.Request) bool {
		if r.URL.Query().Has("wait") {
			refused.Add(1)
			return false
		}
		return true
	})
	raw := "POST /echo?data=x HTTP/1.1\r\nHost: q\r\nContent-Length: 2\r\n\r\nabPOST /echo?wait=1s HTTP/1.1\r\nHost: q\r\nContent-Length: 2\r\n\r\ncd"
	got, _ := exchange(t, fast, raw, 2)
	for _, want := range []string{`body="ab"`, `body="cd"`} {
		if !strings.Contains(got, want) {
			t.Errorf("answers %q lack %s", got, want)
		}
	}
	if refused.Load() != 1 {
		t.Errorf("the predicate refused %d requests, want 1", refused.Load())
	}
}

func TestServer_ContextEndsWithTheRequest(t *testing.T) {
	ended := make(chan struct{})
	var once sync.Once
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		context.AfterFunc(r.Context(), func() { once.Do(func() { close(ended) }) })
	})
	_, fast, _ := startPair(t, h, nil)
	exchange(t, fast, "GET / HTTP/1.1\r\nHost: q\r\n\r\n", 1)
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the request's context did not end after its answer")
	}
}

func TestServer_IdleConnectionClosedAfterIdleTimeout(t *testing.T) {
	ln := mustListen(t)
	h := handler(t)
	s, err := New(h, &http.Server{Handler: h}, Options{HeaderTimeout: time.Second, IdleTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read on an idle connection: %v, want EOF once the idle timeout closed it", err)
	}
}

func TestServer_Shutdown_FinishesTheRequestThenCloses(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "done")
	})
	ln := mustListen(t)
	s, err := New(h, &http.Server{Handler: h}, Options{HeaderTimeout: time.Second, IdleTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	answer := make(chan string, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			answer <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		answer <- fmt.Sprintf("%s close=%v", b, res.Close)
	}()
	<-started
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	// The idle connection is closed at once; the busy one is not.
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection during shutdown: %v, want EOF", err)
	}
	close(release)
	if got := <-answer; got != "done close=true" {
		t.Fatalf("the request in flight was answered %q, want \"done close=true\"", got)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; err != ErrServerClosed {
		t.Fatalf("Serve returned %v, want ErrServerClosed", err)
	}
}

func TestNew_InvalidOptions_Refused(t *testing.T) {
	for _, o := range []Options{
		{IdleTimeout: time.Second},
		{HeaderTimeout: time.Second},
		{HeaderTimeout: time.Second, IdleTimeout: time.Second, MaxHeaderBytes: -1},
	} {
		if _, err := New(http.NotFoundHandler(), &http.Server{}, o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}
