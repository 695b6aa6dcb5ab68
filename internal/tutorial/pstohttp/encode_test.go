package pstohttp

import (
	"fmt"
	"strings"
	"testing"
)

// Test_Escape_ReferenceRule: the %s encoding is ps_to_http's: the spec's
// and transcript's examples, and every byte value classified exactly.
func Test_Escape_ReferenceRule(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a":"b c"}`, `%7B%22a%22:%22b%20c%22%7D`},
		{"msg one", "msg%20one"},
		{"hello world", "hello%20world"},
		{"a+b&c=d%20e", "a%2Bb%26c=d%2520e"},
		{`{"k": "v"}`, `%7B%22k%22:%20%22v%22%7D`},
		{"café", "caf%C3%A9"},
		{"line1", "line1"},
		{"with\r", "with%0D"},
		{"#;<>?[\\]^`{|}", "%23%3B%3C%3E%3F%5B%5C%5D%5E%60%7B%7C%7D"},
		{"AZaz09!$'()*,-./:=@_~", "AZaz09!$'()*,-./:=@_~"},
		{"", ""},
	} {
		if got := escape([]byte(tc.in)); got != tc.want {
			t.Errorf("escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	const kept = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!$'()*,-./:=@_~"
	for c := 0; c < 256; c++ {
		want := fmt.Sprintf("%%%02X", c)
		if strings.IndexByte(kept, byte(c)) >= 0 {
			want = string(rune(c))
		}
		if got := escape([]byte{byte(c)}); got != want {
			t.Errorf("byte 0x%02x: %q, want %q", c, got, want)
		}
	}
}
