package httpapi

import (
	"net/http/httptest"
	"testing"
)

// Lean keeps on net/http what needs to see its client leave: pops and
// long-polls, in any spelling of their parameters.
func TestLean_PopsAndLongPollsStayOnNetHTTP(t *testing.T) {
	for _, tc := range []struct {
		target string
		want   bool
	}{
		{"/put?data=x", true},
		{"/mput", true},
		{"/stats", true},
		{"/ack?id=1", true},
		{"/get", false},
		{"/get?lease=30s", true},
		{"/get?LEASE=30s", true},
		{"/mget?items=10&lease=1m", true},
		{"/get?lease=0", false},
		{"/get?lease=abc", false},
		{"/get?lease=999999h", false},
		{"/get?lease=30s&wait=5s", false},
		{"/get?lease=30s&Wait=5s", false},
		{"/mget?items=10", false},
		{"/put?data=x&WAIT=1s", false},
		{"/get?foo&lease=30s", false}, // the libevent rule: parsing stops at foo
	} {
		r := httptest.NewRequest("GET", tc.target, nil)
		if got := Lean(r); got != tc.want {
			t.Errorf("Lean(%s) = %v, want %v", tc.target, got, tc.want)
		}
	}
}
