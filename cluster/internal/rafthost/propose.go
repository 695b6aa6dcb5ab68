package rafthost

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
)

// proposal is one Propose or ProposeGroup call waiting in, or handed out
// by, the coalescer.
type proposal struct {
	cmd fsm.Command
	// group, when not nil, holds a ProposeGroup's commands instead of cmd:
	// they go into one entry together.
	group []fsm.Command
	size  int // the encoded size of cmd, or of group's commands
	// state settles the race between the coalescer taking the proposal and
	// the caller giving up on it: whoever moves it out of queued wins.
	state atomic.Int32
	// done is buffered so the coalescer never blocks on a caller that left.
	done chan outcome
}

const (
	proposalQueued int32 = iota
	proposalTaken
	proposalCancelled
)

type outcome struct {
	res fsm.Result
	// group is a group proposal's results, one per command.
	group []fsm.Result
	err   error
}

// proposalPool recycles proposals whose outcome their caller received:
// from then on nobody else refers to them (the coalescer finishes each
// proposal once and never looks at it again). A proposal given up on
// (context, shutdown) is left to the garbage collector.
var proposalPool = sync.Pool{New: func() any { return &proposal{done: make(chan outcome, 1)} }}

func newProposal(cmd fsm.Command) *proposal {
	p := proposalPool.Get().(*proposal)
	p.cmd, p.size = cmd, fsm.EncodedSize(&cmd)
	p.state.Store(proposalQueued)
	return p
}

// newGroupProposal is a proposal of cmds, whose encoded sizes add up to
// size (ProposeGroup has them from cutting the group).
func newGroupProposal(cmds []fsm.Command, size int) *proposal {
	p := proposalPool.Get().(*proposal)
	p.group, p.size = cmds, size
	p.state.Store(proposalQueued)
	return p
}

// commands is how many commands p puts into its entry.
func (p *proposal) commands() int {
	if p.group != nil {
		return len(p.group)
	}
	return 1
}

// recycle returns p to the pool. Only for a proposal that the coalescer
// never saw, or whose outcome was received from p.done.
func (p *proposal) recycle() {
	p.cmd, p.group = fsm.Command{}, nil // do not pin message bodies
	proposalPool.Put(p)
}

func (p *proposal) take() bool   { return p.state.CompareAndSwap(proposalQueued, proposalTaken) }
func (p *proposal) cancel() bool { return p.state.CompareAndSwap(proposalQueued, proposalCancelled) }
func (p *proposal) finish(o outcome) {
	p.done <- o
}

// entryOverhead is the encoded size of an entry around its commands: the
// version byte, the leader time and the command count.
const entryOverhead = 1 + 10 + 5

// scratchKeep bounds the command scratch slice the coalescer keeps between
// batches, so one burst of tiny commands does not pin a large array.
const scratchKeep = 4096

// Propose replicates cmd and returns its result once it is committed on a
// quorum and applied to the local FSM.
//
// Errors, compared with errors.Is:
//   - api.ErrNotLeader: this node does not lead, or raft refused the entry before
//     writing it (it stepped down, a leadership transfer is running, the
//     enqueue timed out). Nothing was written; retrying elsewhere is safe.
//   - api.ErrShuttingDown: Shutdown has begun and the command was not handed to raft.
//   - api.ErrOutcomeUnknown: the entry was handed to raft, then leadership was
//     lost, raft shut down, or ctx ended: it may still commit. When ctx ended
//     the error also wraps ctx.Err().
//   - ctx.Err() alone: ctx ended before the coalescer took the command, so
//     it was never proposed.
//
// Business outcomes (queue full, not in flight, ...) are in Result.Err.
func (h *Host) Propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
	o, err := h.propose(ctx, func() *proposal { return newProposal(cmd) })
	if err != nil {
		return fsm.Result{}, err
	}
	return o.res, o.err
}

