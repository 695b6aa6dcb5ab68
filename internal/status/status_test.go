package status

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// TestShow_InvalidConfig_IsRefusedBeforeAnyRequest: an empty address or a
// timeout that is not positive is an ErrInvalid, not a failed request.
func TestShow_InvalidConfig_IsRefusedBeforeAnyRequest(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
	}{
		{"empty address", func(c *Config) { c.Addr = "" }},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }},
		{"address that is not a URL", func(c *Config) { c.Addr = "ftp://x" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.change(&cfg)
			if err := Show(context.Background(), cfg, io.Discard); !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
}
