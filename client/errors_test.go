package client

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/quorumq/quorumq/api"
)

// Test_Errors_Mapping: X-Error-Code decides the error kind first, the
// status code when the token is absent or unknown; every HTTPError keeps
// status, token and the first line of the body.
func Test_Errors_Mapping(t *testing.T) {
	all := []error{api.ErrBadRequest, api.ErrNotInFlight, api.ErrTooLarge, api.ErrQueueFull, api.ErrUnavailable, api.ErrNoLeader, api.ErrNotLeader, api.ErrOutcomeUnknown}
	tests := []struct {
		name   string
		status int
		token  string
		want   []error
		retry  bool
	}{
		{name: "not in flight", status: 409, token: "NOT_IN_FLIGHT", want: []error{api.ErrNotInFlight}},
		{name: "queue full", status: 507, token: "QUEUE_FULL", want: []error{api.ErrQueueFull}},
		{name: "too many queues", status: 507, token: "TOO_MANY_QUEUES", want: []error{api.ErrQueueFull}},
		{name: "no leader", status: 503, token: "NO_LEADER", want: []error{api.ErrNoLeader, api.ErrUnavailable}, retry: true},
		{name: "not leader", status: 503, token: "NOT_LEADER", want: []error{api.ErrNotLeader, api.ErrUnavailable}, retry: true},
		{name: "shutting down", status: 503, token: "SHUTTING_DOWN", want: []error{api.ErrUnavailable}, retry: true},
		{name: "unavailable", status: 503, token: "UNAVAILABLE", want: []error{api.ErrUnavailable}, retry: true},
		{name: "outcome unknown", status: 503, token: "OUTCOME_UNKNOWN", want: []error{api.ErrOutcomeUnknown}},
		{name: "bad request", status: 400, token: "BAD_REQUEST", want: []error{api.ErrBadRequest}},
		{name: "invalid queue name", status: 400, token: "INVALID_QUEUE_NAME", want: []error{api.ErrBadRequest}},
		{name: "invalid topic name", status: 400, token: "INVALID_TOPIC_NAME", want: []error{api.ErrBadRequest}},
		{name: "too large", status: 413, token: "TOO_LARGE", want: []error{api.ErrTooLarge}},
		{name: "token beats status", status: 500, token: "QUEUE_FULL", want: []error{api.ErrQueueFull}},
		{name: "status 400 without token", status: 400, want: []error{api.ErrBadRequest}},
		{name: "status 409 without token", status: 409, want: []error{api.ErrNotInFlight}},
		{name: "status 413 without token", status: 413, want: []error{api.ErrTooLarge}},
		{name: "status 503 without token", status: 503, want: []error{api.ErrUnavailable}, retry: true},
		{name: "status 507 without token", status: 507, want: []error{api.ErrQueueFull}},
		{name: "unknown token falls back to status", status: 503, token: "CANCELED", want: []error{api.ErrUnavailable}, retry: true},
		{name: "method not allowed", status: 405, token: "METHOD_NOT_ALLOWED"},
		{name: "internal", status: 500, token: "INTERNAL"},
		{name: "no route", status: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.token != "" {
				h.Set(api.HeaderErrorCode, tc.token)
			}
			h.Set(api.HeaderServedBy, "n1")
			var err error = newHTTPError(tc.status, h, []byte("the reason\nsecond line\n"), "http://x/put")
			for _, kind := range all {
				want := false
				for _, w := range tc.want {
					want = want || w == kind
				}
				if got := errors.Is(err, kind); got != want {
					t.Errorf("errors.Is(err, %v) = %v, want %v", kind, got, want)
				}
			}
			if got := retryable(err); got != tc.retry {
				t.Errorf("retryable = %v, want %v", got, tc.retry)
			}
			var he *HTTPError
			if !errors.As(err, &he) {
				t.Fatal("not an *HTTPError")
			}
			if he.Status != tc.status || he.Code != tc.token || he.Body != "the reason" || he.ServedBy != "n1" {
				t.Fatalf("got %+v", he)
			}
			if !strings.Contains(err.Error(), "the reason") {
				t.Fatalf("Error() = %q", err.Error())
			}
		})
	}
}

// Test_Backoff_Bounds: delays grow exponentially, stay within [d/2, d] and
// never exceed Max.
func Test_Backoff_Bounds(t *testing.T) {
	b := Backoff{Min: 10, Max: 100}
	for n, want := range []int64{10, 20, 40, 80, 100, 100, 100} {
		for range 50 {
			d := int64(b.Delay(n))
			if d < want/2 || d > want {
				t.Fatalf("Delay(%d) = %d, want in [%d, %d]", n, d, want/2, want)
			}
		}
	}
	if d := (Backoff{Min: 5, Max: 5}).Delay(1000); d < 2 || d > 5 {
		t.Fatalf("large n: %d", d)
	}
}
