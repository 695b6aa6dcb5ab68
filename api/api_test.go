package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestClassify_KindTextAndPrecedence: the kind and the client's text of
// an error, whatever wraps it.
func TestClassify_KindTextAndPrecedence(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		kind  *Error
		text  string
		known bool
	}{
		{"bare kind", ErrQueueFull, ErrQueueFull, "queue is full", true},
		{"detailed", ErrBadRequest.Errorf("invalid wait=%s", Quote("x")), ErrBadRequest, `invalid wait="x"`, true},
		{"wrapped detail", fmt.Errorf("put: %w", ErrTooLarge.Errorf("message is 9 bytes")), ErrTooLarge, "message is 9 bytes", true},
		{"plain wrap keeps the kind's text", fmt.Errorf("apply: %w", ErrNotInFlight), ErrNotInFlight, ErrNotInFlight.Text, true},
		{"fixed kinds ignore detail", ErrShuttingDown.Errorf("raft said no"), ErrShuttingDown, ErrShuttingDown.Text, true},
		{"outcome unknown wins", fmt.Errorf("%w: %w", ErrNotLeader, ErrOutcomeUnknown), ErrOutcomeUnknown, ErrOutcomeUnknown.Text, true},
		{"canceled context", fmt.Errorf("wait: %w", context.Canceled), ErrCanceled, ErrCanceled.Text, true},
		{"no kind", errors.New("disk on fire"), ErrInternal, ErrInternal.Text, false},
		{"one line", ErrBadRequest.Errorf("a\nb\r\nc"), ErrBadRequest, "a b c", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, text, known := Classify(tc.err)
			if k != tc.kind || text != tc.text || known != tc.known {
				t.Fatalf("Classify = %s %q %v, want %s %q %v", k.Token, text, known, tc.kind.Token, tc.text, tc.known)
			}
		})
	}
}

// TestError_ParentsAndRetryable: narrower kinds are also their parents,
// and only kinds that applied nothing are retryable.
func TestError_ParentsAndRetryable(t *testing.T) {
	for _, tc := range []struct {
		kind, parent *Error
	}{
		{ErrInvalidQueueName, ErrBadRequest},
		{ErrInvalidTopicName, ErrBadRequest},
		{ErrInvalidCommand, ErrBadRequest},
		{ErrTooManyQueues, ErrQueueFull},
		{ErrNotLeader, ErrUnavailable},
		{ErrNoLeader, ErrUnavailable},
		{ErrShuttingDown, ErrUnavailable},
		{ErrRouteFailed, ErrUnavailable},
	} {
		if !errors.Is(tc.kind, tc.parent) || !errors.Is(tc.kind.Errorf("x"), tc.parent) {
			t.Errorf("%s is not %s", tc.kind.Token, tc.parent.Token)
		}
		if errors.Is(tc.parent, tc.kind) {
			t.Errorf("%s is %s", tc.parent.Token, tc.kind.Token)
		}
	}
	if errors.Is(ErrNotLeader, ErrNoLeader) || errors.Is(ErrOutcomeUnknown, ErrUnavailable) {
		t.Error("unrelated kinds match")
	}
	for k, want := range map[*Error]bool{ErrNoLeader: true, ErrUnavailable: true, ErrOutcomeUnknown: false, ErrQueueFull: false} {
		if k.Retryable() != want {
			t.Errorf("%s.Retryable() = %v", k.Token, !want)
		}
	}
}

// TestDecode_TokenFirstThenStatus: every kind round-trips through its
// token; without a known token the status decides.
func TestDecode_TokenFirstThenStatus(t *testing.T) {
	for _, k := range kinds {
		if got := Decode(k.Token, http.StatusTeapot); got != k {
			t.Errorf("Decode(%s) = %v", k.Token, got)
		}
	}
	for status, want := range map[int]*Error{400: ErrBadRequest, 401: ErrUnauthorized, 403: ErrForbidden, 409: ErrNotInFlight, 413: ErrTooLarge, 503: ErrUnavailable, 507: ErrQueueFull, 500: nil, 404: nil} {
		if got := Decode("SOMETHING_NEW", status); got != want {
			t.Errorf("Decode(unknown, %d) = %v, want %v", status, got, want)
		}
	}
	seen := map[string]bool{}
	for _, k := range kinds {
		if seen[k.Token] {
			t.Errorf("token %s defined twice", k.Token)
		}
		seen[k.Token] = true
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"default": true, "a.b_c-D9": true, "": false, "a b": false, "a/b": false, "ä": false,
		"a\x00b": false, string(make([]byte, 65)): false,
		"0123456789012345678901234567890123456789012345678901234567890123": true,
	} {
		if ValidName(name) != want {
			t.Errorf("ValidName(%q) = %v", name, !want)
		}
	}
	err := CheckQueueName("<script>")
	if !errors.Is(err, ErrInvalidQueueName) || err.Error() != `invalid queue name "<script>": want [A-Za-z0-9._-]{1,64}` {
		t.Errorf("CheckQueueName: %v", err)
	}
	if err := CheckTopicName("t 1"); !errors.Is(err, ErrInvalidTopicName) {
		t.Errorf("CheckTopicName: %v", err)
	}
}

// TestLease_WireRoundTrip: absent lease= is the queue's default, lease=0s
// pops, anything else leases.
func TestLease_WireRoundTrip(t *testing.T) {
	for _, lease := range []time.Duration{0, NoLease, time.Second, 90 * time.Minute} {
		v, ok := LeaseParam(lease)
		var d time.Duration
		if ok {
			var err error
			if d, err = ParseDuration(v); err != nil {
				t.Fatalf("lease %v: %q does not parse: %v", lease, v, err)
			}
		}
		if got := LeaseOf(d, ok); got != lease {
			t.Errorf("lease %v: sent %q (%v), read back %v", lease, v, ok, got)
		}
	}
}

func TestDuration_ParseAndFormat(t *testing.T) {
	for in, want := range map[time.Duration]string{12 * time.Hour: "12h", 5 * time.Minute: "5m", 30 * time.Second: "30s", 90 * time.Second: "1m30s", 1500 * time.Millisecond: "1.5s"} {
		if got := FormatDuration(in); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"", "5", "-1s", "abc"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}

// TestBytes_ParseAndFormat: sizes of flags and messages.
func TestBytes_ParseAndFormat(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "512": 512, "64KiB": 64 << 10, "64 kib": 64 << 10, "1.5GiB": 3 << 29, "2TiB": 2 << 40, " 8MiB ": 8 << 20,
	} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5", "MiB", "1MB", "x", "-2GiB", "1e30GiB", "NaNGiB"} {
		if got, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) = %d, want an error", in, got)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 29: "1.5 GiB", 32 << 20: "32.0 MiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
