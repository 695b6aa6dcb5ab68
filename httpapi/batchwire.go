package httpapi

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
)

// The leader's side of batched forwarding (batch.go is the follower's):
// POST api.PathPropose. The body is the commands of a batch, framed as a
// log entry (fsm.EncodeEntry, leader time 0): the log's own encoding,
// already stable across versions, so the route needs no format of its
// own. The leader proposes every command as if a client had sent it here,
// concurrently, so that raft's coalescer groups them into as few log
// entries as it can, and answers one result per command, in order
// (appendResults). A batch it cannot serve at all is answered with an
// ordinary error: 503 NOT_LEADER when it does not lead (nothing was
// proposed), 400 for a body it cannot read, 413 for one over the route's
// limit.

const (
	// maxBatchCommands is the most commands one batch carries.
	maxBatchCommands = 512
	// maxBatchBytes is the encoded size a batch is closed at; a command
	// larger than that goes alone.
	maxBatchBytes = 1 << 20
	// maxBatchResultBytes bounds the results a follower reads back: ids
	// of large /mputs at most, one byte per consecutive id.
	maxBatchResultBytes = 16 << 20
	// resultsVersion is the first byte of a batch's results.
	resultsVersion = 1
)

// Flags of one command's result.
const (
	resultDuplicate = 1 << iota // fsm.Result.Duplicate
	// resultFinal: the error is the leader's final word on the request
	// (its budget of queued bytes), to be answered as is.
	resultFinal
	// resultProposeErr: the error is the proposal's (not the leader,
	// outcome unknown, ...), not the command's business outcome
	// (fsm.Result.Err).
	resultProposeErr
)

// batchable reports whether a command may come in a batch: the ops of
// the routes a follower batches (route.batch).
func batchable(op fsm.Op) bool {
	switch op {
	case fsm.OpPut, fsm.OpAck, fsm.OpNack, fsm.OpTouch:
		return true
	}
	return false
}

// encodeCommands frames a batch's commands for api.PathPropose.
func encodeCommands(buf []byte, cmds []fsm.Command) []byte {
	return fsm.EncodeEntry(buf, &fsm.Entry{Commands: cmds})
}

// commandResult is one command's outcome as the leader answers it.
type commandResult struct {
	res fsm.Result // IDs, Duplicate, Count, Err
	// err is the proposal's error, or (final) the leader's refusal.
	err   error
	final bool
}

// appendResults encodes results: the version, the count, then for each
// the flags, the error's token and text when there is one ("" none), the
// ids (delta-encoded: those of a put are consecutive) and the count.
func appendResults(buf []byte, results []commandResult) []byte {
	buf = append(buf, resultsVersion)
	buf = binary.AppendUvarint(buf, uint64(len(results)))
	for _, r := range results {
		var flags byte
		if r.res.Duplicate {
			flags |= resultDuplicate
		}
		err := r.res.Err
		if r.err != nil {
			err, flags = r.err, flags|resultProposeErr
			if r.final {
				flags |= resultFinal
			}
		}
		buf = append(buf, flags)
		token, text := "", ""
		if err != nil {
			k, t, _ := api.Classify(err)
			token, text = k.Token, t
		}
		buf = appendWireString(buf, token)
		if token != "" {
			buf = appendWireString(buf, text)
		}
		buf = binary.AppendUvarint(buf, uint64(len(r.res.IDs)))
		var prev uint64
		for _, id := range r.res.IDs {
			buf = binary.AppendVarint(buf, int64(id-prev))
			prev = id
		}
		buf = binary.AppendUvarint(buf, uint64(r.res.Count))
	}
	return buf
}

func appendWireString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// errBadResults is a batch answer that does not decode: the follower
// cannot tell what was applied.
var errBadResults = errors.New("malformed batch results")

// decodeResults reads appendResults' output for a batch of n commands.
// Errors come back as their api kinds with the leader's text.
func decodeResults(b []byte, n int) ([]commandResult, error) {
	r := wireReader{b: b}
	if v := r.byte(); v != resultsVersion {
		return nil, fmt.Errorf("%w: version %d", errBadResults, v)
	}
	if got := r.uvarint(); got != uint64(n) || r.err != nil {
		return nil, fmt.Errorf("%w: %d results for %d commands", errBadResults, got, n)
	}
	out := make([]commandResult, n)
	for i := range out {
		c := &out[i]
		flags := r.byte()
		c.res.Duplicate = flags&resultDuplicate != 0
		if token := r.string(); token != "" {
			text := r.string()
			k := api.Decode(token, 0)
			if k == nil {
				k = api.ErrInternal
			}
			err := k.Errorf("%s", text)
			switch {
			case flags&resultProposeErr != 0:
				c.err, c.final = err, flags&resultFinal != 0
			default:
				c.res.Err = err
			}
		}
		ids := r.uvarint()
		if ids > uint64(len(r.b)) { // every id takes at least one byte
			return nil, fmt.Errorf("%w: %d ids", errBadResults, ids)
		}
		if ids > 0 {
			c.res.IDs = make([]uint64, ids)
			var prev uint64
			for j := range c.res.IDs {
				prev += uint64(r.varint())
				c.res.IDs[j] = prev
			}
		}
		c.res.Count = int(r.uvarint())
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", errBadResults, len(r.b))
	}
	return out, r.err
}