// ProposeGroup is Propose for several commands at once: each result and
// error is that of the command at the same index, as Propose would return
// it. Commands go into one entry together, in order, unless together they
// pass MaxBatchBytes; then they are cut into consecutive groups that each
// fit (a larger command goes alone), proposed at once, each succeeding or
// failing as a whole. A forwarded batch is proposed this way, so that it
// waits for one commit rather than for whichever entries its commands
// happened to join.
func (h *Host) ProposeGroup(ctx context.Context, cmds []fsm.Command) ([]fsm.Result, []error) {
	results, errs := make([]fsm.Result, len(cmds)), make([]error, len(cmds))
	group := func(from, to, size int) {
		o, err := h.propose(ctx, func() *proposal { return newGroupProposal(cmds[from:to], size) })
		if err == nil {
			err = o.err
		}
		for i := from; i < to; i++ {
			if errs[i] = err; err == nil {
				results[i] = o.group[i-from]
			}
		}
	}
	var wg sync.WaitGroup
	from, size := 0, entryOverhead
	for i := range cmds {
		s := fsm.EncodedSize(&cmds[i])
		if i > from && size+s > h.opts.MaxBatchBytes {
			start, cut := from, size-entryOverhead
			wg.Go(func() { group(start, i, cut) })
			from, size = i, entryOverhead
		}
		size += s
	}
	if from < len(cmds) {
		group(from, len(cmds), size-entryOverhead)
	}
	wg.Wait()
	return results, errs
}

// propose hands the proposal newP makes to the coalescer and waits for its
// outcome.
func (h *Host) propose(ctx context.Context, newP func() *proposal) (outcome, error) {
	if !h.intake.enter() {
		return outcome{}, fmt.Errorf("propose: %w", api.ErrShuttingDown)
	}
	defer h.intake.leave()
	if h.raft.State() != raft.Leader {
		return outcome{}, fmt.Errorf("propose: %w", api.ErrNotLeader)
	}
	if err := ctx.Err(); err != nil {
		return outcome{}, fmt.Errorf("propose: %w", err)
	}
	start := time.Now()
	p := newP()
	select {
	case h.proposeCh <- p:
	case <-ctx.Done():
		p.recycle()
		return outcome{}, fmt.Errorf("propose: %w", ctx.Err())
	case <-h.coalescerDone:
		p.recycle()
		return outcome{}, fmt.Errorf("propose: %w", api.ErrShuttingDown)
	}
	o, received, err := h.await(ctx, p)
	if received {
		p.recycle()
	}
	if err != nil {
		return outcome{}, err
	}
	h.metrics.applyLatency.Observe(time.Since(start).Seconds())
	return o, nil
}

// await waits for p's outcome. When ctx ends or the node stops first, an
// outcome that has already arrived still wins; otherwise a proposal the
// coalescer never took is withdrawn (known: not proposed), and one it took
// is reported as api.ErrOutcomeUnknown. received reports that the outcome was
// taken from p.done: the coalescer is then done with p.
func (h *Host) await(ctx context.Context, p *proposal) (o outcome, received bool, err error) {
	ready := func() (outcome, bool) {
		select {
		case o := <-p.done:
			return o, true
		default:
			return outcome{}, false
		}
	}
	var stopped error // why we stopped waiting, when it is not p.done
	select {
	case o := <-p.done:
		return o, true, nil
	case <-ctx.Done():
		if p.cancel() {
			return outcome{}, false, fmt.Errorf("propose: %w", ctx.Err())
		}
		stopped = ctx.Err()
	case <-h.coalescerDone:
		// The coalescer answers every proposal it took; one it never saw
		// after its final drain would wait forever.
		if p.cancel() {
			return outcome{}, false, fmt.Errorf("propose: %w", api.ErrShuttingDown)
		}
		select {
		case o := <-p.done:
			return o, true, nil
		case <-ctx.Done():
			stopped = ctx.Err()
		case <-h.raftDown:
			// raft may never answer an entry it still held (raft#498).
			stopped = raft.ErrRaftShutdown
		}
	}
	if o, ok := ready(); ok {
		return o, true, nil
	}
	return outcome{}, false, fmt.Errorf("propose: %w (%w)", api.ErrOutcomeUnknown, stopped)
}

// runCoalescer turns queued proposals into log entries: it takes the first
// waiting command, waits for one of MaxPendingApplies apply slots, then
// drains whatever else is already waiting (no timer) up to MaxBatchBytes
// into one entry. While every slot is busy, commands pile up in proposeCh,
// so entries grow with load and shrink to one command when idle.
func (h *Host) runCoalescer() {
	defer h.bg.Done()
	defer close(h.coalescerDone)
	slots := make(chan struct{}, h.opts.MaxPendingApplies)
	var scratch []fsm.Command
	var carry *proposal // taken, but did not fit the previous entry
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-h.proposeCh:
				if !first.take() {
					continue // its caller gave up before we got to it
				}
			case <-h.stopCoalescer:
				h.failQueued()
				return
			}
		}
		select {
		case slots <- struct{}{}:
		case <-h.stopCoalescer:
			first.finish(outcome{err: fmt.Errorf("propose: %w", api.ErrShuttingDown)})
			h.failQueued()
			return
		}
		batch := []*proposal{first}
		size := entryOverhead + first.size
	drain:
		for size < h.opts.MaxBatchBytes {
			select {
			case p := <-h.proposeCh:
				if !p.take() {
					continue
				}
				if size+p.size > h.opts.MaxBatchBytes {
					carry = p
					break drain
				}
				batch = append(batch, p)
				size += p.size
			default:
				break drain
			}
		}
		scratch = h.dispatch(batch, size, slots, scratch)
	}
}

