package chaos

import (
	"fmt"
	"hash/fnv"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Lin operation kinds (LinOp.Op).
const (
	linPut  = "put"
	linGet  = "get"
	linMGet = "mget"
)

// linInput is a queue operation for porcupine.
type linInput struct {
	Queue string
	Op    string // linPut, linGet or linMGet
	Value string // put: the value
	// Items bounds an mget: what it asked for, lowered to the cap the
	// nodes apply (WorkloadConfig.MGetCap).
	Items int
}

// linOutput is what a get or mget returned.
type linOutput struct {
	Value   string   // get: "" with Empty
	Values  []string // mget: the messages, oldest first (none: empty)
	Empty   bool
	Unknown bool // outcome unknown: it may have popped, or not happened at all
	// Redelivered: a get handed out a value popped before (LinOp.Redelivered).
	Redelivered bool
}

// fifoState is the queue's content, oldest first, and the values taken
// by a get or mget of unknown outcome. States are never modified in place.
type fifoState struct {
	queue []string
	// limbo holds what each unknown pop took, in order, one group per
	// pop (groups sorted by their first value). A pop whose answer its
	// client never had was given back (to the head, in order, its attempt
	// uncounted) once its node found it could not deliver, or confirmed if
	// the answer was written after all; so a group may come out again, in
	// its order, at any later point, or never.
	limbo [][]string
}

// pop returns st without its first n queued values, which go to limbo as
// one group.
func (st fifoState) pop(n int) fifoState {
	if n == 0 {
		return st
	}
	limbo := append(slices.Clone(st.limbo), st.queue[:n:n])
	slices.SortFunc(limbo, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	return fifoState{queue: st.queue[n:], limbo: limbo}
}

// take returns st after a pop answered v: the queue's head, or the next
// value of a group given back from limbo.
func (st fifoState) take(v string) (fifoState, bool) {
	if len(st.queue) > 0 && st.queue[0] == v {
		return fifoState{queue: st.queue[1:], limbo: st.limbo}, true
	}
	for i, g := range st.limbo {
		if g[0] != v {
			continue
		}
		limbo := slices.Clone(st.limbo)
		if len(g) == 1 {
			limbo = slices.Delete(limbo, i, i+1)
		} else {
			limbo[i] = g[1:]
			slices.SortFunc(limbo, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
		}
		return fifoState{queue: st.queue, limbo: limbo}, true
	}
	return st, false
}

// FIFOModel is a FIFO queue with put(v), destructive get and destructive
// mget(items). A get or mget with an unknown outcome pops what it would
// have popped at its linearization point (the head, or min(items, depth)
// messages) into limbo, from which a later pop may hand them out again
// (given back) or not (delivered after all); that it possibly never
// happened is expressed in the history by giving it no end (it can be
// linearized after every other operation, where the final drain has left
// nothing to pop). An mget that answered must return the queue's first
// messages in order (values from limbo may come among them), and all of
// them unless it hit its Items bound. Histories are partitioned by queue name: each
// lin window is its own queue.
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
	Init: func() any { return fifoState{} },
	Step: func(state, input, output any) (bool, any) {
		st, in := state.(fifoState), input.(linInput)
		out, _ := output.(linOutput)
		switch in.Op {
		case linPut:
			return true, fifoState{queue: append(slices.Clip(st.queue), in.Value), limbo: st.limbo}
		case linMGet:
			if out.Unknown {
				return true, st.pop(min(in.Items, len(st.queue)))
			}
			// The first values, in order; fewer than the bound only when
			// the queue had no more.
			if len(out.Values) > in.Items {
				return false, state
			}
			for _, v := range out.Values {
				var ok bool
				if st, ok = st.take(v); !ok {
					return false, state
				}
			}
			return len(out.Values) == in.Items || len(st.queue) == 0, st
		}
		switch {
		case out.Redelivered:
			// The model popped it at its first delivery; the node's give-back
			// and this get cancel out.
			return true, st
		case out.Unknown:
			return true, st.pop(min(1, len(st.queue)))
		case out.Empty:
			return len(st.queue) == 0, st
		default:
			next, ok := st.take(out.Value)
			return ok, next
		}
	},
	Equal: func(a, b any) bool {
		x, y := a.(fifoState), b.(fifoState)
		return slices.Equal(x.queue, y.queue) && slices.EqualFunc(x.limbo, y.limbo, slices.Equal[[]string])
	},
	// Hash spreads the checker's cache of visited states: without it
	// every state of one set of linearized operations shares a bucket.
	Hash: func(state any) uint64 {
		h := fnv.New64a()
		st := state.(fifoState)
		for _, v := range st.queue {
			h.Write([]byte(v))
			h.Write([]byte{0})
		}
		for _, g := range st.limbo {
			h.Write([]byte{1})
			for _, v := range g {
				h.Write([]byte(v))
				h.Write([]byte{0})
			}
		}
		return h.Sum64()
	},
	DescribeOperation: func(input, output any) string {
		in := input.(linInput)
		out := output.(linOutput)
		switch in.Op {
		case linPut:
			return fmt.Sprintf("put(%s)", in.Value)
		case linMGet:
			if out.Unknown {
				return fmt.Sprintf("mget(%d) -> ?", in.Items)
			}
			return fmt.Sprintf("mget(%d) -> %s", in.Items, describeValues(out.Values))
		}
		switch {
		case out.Unknown:
			return "get() -> ?"
		case out.Redelivered:
			return "get() -> again"
		case out.Empty:
			return "get() -> empty"
		}
		return fmt.Sprintf("get() -> %s", out.Value)
	},
	DescribeState: func(state any) string {
		st := state.(fifoState)
		if len(st.limbo) == 0 {
			return describeValues(st.queue)
		}
		out := describeValues(st.queue) + " limbo"
		for _, g := range st.limbo {
			out += " " + describeValues(g)
		}
		return out
	},
}

func describeValues(vs []string) string {
	if len(vs) > 8 {
		return fmt.Sprintf("[%s ... %d more]", strings.Join(vs[:8], " "), len(vs)-8)
	}
	return "[" + strings.Join(vs, " ") + "]"
}

// LinOperations turns recorded lin ops into porcupine operations:
// failed ones (certainly not applied) are left out; unknown ones never
// end (their Return is after every other operation's). mgetCap is the
// most messages an mget may return (0: no cap).
func LinOperations(ops []LinOp, mgetCap int) []porcupine.Operation {
	var out []porcupine.Operation
	inf := int64(math.MaxInt64 / 2)
	for _, op := range ops {
		if op.Outcome == Fail {
			continue
		}
		in := linInput{Queue: op.Queue, Op: op.Op}
		var o linOutput
		ret := int64(op.End)
		switch op.Op {
		case linPut:
			in.Value = op.Value
		case linMGet:
			in.Items = op.Items
			if mgetCap > 0 {
				in.Items = min(in.Items, mgetCap)
			}
			// Values given back by a lost handover come first in the
			// queue and take items of the answer: the rest is bound by
			// what is left.
			in.Items = max(in.Items-len(op.Redelivered), 0)
			o.Values = op.Values
			o.Empty = len(op.Values) == 0
		case linGet:
			if len(op.Redelivered) > 0 {
				o.Redelivered = true
				break
			}
			o.Value, o.Empty = op.Value, op.Value == ""
		}
		if op.Outcome == Unknown {
			ret, o = inf, linOutput{Unknown: true}
			inf++
		}
		out = append(out, porcupine.Operation{ClientId: op.Client, Input: in, Call: int64(op.Start), Output: o, Return: ret})
	}
	return out
}

// LinPieces splits one queue's operations (LinOperations) into pieces
// that can be checked on their own, each from an empty queue. The cut
// points are operations that leave the queue certainly empty and overlap
// no other operation: a get or mget that answered empty, or an mget that
// answered fewer messages than its bound (it took everything). Every
// operation before such a cut point returned before it was called, every
// one after it was called after it returned, so all of them are
// linearized on their side of it, and the state in between is the empty
// queue. The cut point ends its piece (its answer is checked there). An
// operation of unknown outcome never returns, so no cut comes after one:
// a window in which some client sat out an unknown outcome stays in one
// piece from there on.
func LinPieces(ops []porcupine.Operation) [][]porcupine.Operation {
	ops = slices.Clone(ops)
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
	var pieces [][]porcupine.Operation
	from := 0
	maxReturn := int64(math.MinInt64) // of ops[from:i]
	for i, op := range ops {
		cut := leavesEmpty(op) && maxReturn < op.Call && (i+1 == len(ops) || ops[i+1].Call > op.Return)
		maxReturn = max(maxReturn, op.Return)
		if cut {
			pieces = append(pieces, ops[from:i+1])
			from, maxReturn = i+1, math.MinInt64
		}
	}
	if from < len(ops) {
		pieces = append(pieces, ops[from:])
	}
	return pieces
}

// leavesEmpty reports whether op, once answered, certainly left its queue
// empty.
func leavesEmpty(op porcupine.Operation) bool {
	in, out := op.Input.(linInput), op.Output.(linOutput)
	switch {
	case out.Unknown || out.Redelivered || in.Op == linPut:
		return false
	case in.Op == linMGet:
		return len(out.Values) < in.Items
	}
	return out.Empty
}

// Lin verdicts (LinResult.Result).
const (
	LinOK      = "ok"
	LinIllegal = "illegal"
	// LinTimeout: porcupine could not decide within the time limit. It
	// fails the check: an undecided history is not a linearizable one.
	LinTimeout = "timeout"
)

// LinResult is the verdict on one piece of one lin queue (LinPieces).
type LinResult struct {
	Queue string `json:"queue"`
	// Piece numbers the queue's pieces from 0, in time order; From and
	// To are the first call and the last return of the piece (To is
	// the first call for a piece whose last operation never returned).
	Piece   int           `json:"piece"`
	From    time.Duration `json:"from_ns"`
	To      time.Duration `json:"to_ns"`
	Ops     int           `json:"ops"`
	Unknown int           `json:"unknown_ops"`
	Result  string        `json:"result"` // LinOK, LinIllegal, LinTimeout
	// Visualization is the HTML file porcupine wrote for an illegal
	// piece.
	Visualization string        `json:"visualization,omitempty"`
	Took          time.Duration `json:"took_ns"`
	// Witnesses are simple, human-readable reasons why an illegal
	// history cannot be linearized, when one of the patterns of
	// LinWitnesses explains it (found in the whole queue).
	Witnesses []string `json:"witnesses,omitempty"`
	// NotChecked, for a LinTimeout, says porcupine never ran on the
	// piece: the check's overall budget was spent.
	NotChecked bool `json:"not_checked,omitempty"`
}

// CheckLinearizable checks each lin queue's history against FIFOModel,
// piece by piece (LinPieces), each piece within timeout. mgetCap is as
// for LinOperations. For an illegal piece it writes porcupine's
// visualization into dir (if dir is not empty).
func CheckLinearizable(ops []LinOp, timeout time.Duration, mgetCap int, dir string) []LinResult {
	return CheckLinearizableWithin(ops, timeout, 0, mgetCap, dir)
}

// CheckLinearizableWithin is CheckLinearizable bounded as a whole by
// budget (0: unbounded): a piece gets at most what is left of it, and the
// pieces left once it is spent are LinTimeout, NotChecked. The check then
// fails rather than waits: histories it cannot finish fail it.
func CheckLinearizableWithin(ops []LinOp, timeout, budget time.Duration, mgetCap int, dir string) []LinResult {
	var deadline time.Time
	if budget > 0 {
		deadline = time.Now().Add(budget)
	}
	byQueue := map[string][]LinOp{}
	for _, op := range ops {
		byQueue[op.Queue] = append(byQueue[op.Queue], op)
	}
	var results []LinResult
	for _, q := range sortedKeys(byQueue) {
		var witnesses []string
		for i, piece := range LinPieces(LinOperations(byQueue[q], mgetCap)) {
			res := LinResult{Queue: q, Piece: i, Ops: len(piece), From: time.Duration(piece[0].Call)}
			for _, op := range piece {
				if op.Output.(linOutput).Unknown {
					res.Unknown++
				} else {
					res.To = max(res.To, time.Duration(op.Return))
				}
			}
			res.To = max(res.To, res.From)
			limit := timeout
			if !deadline.IsZero() {
				limit = min(limit, time.Until(deadline))
				if limit <= 0 {
					res.Result, res.NotChecked = LinTimeout, true
					results = append(results, res)
					continue
				}
			}
			start := time.Now()
			r, info := porcupine.CheckOperationsVerbose(FIFOModel, piece, limit)
			res.Took = time.Since(start)
			switch r {
			case porcupine.Ok:
				res.Result = LinOK
			case porcupine.Illegal:
				res.Result = LinIllegal
				if witnesses == nil {
					witnesses = LinWitnesses(byQueue[q])
				}
				res.Witnesses = witnesses
				if dir != "" {
					path := filepath.Join(dir, fmt.Sprintf("%s-piece%d.html", q, i))
					if err := porcupine.VisualizePath(FIFOModel, info, path); err == nil {
						res.Visualization = path
					}
				}
			default:
				res.Result = LinTimeout
			}
			results = append(results, res)
		}
	}
	return results
}

// LinWitnesses looks in one queue's ops for patterns that make a history
// non-linearizable on their own, and describes each one found:
//
//   - stale empty: a get answered "empty" although a value was in the
//     queue during the whole get (its put was acknowledged before the get
//     was sent, and it was popped by a get sent after the empty answer);
//   - a value popped twice (by gets or mgets), or popped before its put
//     was sent;
//   - FIFO inversion: a acknowledged before b was sent, yet b popped by a
//     get that ended before the get of a was sent, or listed before a in
//     one mget's answer.
func LinWitnesses(ops []LinOp) []string {
	puts := map[string]LinOp{}
	pops := map[string][]LinOp{}
	var empties []LinOp
	for _, op := range ops {
		if op.Outcome != OK || op.Op == linGet && len(op.Redelivered) > 0 {
			continue
		}
		switch {
		case op.Op == linPut:
			puts[op.Value] = op
		case op.Op == linMGet && len(op.Values) == 0, op.Op != linMGet && op.Value == "":
			empties = append(empties, op)
		case op.Op == linMGet:
			for _, v := range op.Values {
				pops[v] = append(pops[v], op)
			}
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
	for _, op := range ops {
		if op.Outcome != OK || op.Op != linMGet {
			continue
		}
		for i, a := range op.Values {
			for _, b := range op.Values[i+1:] {
				pa, oka := puts[a]
				pb, okb := puts[b]
				if oka && okb && pb.End < pa.Start {
					add("FIFO inversion within one mget: %s acknowledged before %s was sent, but %s answered %s first", b, a, desc(op), a)
				}
			}
		}
	}
	return out
}
