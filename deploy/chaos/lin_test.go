package chaos

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func mget(client, items int, values []string, start, end time.Duration, out Outcome) LinOp {
	return LinOp{Client: client, Queue: "lin-000", Op: linMGet, Items: items, Values: values, Start: start, End: end, Outcome: out, Node: "node1"}
}

// undecidable is a history porcupine cannot decide in milliseconds: n
// concurrent puts (every order of them is a distinct state), then gets
// that pop them, one of a value never put, so that every order must be
// tried before the history is found illegal.
func undecidable(n int) []LinOp {
	var ops []LinOp
	for i := range n {
		ops = append(ops, lin(i, "put", fmt.Sprintf("v%d", i), 0, 100, OK))
	}
	for i := range n {
		ops = append(ops, lin(i, "get", fmt.Sprintf("v%d", i), 200, 300, OK))
	}
	return append(ops, lin(n, "get", "never-put", 200, 300, OK))
}

func TestLin_UndecidedWithinTheLimit_FailsTheCheck(t *testing.T) {
	rs := CheckLinearizable(undecidable(12), 50*time.Millisecond, 1000, "")
	if len(rs) != 1 || rs[0].Result != LinTimeout {
		t.Fatalf("results %+v, want one piece timed out", rs)
	}
	c := LinCheck(rs)
	if c.Pass || c.Violations != 1 {
		t.Fatalf("check pass=%v violations=%d, want a failure", c.Pass, c.Violations)
	}
	if !strings.Contains(c.Examples[0], "lin-000 piece 0") || !strings.Contains(c.Examples[0], "timed out") {
		t.Fatalf("example %q does not name the queue, the piece and the timeout", c.Examples[0])
	}
}

// The check as a whole is bounded: once its budget is spent, the queues
// left are not checked, and each of their pieces fails the check rather
// than waits.
func TestLin_OverallBudgetSpent_PiecesLeftFailUnchecked(t *testing.T) {
	var ops []LinOp
	for _, q := range []string{"lin-000", "lin-001", "lin-002"} {
		for _, op := range undecidable(12) {
			op.Queue = q
			ops = append(ops, op)
		}
	}
	rs := CheckLinearizableWithin(ops, time.Minute, 50*time.Millisecond, 1000, "")
	if len(rs) != 3 || rs[0].Result != LinTimeout || rs[0].NotChecked {
		t.Fatalf("results %+v, want three pieces, the first timed out within the budget", rs)
	}
	for _, r := range rs[1:] {
		if r.Result != LinTimeout || !r.NotChecked {
			t.Fatalf("piece %+v after the budget: want a timeout, not checked", r)
		}
	}
	c := LinCheck(rs)
	if c.Pass || c.Violations != 3 || !strings.Contains(c.Examples[2], "not checked") {
		t.Fatalf("check pass=%v violations=%d examples %q, want three failures, the last not checked", c.Pass, c.Violations, c.Examples)
	}
}

// A long history of calm windows, each ending with an empty get nothing
// overlaps, is checked piece by piece and passes.
func TestLin_CalmHistory_PassesInPieces(t *testing.T) {
	var ops []LinOp
	at := time.Duration(0)
	next := func() (time.Duration, time.Duration) { at += 10; return at, at + 5 }
	for w := range 50 {
		a, b := fmt.Sprintf("a%d", w), fmt.Sprintf("b%d", w)
		s1, e1 := next()
		ops = append(ops, lin(0, "put", a, s1, e1+20, OK)) // overlaps the next put
		s2, e2 := next()
		ops = append(ops, lin(1, "put", b, s2, e2, OK))
		at += 20
		s3, e3 := next()
		ops = append(ops, mget(2, 99999999, []string{a, b}, s3, e3, OK))
		s4, e4 := next()
		ops = append(ops, lin(0, "get", "", s4, e4, OK))
	}
	rs := CheckLinearizable(ops, 10*time.Second, 1000, "")
	// Both the mget (it took fewer than asked) and the empty get cut.
	if len(rs) != 100 {
		t.Fatalf("%d pieces, want 100", len(rs))
	}
	c := LinCheck(rs)
	if !c.Pass || c.Checked != 100 {
		t.Fatalf("pass=%v checked=%d examples %q", c.Pass, c.Checked, c.Examples)
	}
}

func TestLinPieces_CutsOnlyWhereTheQueueIsCertainlyEmpty(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ops    []LinOp
		pieces int
	}{
		{"isolated empty get", []LinOp{lin(0, "put", "a", 0, 1, OK), lin(1, "get", "a", 2, 3, OK), lin(0, "get", "", 4, 5, OK), lin(1, "put", "b", 6, 7, OK)}, 2},
		{"empty get overlapped by a put", []LinOp{lin(0, "put", "a", 0, 1, OK), lin(1, "get", "a", 2, 3, OK), lin(0, "get", "", 4, 6, OK), lin(1, "put", "b", 5, 7, OK)}, 1},
		{"empty get touching a put", []LinOp{lin(0, "get", "", 4, 6, OK), lin(1, "put", "b", 6, 7, OK)}, 1},
		{"after an unknown put", []LinOp{lin(0, "put", "a", 0, 1, Unknown), lin(1, "get", "", 2, 3, OK), lin(1, "get", "", 4, 5, OK)}, 1},
		{"failed ops are left out", []LinOp{lin(0, "put", "a", 0, 10, Fail), lin(1, "get", "", 2, 3, OK), lin(1, "get", "", 4, 5, OK)}, 2},
		{"mget that got all it asked for", []LinOp{lin(0, "put", "a", 0, 1, OK), mget(1, 1, []string{"a"}, 2, 3, OK), lin(0, "put", "b", 6, 7, OK)}, 1},
		{"mget that got less than it asked for", []LinOp{lin(0, "put", "a", 0, 1, OK), mget(1, 5000, []string{"a"}, 2, 3, OK), lin(0, "put", "b", 6, 7, OK)}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := len(LinPieces(LinOperations(tc.ops, 1000))); got != tc.pieces {
				t.Fatalf("%d pieces, want %d", got, tc.pieces)
			}
		})
	}
}

