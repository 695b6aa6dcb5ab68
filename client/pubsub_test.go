package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
)

// streamServer is an httptest server that answers /sub in newline mode
// like pubsub: the "\r\n" preamble, then each message of msgs followed by
// "\n", one flush (one chunk) each, then hold until the client leaves or
// end is closed (nil: end the response at once, with the final chunk).
func streamServer(t *testing.T, msgs []string, end chan struct{}) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("content-type", "application/json")
		w.Header().Set(api.HeaderServedBy, "n1")
		w.WriteHeader(200)
		io.WriteString(w, "\r\n")
		w.(http.Flusher).Flush()
		for _, m := range msgs {
			io.WriteString(w, m+"\n")
			w.(http.Flusher).Flush()
		}
		if end == nil {
			return
		}
		select {
		case <-end:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func readAll(t *testing.T, s *Stream) ([]string, error) {
	t.Helper()
	var got []string
	for {
		m, err := s.Next()
		if err != nil {
			return got, err
		}
		got = append(got, string(m))
	}
}

// Test_Stream_Chunked: over HTTP/1.1 chunked encoding the preamble is
// skipped, messages are the lines between "\n" with a trailing "\r"
// kept, an empty message is delivered, and a stream the server ends is
// io.EOF.
func Test_Stream_Chunked(t *testing.T) {
	srv := streamServer(t, []string{"hello", "with\r", "", "a b", "\r"}, nil)
	s, err := Subscribe(ctxT(t), srv.URL+"/sub?multipart=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.ServedBy != "n1" {
		t.Fatalf("ServedBy %q", s.ServedBy)
	}
	got, err := readAll(t, s)
	if err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	want := []string{"hello", "with\r", "", "a b", "\r"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// rawServer accepts one connection at a time, hands the request head to
// check, writes reply byte for byte and closes the connection.
func rawServer(t *testing.T, reply string, check func(head string)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(c)
			var head strings.Builder
			for {
				line, err := br.ReadString('\n')
				head.WriteString(line)
				if err != nil || line == "\r\n" {
					break
				}
			}
			if check != nil {
				check(head.String())
			}
			io.WriteString(c, reply)
			c.Close()
		}
	}()
	return "http://" + ln.Addr().String()
}

// Test_Stream_HTTP10Raw: an HTTP/1.0 answer is a raw stream read until
// the connection closes (the reference's exact bytes, spec 3.3).
func Test_Stream_HTTP10Raw(t *testing.T) {
	heads := make(chan string, 1)
	addr := rawServer(t, "HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n\r\nhello\na\n", func(h string) { heads <- h })
	s, err := Subscribe(ctxT(t), addr+"/sub?multipart=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, s)
	if err != io.EOF || strings.Join(got, "|") != "hello|a" {
		t.Fatalf("got %q, %v", got, err)
	}
	if h := <-heads; !strings.HasPrefix(h, "GET /sub?multipart=0 HTTP/1.1\r\n") {
		t.Fatalf("request %q", h)
	}
}

// Test_Stream_ChunkedCut: the reference never sends the final chunk; a
// connection closed inside the chunked stream ends with an error other
// than io.EOF, after every complete message.
func Test_Stream_ChunkedCut(t *testing.T) {
	addr := rawServer(t, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"2\r\n\r\n\r\n6\r\nhello\n\r\n2\r\na\n\r\n4\r\npart", nil)
	s, err := Subscribe(ctxT(t), addr+"/sub?multipart=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, s)
	if strings.Join(got, "|") != "hello|a" || err == nil || err == io.EOF || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err2 := s.Next(); err2 == nil {
		t.Fatal("Next succeeded after the stream failed")
	}
}

// Test_Stream_LargeMessages: a message larger than the read buffer comes
// whole; one larger than MaxMessageSize fails the stream.
func Test_Stream_LargeMessages(t *testing.T) {
	big := strings.Repeat("x", 200<<10)
	srv := streamServer(t, []string{"small", big, "after"}, nil)
	s, err := Subscribe(ctxT(t), srv.URL+"/sub?multipart=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, s)
	if err != io.EOF || len(got) != 3 || got[1] != big || got[2] != "after" {
		t.Fatalf("got %d messages, %v", len(got), err)
	}
	s, err = Subscribe(ctxT(t), srv.URL+"/sub?multipart=0", &SubscribeOptions{MaxMessageSize: 100 << 10})
	if err != nil {
		t.Fatal(err)
	}
	got, err = readAll(t, s)
	if !errors.Is(err, ErrMessageTooLarge) || len(got) != 1 {
		t.Fatalf("got %d messages, %v", len(got), err)
	}
}

// Test_Stream_IdleTimeout: a stream with no byte for IdleTimeout fails with
// ErrIdleTimeout; bytes arriving in time keep it alive.
func Test_Stream_IdleTimeout(t *testing.T) {
	end := make(chan struct{})
	defer close(end)
	srv := streamServer(t, nil, end)
	s, err := Subscribe(ctxT(t), srv.URL+"/sub?multipart=0", &SubscribeOptions{IdleTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := s.Next(); !errors.Is(err, ErrIdleTimeout) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "\r\n")
		w.(http.Flusher).Flush()
		for i := range 6 {
			time.Sleep(100 * time.Millisecond)
			io.WriteString(w, "m"+string(rune('0'+i))+"\n")
			w.(http.Flusher).Flush()
		}
	}))
	defer slow.Close()
	s, err = Subscribe(ctxT(t), slow.URL+"/sub", &SubscribeOptions{IdleTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(t, s); err != io.EOF || len(got) != 6 {
		t.Fatalf("got %q, %v", got, err)
	}
}

// Test_Stream_Refusals: a non-200 answer is an *HTTPError with its kind, a
// multipart answer is ErrMultipart, a dead address is api.ErrUnavailable.
func Test_Stream_Refusals(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("multipart") == "0" {
			fail(w, 400, "INVALID_TOPIC_NAME", "invalid topic name")
			return
		}
		w.Header().Set("content-type", "multipart/x-mixed-replace; boundary=xXPubSubXx")
		io.WriteString(w, "--xXPubSubXx\r\n")
	}))
	defer srv.Close()
	_, err := Subscribe(ctxT(t), srv.URL+"/sub?multipart=0&topic=b@d", nil)
	var he *HTTPError
	if !errors.Is(err, api.ErrBadRequest) || !errors.As(err, &he) || he.Code != "INVALID_TOPIC_NAME" {
		t.Fatalf("400: %v", err)
	}
	if _, err := Subscribe(ctxT(t), srv.URL+"/sub", nil); !errors.Is(err, ErrMultipart) {
		t.Fatalf("multipart: %v", err)
	}
	if _, err := Subscribe(ctxT(t), deadAddr(t)+"/sub?multipart=0", nil); !errors.Is(err, api.ErrUnavailable) {
		t.Fatalf("dead: %v", err)
	}
}

// Test_Stream_CloseAndCancel: Close from another goroutine, or the end of
// the context, ends a Next that is waiting.
func Test_Stream_CloseAndCancel(t *testing.T) {
	end := make(chan struct{})
	defer close(end)
	srv := streamServer(t, nil, end)
	s, err := Subscribe(ctxT(t), srv.URL+"/sub?multipart=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(100*time.Millisecond, func() { s.Close() })
	if _, err := s.Next(); err == nil {
		t.Fatal("Next succeeded after Close")
	}

	ctx, cancel := context.WithCancel(ctxT(t))
	s, err = Subscribe(ctx, srv.URL+"/sub?multipart=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := s.Next(); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}
}

// Test_Pubsub_Pub: messages are joined with "\n" into one POST body with
// topic=, the subscriber count is read from the answer; a message with a
// newline is refused.
func Test_Pubsub_Pub(t *testing.T) {
	f := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 2 {
			io.WriteString(w, "something else\n")
			return
		}
		io.WriteString(w, "Published 3 messages to 4 clients.\n")
	})
	p, err := NewPubsub([]string{f.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Pub(ctxT(t), "clicks", [][]byte{[]byte("a"), {}, []byte("c\r")})
	if err != nil || c != 4 {
		t.Fatalf("pub: %d %v", c, err)
	}
	r := f.last(t)
	if r.method != "POST" || r.path != "/pub" || r.query.Get("topic") != "clicks" || !bytes.Equal(r.body, []byte("a\n\nc\r")) {
		t.Fatalf("got %s %s %v %q", r.method, r.path, r.query, r.body)
	}
	if _, err := p.Pub(ctxT(t), "", [][]byte{[]byte("x")}); err == nil {
		t.Fatal("an unexpected answer was accepted")
	}
	if _, err := p.Pub(ctxT(t), "", [][]byte{[]byte("a\nb")}); !errors.Is(err, api.ErrBadRequest) {
		t.Fatalf("newline: %v", err)
	}
	if _, err := p.Pub(ctxT(t), "", nil); !errors.Is(err, api.ErrBadRequest) {
		t.Fatalf("nothing: %v", err)
	}
}

// Test_Pubsub_SubscribeTopic_Failover: SubscribeTopic asks for the newline
// mode and the topic, and moves past a node that cannot be reached.
func Test_Pubsub_SubscribeTopic_Failover(t *testing.T) {
	uris := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uris <- r.URL.RequestURI()
		io.WriteString(w, "\r\nm1\n")
	}))
	defer srv.Close()
	p, err := NewPubsub([]string{deadAddr(t), srv.URL}, withOptions(func(o *Options) { o.Backoff = Backoff{Min: time.Millisecond, Max: time.Millisecond} }))
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.SubscribeTopic(ctxT(t), "clicks", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if m, err := s.Next(); err != nil || string(m) != "m1" {
		t.Fatalf("%q %v", m, err)
	}
	if u := <-uris; u != "/sub?multipart=0&topic=clicks" {
		t.Fatalf("uri %q", u)
	}
}
