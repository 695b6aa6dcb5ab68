package wait

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestSleep_ReturnsAtOnceWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, d := range []time.Duration{0, time.Hour} {
		if err := Sleep(ctx, d); !errors.Is(err, context.Canceled) {
			t.Errorf("Sleep(cancelled, %v) = %v, want context.Canceled", d, err)
		}
	}
}

func TestSleep_WaitsTheDuration(t *testing.T) {
	start := time.Now()
	if err := Sleep(context.Background(), 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if since := time.Since(start); since < 20*time.Millisecond {
		t.Errorf("returned after %v, want at least 20ms", since)
	}
}

func TestGroup_ReturnsWhenDoneOrWhenTheContextEnds(t *testing.T) {
	var wg sync.WaitGroup
	wg.Add(1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Group(ctx, &wg); !errors.Is(err, context.Canceled) {
		t.Fatalf("Group with work left and ctx cancelled = %v, want context.Canceled", err)
	}
	wg.Done()
	if err := Group(context.Background(), &wg); err != nil {
		t.Fatalf("Group with nothing left = %v, want nil", err)
	}
}

func TestEvery_CallsUntilTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	Every(ctx, time.Millisecond, func() {
		calls++
		if calls == 3 {
			cancel()
		}
	})
	if calls != 3 {
		t.Fatalf("%d calls, want 3 (then the context ended)", calls)
	}
}
