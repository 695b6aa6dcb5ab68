package chaos

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// linInput is a queue operation for porcupine.
type linInput struct {
	Queue string
	Put   bool
	Value string // put: the value
}

// linOutput is what a get returned.
type linOutput struct {
	Value   string // "" with Empty
	Empty   bool
	Unknown bool // outcome unknown: it may have popped the head, or not happened at all
}

// fifoState is the queue's content, oldest first. States are never
// modified in place.
type fifoState []string

// FIFOModel is a FIFO queue with put(v) and destructive get. A get with
// an unknown outcome pops the head if there is one (or nothing, on an
// empty queue); that it possibly never happened is expressed in the
// history by giving it no end (it can be linearized after every other
// operation, where it observes nothing). Histories are partitioned by
// queue name: each lin window is its own queue.
var FIFOModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byQueue := map[string][]porcupine.Operation{}
		var names []string
		for _, op := range history {
			q := op.Input.(linInput).Queue
			if _, ok := byQueue[q]; !ok {
				names = append(names, q)
			}
			byQueue[q] = append(byQueue[q], op)
		}
		sort.Strings(names)
		out := make([][]porcupine.Operation, len(names))
		for i, n := range names {
			out[i] = byQueue[n]
		}
		return out
	},
	Init: func() any { return fifoState(nil) },
	Step: func(state, input, output any) (bool, any) {
		st, in := state.(fifoState), input.(linInput)
		if in.Put {
			next := make(fifoState, len(st), len(st)+1)
			copy(next, st)
			return true, append(next, in.Value)
		}
		out := output.(linOutput)
		switch {
		case out.Unknown:
			if len(st) == 0 {
				return true, st
			}
			return true, st[1:]
		case out.Empty:
			return len(st) == 0, st
		default:
			if len(st) == 0 || st[0] != out.Value {
				return false, st
			}
			return true, st[1:]
		}
	},
	Equal: func(a, b any) bool { return slices.Equal(a.(fifoState), b.(fifoState)) },
	DescribeOperation: func(input, output any) string {
		in := input.(linInput)
		if in.Put {
			return fmt.Sprintf("put(%s)", in.Value)
		}
		out := output.(linOutput)
		switch {
		case out.Unknown:
			return "get() -> ?"
		case out.Empty:
			return "get() -> empty"
		}
		return fmt.Sprintf("get() -> %s", out.Value)
	},
	DescribeState: func(state any) string {
		st := state.(fifoState)
		if len(st) > 8 {
			return fmt.Sprintf("[%s ... %d more]", strings.Join(st[:8], " "), len(st)-8)
		}
		return "[" + strings.Join(st, " ") + "]"
	},
}

// LinOperations turns recorded lin ops into porcupine operations:
// failed ones (certainly not applied) are left out; unknown ones never
// end (their Return is after every other operation's).
func LinOperations(ops []LinOp) []porcupine.Operation {
	var out []porcupine.Operation
	inf := int64(math.MaxInt64 / 2)
	for _, op := range ops {
		if op.Outcome == Fail {
			continue
		}
		in := linInput{Queue: op.Queue, Put: op.Op == "put"}
		var o linOutput
		ret := int64(op.End)
		switch {
		case op.Outcome == Unknown:
			ret, o.Unknown = inf, true
			inf++
		case !in.Put:
			o.Value, o.Empty = op.Value, op.Value == ""
		}
		if in.Put {
			in.Value = op.Value
		}
		out = append(out, porcupine.Operation{ClientId: op.Client, Input: in, Call: int64(op.Start), Output: o, Return: ret})
	}
	return out
}

// LinResult is the verdict on one lin queue.
type LinResult struct {
	Queue   string `json:"queue"`
	Ops     int    `json:"ops"`
	Unknown int    `json:"unknown_ops"`
	Result  string `json:"result"` // ok, illegal, timeout
	// Visualization is the HTML file porcupine wrote for an illegal
	// history.
	Visualization string        `json:"visualization,omitempty"`
	Took          time.Duration `json:"took_ns"`
	// Witnesses are simple, human-readable reasons why an illegal
	// history cannot be linearized, when one of the patterns of
	// LinWitnesses explains it.
	Witnesses []string `json:"witnesses,omitempty"`
}

