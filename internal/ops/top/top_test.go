package top

import (
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/client"
)

func TestRates_GrowthOfPutsAndGetsBetweenFrames(t *testing.T) {
	tp := &Top{}
	at := time.Unix(1000, 0)
	frame := func(secs int, puts, gets uint64) *Frame {
		f := &Frame{At: at.Add(time.Duration(secs) * time.Second), Queues: []Queue{{QueueInfo: client.QueueInfo{Name: "q", Puts: puts, Gets: gets}, PutRate: -1, GetRate: -1}}}
		tp.rates(f)
		return f
	}
	if f := frame(0, 10, 0); f.Queues[0].PutRate != -1 {
		t.Fatalf("first frame has a rate: %+v", f.Queues[0])
	}
	if f := frame(2, 30, 4); f.Queues[0].PutRate != 10 || f.Queues[0].GetRate != 2 {
		t.Fatalf("rates %+v, want 10 and 2 a second", f.Queues[0])
	}
	if f := frame(4, 5, 6); f.Queues[0].PutRate != -1 || f.Queues[0].GetRate != 1 {
		t.Fatalf("after a reset of puts: %+v, want no put rate and 1 get a second", f.Queues[0])
	}
}

func TestRender_MembersAndQueuesWithUnknownsAsDashes(t *testing.T) {
	f := &Frame{At: time.Unix(0, 0), Leader: "n1", Term: 3,
		Members: []Member{
			{ID: "n1", Status: "alive", QueueAddr: "h1:1", Reached: true, State: "leader", Term: 3, Commit: 9, Applied: 9, Lag: 0},
			{ID: "n2", Status: "dead", QueueAddr: "h2:1", Applied: 4, Lag: 5},
		},
		Queues: []Queue{{QueueInfo: client.QueueInfo{Name: "jobs", Depth: 7, Bytes: 2048, Oldest: time.Unix(1, 0), OldestAge: 61 * time.Second}, PutRate: 1.5, GetRate: -1}},
	}
	var b strings.Builder
	if err := Render(&b, f); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"leader n1  term 3", "n2    unreachable  dead    -     -       4        5    h2:1", "jobs   7      0          0         0     2.0KiB  1.5    -      1m1s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("frame lacks %q:\n%s", want, b.String())
		}
	}
}
