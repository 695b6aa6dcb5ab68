package pubsub

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
)

// Test_Frame_Modes checks the bytes of one message in every mode against
// the reference's streams (transcript 3.5 and 3.9).
func Test_Frame_Modes(t *testing.T) {
	x70 := strings.Repeat("x", 70)
	tests := []struct {
		name string
		msg  string
		mode mode
		want string
	}{
		{"newline raw", "hello", modeNewline, "hello\n"},
		{"newline raw empty", "", modeNewline, "\n"},
		{"newline chunked", "hello", modeNewlineChunked, "6\r\nhello\n\r\n"},
		{"newline chunked empty", "", modeNewlineChunked, "1\r\n\n\r\n"},
		{"newline chunked keeps CR", "with\r", modeNewlineChunked, "6\r\nwith\r\n\r\n"},
		{"newline chunked hex size", x70, modeNewlineChunked, "47\r\n" + x70 + "\n\r\n"},
		{"multipart chunked", "hello", modeMultipartChunked,
			"3d\r\ncontent-type: */*\r\ncontent-length: 5\r\n\r\nhello\r\n--xXPubSubXx\r\n\r\n"},
		{"multipart chunked empty", "", modeMultipartChunked,
			"38\r\ncontent-type: */*\r\ncontent-length: 0\r\n\r\n\r\n--xXPubSubXx\r\n\r\n"},
		{"multipart chunked 70 bytes", x70, modeMultipartChunked,
			"7f\r\ncontent-type: */*\r\ncontent-length: 70\r\n\r\n" + x70 + "\r\n--xXPubSubXx\r\n\r\n"},
		{"multipart raw", "hello", modeMultipart,
			"content-type: */*\r\ncontent-length: 5\r\n\r\nhello\r\n--xXPubSubXx\r\n"},
		{"websocket", "hello", modeWebSocket, "hello"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := []byte(tc.msg)
			got := frame(msg, tc.mode)
			if string(got) != tc.want {
				t.Fatalf("frame(%q) = %q, want %q", tc.msg, got, tc.want)
			}
			if len(msg) > 0 && len(got) > 0 && &got[len(got)-1] == &msg[len(msg)-1] {
				t.Fatal("frame aliases the message")
			}
		})
	}
}

// Test_Frame_LargeChunkSize checks the chunk size line of a message whose
// size needs many hex digits (lowercase, no leading zeros).
func Test_Frame_LargeChunkSize(t *testing.T) {
	msg := make([]byte, 1<<20)
	got := frame(msg, modeNewlineChunked)
	if want := "100001\r\n"; !strings.HasPrefix(string(got), want) {
		t.Fatalf("size line %q, want %q", got[:10], want)
	}
	if len(got) != len("100001\r\n")+1<<20+1+2 {
		t.Fatalf("len %d", len(got))
	}
}

// Test_Frame_StreamStartAndHead checks what a subscriber gets before the
// first message, for each mode and protocol version.
func Test_Frame_StreamStartAndHead(t *testing.T) {
	now := time.Date(2026, 11, 26, 15, 35, 27, 0, time.UTC)
	tests := []struct {
		name      string
		proto     string
		multipart bool
		header    http.Header
		want      string
	}{
		{"newline 1.1", "HTTP/1.1", false, nil,
			"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nTransfer-Encoding: chunked\r\nDate: Thu, 26 Nov 2026 15:35:27 GMT\r\n\r\n" +
				"2\r\n\r\n\r\n"},
		{"multipart 1.1", "HTTP/1.1", true, nil,
			"HTTP/1.1 200 OK\r\ncontent-type: multipart/x-mixed-replace; boundary=xXPubSubXx\r\nTransfer-Encoding: chunked\r\nDate: Thu, 26 Nov 2026 15:35:27 GMT\r\n\r\n" +
				"e\r\n--xXPubSubXx\r\n\r\n"},
		{"newline 1.0", "HTTP/1.0", false, nil,
			"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n\r\n"},
		{"multipart 1.0", "HTTP/1.0", true, nil,
			"HTTP/1.0 200 OK\r\ncontent-type: multipart/x-mixed-replace; boundary=xXPubSubXx\r\n\r\n--xXPubSubXx\r\n"},
		{"connection close echoed", "HTTP/1.1", false, http.Header{"Connection": {"Close"}},
			"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nTransfer-Encoding: chunked\r\nDate: Thu, 26 Nov 2026 15:35:27 GMT\r\nConnection: close\r\n\r\n" +
				"2\r\n\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := http.NewRequest(http.MethodGet, "http://x/sub", nil)
			if err != nil {
				t.Fatal(err)
			}
			r.Proto = tc.proto
			r.ProtoMajor, r.ProtoMinor, _ = http.ParseHTTPVersion(tc.proto)
			if tc.header != nil {
				r.Header = tc.header
			}
			m := streamMode(tc.multipart, r.ProtoAtLeast(1, 1))
			got := string(responseHead(r, m, now)) + string(streamStart(m))
			if got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// Test_Frame_KickNotice checks the notice text of the reference (T3.10).
func Test_Frame_KickNotice(t *testing.T) {
	if got, want := string(kickNotice(52429350)), "ERROR_TOO_SLOW. kicked for having 52429350 pending bytes\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// Test_Topic_ValidName checks the topic name rule.
func Test_Topic_ValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"default": true, "a.b_c-D9": true, strings.Repeat("x", 64): true,
		"": false, strings.Repeat("x", 65): false, "a b": false, "a/b": false, "é": false,
	} {
		if got := api.ValidName(name); got != want {
			t.Errorf("api.ValidName(%q) = %v, want %v", name, got, want)
		}
	}
}

// Test_Frame_LenIsExact: frameLen is the length of the frame in every
// mode, across the sizes where the decimal and hex lengths change, so that
// a batch's buffer is allocated once and its budget is exact.
func Test_Frame_LenIsExact(t *testing.T) {
	for m := range numModes {
		for _, n := range []int{0, 1, 9, 10, 11, 14, 15, 16, 17, 99, 100, 200, 254, 255, 256, 257, 4095, 4096, 65535, 65536, 1 << 20} {
			if got, want := frameLen(n, m), len(frame(make([]byte, n), m)); got != want {
				t.Errorf("mode %d, %d bytes: frameLen %d, frame %d", m, n, got, want)
			}
		}
	}
}