// CheckLinearizable checks each lin queue's history against FIFOModel,
// with timeout per queue. For an illegal history it writes porcupine's
// visualization into dir (if dir is not empty).
func CheckLinearizable(ops []LinOp, timeout time.Duration, dir string) []LinResult {
	byQueue := map[string][]LinOp{}
	for _, op := range ops {
		byQueue[op.Queue] = append(byQueue[op.Queue], op)
	}
	var names []string
	for q := range byQueue {
		names = append(names, q)
	}
	sort.Strings(names)
	var results []LinResult
	for _, q := range names {
		hist := LinOperations(byQueue[q])
		res := LinResult{Queue: q, Ops: len(hist)}
		for _, op := range hist {
			if op.Output.(linOutput).Unknown {
				res.Unknown++
			}
		}
		start := time.Now()
		r, info := porcupine.CheckOperationsVerbose(FIFOModel, hist, timeout)
		res.Took = time.Since(start)
		switch r {
		case porcupine.Ok:
			res.Result = "ok"
		case porcupine.Illegal:
			res.Result = "illegal"
			res.Witnesses = LinWitnesses(byQueue[q])
			if dir != "" {
				path := filepath.Join(dir, q+".html")
				if err := porcupine.VisualizePath(FIFOModel, info, path); err == nil {
					res.Visualization = path
				}
			}
		default:
			res.Result = "timeout"
		}
		results = append(results, res)
	}
	return results
}

// LinWitnesses looks in one queue's ops for patterns that make a history
// non-linearizable on their own, and describes each one found:
//
//   - stale empty: a get answered "empty" although a value was in the
//     queue during the whole get (its put was acknowledged before the get
//     was sent, and it was popped by a get sent after the empty answer);
//   - a value popped twice, or popped before its put was sent;
//   - FIFO inversion: a acknowledged before b was sent, yet b popped by a
//     get that ended before the get of a was sent.
func LinWitnesses(ops []LinOp) []string {
	puts := map[string]LinOp{}
	pops := map[string][]LinOp{}
	var empties []LinOp
	for _, op := range ops {
		if op.Outcome != OK {
			continue
		}
		switch {
		case op.Op == "put":
			puts[op.Value] = op
		case op.Value == "":
			empties = append(empties, op)
		default:
			pops[op.Value] = append(pops[op.Value], op)
		}
	}
	var out []string
	add := func(format string, args ...any) {
		if len(out) < maxExamples {
			out = append(out, fmt.Sprintf(format, args...))
		}
	}
	desc := func(op LinOp) string {
		by := ""
		if op.ServedBy != "" && op.ServedBy != op.Node {
			by = ", served by " + op.ServedBy
		}
		return fmt.Sprintf("client %d %s [%s, %s] via %s%s", op.Client, op.Op, at(op.Start), at(op.End), op.Node, by)
	}
	for _, g := range empties {
		for _, v := range sortedKeys(pops) {
			p, ok := puts[v]
			r := pops[v][0]
			if ok && len(pops[v]) == 1 && p.End < g.Start && r.Start > g.End {
				add("stale empty: %s answered empty, but %s was in the queue all along: put by %s, popped by %s",
					desc(g), v, desc(p), desc(r))
				break
			}
		}
	}
	for _, v := range sortedKeys(pops) {
		rs := pops[v]
		if len(rs) > 1 {
			add("%s popped %d times: %s and %s", v, len(rs), desc(rs[0]), desc(rs[1]))
		}
		if p, ok := puts[v]; ok && rs[0].End < p.Start {
			add("%s popped by %s before its put %s was sent", v, desc(rs[0]), desc(p))
		}
	}
	for _, a := range sortedKeys(puts) {
		pa, ra := puts[a], pops[a]
		if len(ra) != 1 {
			continue
		}
		for _, b := range sortedKeys(puts) {
			pb, rb := puts[b], pops[b]
			if a == b || len(rb) != 1 {
				continue
			}
			if pa.End < pb.Start && rb[0].End < ra[0].Start {
				add("FIFO inversion: %s acknowledged before %s was sent, but %s popped by %s before %s popped by %s",
					a, b, b, desc(rb[0]), a, desc(ra[0]))
			}
		}
	}
	return out
}