// dispatch encodes batch as one entry stamped with leader time, hands it to
// raft and starts a waiter that releases the slot when the entry resolves.
// It returns the scratch slice for reuse.
func (h *Host) dispatch(batch []*proposal, size int, slots chan struct{}, scratch []fsm.Command) []fsm.Command {
	cmds := scratch[:0]
	for _, p := range batch {
		if p.group != nil {
			cmds = append(cmds, p.group...)
		} else {
			cmds = append(cmds, p.cmd)
		}
	}
	n := len(cmds)
	// Leader time is stamped here, on the leader, after any forwarding.
	e := fsm.Entry{Now: h.opts.Now().UnixNano(), Commands: cmds}
	// raft keeps Log.Data (log cache, replication), so every entry gets a
	// fresh buffer; only the command scratch is reused.
	data := fsm.EncodeEntry(make([]byte, 0, size+size/8+64), &e)
	clear(cmds) // drop references to message bodies until the next batch
	if cap(cmds) > scratchKeep {
		cmds = nil
	}

	h.metrics.entriesProposed.Inc()
	h.metrics.commandsPerEntry.Observe(float64(n))
	h.metrics.entryBytes.Observe(float64(len(data)))

	if !h.raftUsers.enter() { // cannot happen: the coalescer stops first
		for _, p := range batch {
			p.finish(outcome{err: fmt.Errorf("propose: %w", api.ErrShuttingDown)})
		}
		<-slots
		return cmds
	}
	fut := h.raft.Apply(data, h.opts.ApplyTimeout)
	go func() {
		defer h.raftUsers.leave()
		err := fut.Error()
		// The entry is resolved: let the next one go to raft while this
		// batch's callers are woken, which takes a while for a big batch.
		<-slots
		h.deliver(batch, fut, err)
	}()
	return cmds
}

// deliver gives every proposal in batch its own outcome of the resolved
// fut, whose Error() was err.
func (h *Host) deliver(batch []*proposal, fut raft.ApplyFuture, err error) {
	if err != nil {
		err = mapApplyError(err)
		for _, p := range batch {
			p.finish(outcome{err: err})
		}
		return
	}
	var fail error
	switch r := fut.Response().(type) {
	case []fsm.Result:
		n := 0
		for _, p := range batch {
			n += p.commands()
		}
		if len(r) == n {
			for _, p := range batch {
				if p.group != nil {
					k := len(p.group)
					p.finish(outcome{group: r[:k:k]})
					r = r[k:]
					continue
				}
				p.finish(outcome{res: r[0]})
				r = r[1:]
			}
			return
		}
		// Committed, but the answers cannot be matched to the callers.
		fail = fmt.Errorf("propose: %w: %d results for %d commands", api.ErrOutcomeUnknown, len(r), n)
	case error:
		// The FSM could not decode the entry; every replica rejects it the
		// same way, so nothing changed.
		fail = fmt.Errorf("propose: entry rejected by the state machine: %w", r)
	default:
		fail = fmt.Errorf("propose: %w: unexpected FSM response %T", api.ErrOutcomeUnknown, r)
	}
	h.log.Error("propose: bad FSM response", "index", fut.Index(), "err", fail)
	for _, p := range batch {
		p.finish(outcome{err: fail})
	}
}

// mapApplyError sorts raft's errors into "not written, retry anywhere" and
// "may or may not commit".
func mapApplyError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader),
		errors.Is(err, raft.ErrEnqueueTimeout),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("propose: %w (%w)", api.ErrNotLeader, err)
	default:
		// ErrLeadershipLost, ErrRaftShutdown: the entry may be in the log
		// of a majority and commit under the next leader.
		return fmt.Errorf("propose: %w (%w)", api.ErrOutcomeUnknown, err)
	}
}

// failQueued answers every proposal still waiting in proposeCh: none of them
// reached raft.
func (h *Host) failQueued() {
	for {
		select {
		case p := <-h.proposeCh:
			if p.take() {
				p.finish(outcome{err: fmt.Errorf("propose: %w", api.ErrShuttingDown)})
			}
		default:
			return
		}
	}
}