// wireReader reads the result framing; the first failure sticks.
type wireReader struct {
	b   []byte
	err error
}

func (r *wireReader) fail() {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated", errBadResults)
	}
	r.b = nil
}

func (r *wireReader) byte() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *wireReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *wireReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *wireReader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// proposeRoute is POST api.PathPropose on the leader: a follower's batch
// of forwarded commands (see the top of this file). The follower checked
// each client's token before it built the command: the route itself is
// gated as a node-to-node route (guard, Options.InternalAuth).
func (q *queueAPI) proposeRoute(r *request) (reply, error) {
	if !q.o.Cluster.IsLeader() {
		return reply{}, api.ErrNotLeader.Errorf("not the leader: %s does not lead; retry the batch on the leader", q.o.Cluster.ID())
	}
	body, err := r.body()
	if err != nil {
		return reply{}, err
	}
	entry, err := fsm.DecodeEntry(body)
	if err != nil {
		return reply{}, api.ErrBadRequest.Errorf("batch: %v", err)
	}
	cmds := entry.Commands
	if len(cmds) == 0 || len(cmds) > maxBatchCommands {
		return reply{}, api.ErrBadRequest.Errorf("batch: %d commands, want 1 to %d", len(cmds), maxBatchCommands)
	}
	for i := range cmds {
		if !batchable(cmds[i].Op) {
			return reply{}, api.ErrBadRequest.Errorf("batch: command %d is a %s, which is never batched", i+1, cmds[i].Op)
		}
	}
	return reply{contentType: "application/octet-stream", body: appendResults(make([]byte, 0, 16*len(cmds)), q.proposeForwarded(cmds))}, nil
}

// proposeForwarded does for the commands of a batch what the leader does
// for forwarded requests of them: the budget check and the limits of puts
// are the leader's own, then the proposal, then the accounting of what was
// stored (metrics, the overflow log). The commands that pass the checks
// are proposed together when the Queue can (GroupProposer), so that the
// batch waits for one commit, else each on its own. The proposal is
// bounded by ProposeTimeout, never by the follower, which may stop
// waiting: a committed write must not become an unknown one here.
func (q *queueAPI) proposeForwarded(cmds []fsm.Command) []commandResult {
	results := make([]commandResult, len(cmds))
	send := make([]int, 0, len(cmds)) // the commands that passed the checks
	for i := range cmds {
		if err := q.checkForwarded(&cmds[i]); err != nil {
			results[i] = commandResult{err: err, final: true}
			continue
		}
		send = append(send, i)
	}
	ctx := q.deadlines.context(q.o.ProposeTimeout)
	gp, grouped := q.o.Queue.(GroupProposer)
	switch {
	case len(send) == 0:
	case grouped:
		group := make([]fsm.Command, len(send))
		for k, i := range send {
			group[k] = cmds[i]
		}
		res, errs := gp.ProposeGroup(ctx, group)
		for k, i := range send {
			results[i] = q.forwardedResult(&cmds[i], res[k], errs[k])
		}
	default:
		var wg sync.WaitGroup
		for _, i := range send {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := q.o.Queue.Propose(ctx, cmds[i])
				results[i] = q.forwardedResult(&cmds[i], res, err)
			}()
		}
		wg.Wait()
	}
	return results
}

// checkForwarded is the leader's check of a forwarded command before it is
// proposed: the budget of queued bytes, and its own limits on puts.
func (q *queueAPI) checkForwarded(cmd *fsm.Command) error {
	if cmd.Op != fsm.OpPut {
		return nil
	}
	if !q.unbudgeted() {
		var size int64
		for _, m := range cmd.Messages {
			size += int64(len(m))
		}
		if err := q.checkBudget(size, int64(len(cmd.Messages))); err != nil {
			return err
		}
	}
	cmd.Limits = q.o.Limits
	return nil
}

// forwardedResult is a forwarded command's answer from its proposal.
func (q *queueAPI) forwardedResult(cmd *fsm.Command, res fsm.Result, err error) commandResult {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = fmt.Errorf("%w: %s ran past %s: %w", api.ErrOutcomeUnknown, cmd.Op, q.o.ProposeTimeout, err)
	}
	if err == nil && cmd.Op == fsm.OpPut {
		q.stored(nil, cmd.Queue, res)
	}
	res.Evicted, res.Messages = nil, nil // the leader's business, never sent
	return commandResult{res: res, err: err}
}