// A pop of unknown outcome whose messages its node gave back later (the
// answer never reached the client): they are missing for a while, then
// come out again with their attempt uncounted, first in line.
func TestLin_UnknownPopGivenBackLater(t *testing.T) {
	ab := []LinOp{lin(0, "put", "a", 0, 1, OK), lin(0, "put", "b", 2, 3, OK)}
	for _, tc := range []struct {
		name string
		ops  []LinOp
		want string
	}{
		{"missing, then back", append(ab, lin(1, "get", "", 4, 100, Unknown), lin(2, "get", "b", 5, 6, OK), lin(2, "get", "", 7, 8, OK), lin(2, "get", "a", 9, 10, OK)), LinOK},
		{"never back", append(ab, lin(1, "get", "", 4, 100, Unknown), lin(2, "get", "b", 5, 6, OK), lin(2, "get", "", 7, 8, OK)), LinOK},
		{"back twice", append(ab, lin(1, "get", "", 4, 100, Unknown), lin(2, "get", "b", 5, 6, OK), lin(2, "get", "a", 7, 8, OK), lin(2, "get", "a", 9, 10, OK)), LinIllegal},
		{"missing without an unknown pop", append(ab, lin(2, "get", "b", 5, 6, OK), lin(2, "get", "", 7, 8, OK), lin(2, "get", "a", 9, 10, OK)), LinIllegal},
		{"an mget's group back in its order", append(ab, mget(1, 5000, nil, 4, 100, Unknown), lin(2, "get", "", 5, 6, OK), lin(2, "get", "a", 7, 8, OK), lin(2, "get", "b", 9, 10, OK)), LinOK},
		{"an mget's group out of its order", append(ab, mget(1, 5000, nil, 4, 100, Unknown), lin(2, "get", "", 5, 6, OK), lin(2, "get", "b", 7, 8, OK)), LinIllegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := LinOK
			for _, r := range CheckLinearizable(tc.ops, 10*time.Second, 1000, "") {
				if r.Result != LinOK {
					got = r.Result
				}
			}
			if got != tc.want {
				t.Fatalf("result %s, want %s", got, tc.want)
			}
		})
	}
}

func TestLin_MGet(t *testing.T) {
	ab := func(get LinOp) []LinOp {
		return []LinOp{lin(0, "put", "a", 0, 1, OK), lin(0, "put", "b", 2, 3, OK), get}
	}
	for _, tc := range []struct {
		name string
		ops  []LinOp
		cap  int
		want string
	}{
		{"takes all in order", ab(mget(1, 99999999, []string{"a", "b"}, 4, 5, OK)), 1000, LinOK},
		{"out of order", ab(mget(1, 5000, []string{"b", "a"}, 4, 5, OK)), 1000, LinIllegal},
		{"leaves one behind", ab(mget(1, 5000, []string{"a"}, 4, 5, OK)), 1000, LinIllegal},
		{"stopped by the cap", ab(mget(1, 5000, []string{"a"}, 4, 5, OK)), 1, LinOK},
		{"answers more than the cap", ab(mget(1, 5000, []string{"a", "b"}, 4, 5, OK)), 1, LinIllegal},
		{"answers empty", ab(mget(1, 5000, nil, 4, 5, OK)), 1000, LinIllegal},
		{"a value twice", ab(mget(1, 5000, []string{"a", "a", "b"}, 4, 5, OK)), 1000, LinIllegal},
		{"unknown, then empty", append(ab(mget(1, 5000, nil, 4, 5, Unknown)), lin(2, "get", "", 6, 7, OK)), 1000, LinOK},
		{"unknown, then all still there", append(ab(mget(1, 5000, nil, 4, 5, Unknown)), mget(2, 9, []string{"a", "b"}, 6, 7, OK)), 1000, LinOK},
		{"unknown cannot take only one", append(ab(mget(1, 5000, nil, 4, 5, Unknown)), lin(2, "get", "b", 6, 7, OK)), 1000, LinIllegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := CheckLinearizable(tc.ops, 10*time.Second, tc.cap, "")
			got := LinOK
			for _, r := range rs {
				if r.Result != LinOK {
					got = r.Result
				}
			}
			if got != tc.want {
				t.Fatalf("result %s, want %s (%+v)", got, tc.want, rs)
			}
		})
	}
}

func TestLinWitnesses_InversionWithinOneMGet(t *testing.T) {
	ws := LinWitnesses([]LinOp{lin(0, "put", "a", 0, 1, OK), lin(0, "put", "b", 2, 3, OK), mget(1, 5000, []string{"b", "a"}, 4, 5, OK)})
	if len(ws) == 0 || !strings.Contains(ws[0], "within one mget") {
		t.Fatalf("witnesses %q, want an inversion within one mget", ws)
	}
}
