package chaos

import (
	"context"
	"errors"
	"testing"
)

// TestRun_InvalidConfig_IsRefusedBeforeStarting: zero durations, node
// counts and workload sizes, which used to mean the defaults, are
// ErrInvalid before any node starts.
func TestRun_InvalidConfig_IsRefusedBeforeStarting(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
	}{
		{"zero duration", func(c *Config) { c.Duration = 0 }},
		{"zero hold", func(c *Config) { c.HoldMin, c.HoldMax = 0, 0 }},
		{"gap min above max", func(c *Config) { c.GapMin = c.GapMax + 1 }},
		{"zero nodes", func(c *Config) { c.Nodes = 0 }},
		{"max below nodes", func(c *Config) { c.MaxNodes = c.Nodes - 1 }},
		{"unknown network", func(c *Config) { c.Network = "wifi" }},
		{"unknown fault", func(c *Config) { c.Faults = []FaultKind{KillLeader, "bogus"} }},
		{"zero ready timeout", func(c *Config) { c.ReadyTimeout = 0 }},
		{"zero producers", func(c *Config) { c.Workload.Producers = 0 }},
		{"fraction above 1", func(c *Config) { c.Workload.NackFraction = 2 }},
		{"zero attempt timeout", func(c *Config) { c.Workload.AttemptTimeout = 0 }},
		{"zero lin timeout", func(c *Config) { c.LinTimeout = 0 }},
		{"negative slow clients", func(c *Config) { c.Workload.SlowClients = -1 }},
		{"big mgets without items", func(c *Config) { c.Workload.BigMGetItems = nil }},
		{"big mget of zero items", func(c *Config) { c.Workload.BigMGetItems = []int{5000, 0} }},
		{"huge published message", func(c *Config) { c.Workload.PubSize = 2 << 20 }},
		{"zero slow byte interval", func(c *Config) { c.Workload.SlowByteEvery = 0 }},
		{"zero latency bound", func(c *Config) { c.Workload.LatencyBound = 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Binary = "/nonexistent"
			tc.change(&cfg)
			if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
	for _, cfg := range []Config{DefaultConfig(), LongConfig()} {
		if err := cfg.Validate(); err != nil {
			t.Fatalf("a standard schedule is invalid: %v", err)
		}
	}
}
