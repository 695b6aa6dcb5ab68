package analytics

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// SeenPrefix starts the names of the sets of merged message ids (see the
// package documentation).
const SeenPrefix = "quorumq:seen:"

// BatchResult tells what a batch method did.
type BatchResult struct {
	// Applied is the number of items merged.
	Applied int
	// Duplicates is the number of items skipped because their id was
	// merged before (within the dedup window) or appears earlier in the
	// same batch.
	Duplicates int
}

// dedupPrelude starts every batch script. ARGV[1] is the window in
// seconds (0: no dedup), ARGV[2] the base name of the seen sets, ARGV[3]
// the number k of ids, ARGV[4..3+k] the ids; the script's own arguments
// start at ARGV[base]. When an id was merged within the window the script
// returns {'dup', id...} and changes nothing; otherwise it records the ids
// and goes on. `seen` is the set the ids went to.
const dedupPrelude = `
local window = tonumber(ARGV[1])
local k = tonumber(ARGV[3])
local base = 4 + k
if window > 0 and k > 0 then
  local now = tonumber(redis.call('TIME')[1])
  local gen = math.floor(now / window)
  local cur = ARGV[2] .. ':' .. string.format('%d', gen)
  local prev = ARGV[2] .. ':' .. string.format('%d', gen - 1)
  local dup = {}
  for i = 4, 3 + k do
    if redis.call('SISMEMBER', cur, ARGV[i]) == 1 or redis.call('SISMEMBER', prev, ARGV[i]) == 1 then
      dup[#dup + 1] = ARGV[i]
    end
  end
  if #dup > 0 then
    return {'dup', unpack(dup)}
  end
  for i = 4, 3 + k, 500 do
    redis.call('SADD', cur, unpack(ARGV, i, math.min(i + 499, 3 + k)))
  end
  redis.call('EXPIRE', cur, 2 * window + 60)
end
`

// maxBatchIDs bounds the ids of one script call (Lua's unpack and the
// script's run time); larger batches are split.
const maxBatchIDs = 5000

// batchCall runs a batch script over the items whose keep flag is set,
// retrying without the ids the script reports as merged before.
//
// argsFor(keep) returns the script's keys and its own arguments for the
// items kept (ok false: nothing to do). run returns the reply of the call
// that applied the batch.
type batchCall struct {
	rdb     redis.Cmdable
	script  *redis.Script
	window  time.Duration
	name    string // key or prefix, for the seen sets
	ids     []string
	keep    []bool
	dupes   int
	argsFor func(keep []bool) (keys []string, args []any, ok bool)
}

// errMaxRounds is returned when the dup/retry loop does not settle, which
// means another writer keeps merging the same ids.
var errMaxRounds = errors.New("analytics: batch did not settle: its ids keep being merged by someone else")

func newBatchCall(rdb redis.Cmdable, script *redis.Script, window time.Duration, name string, ids []string, n int) (*batchCall, error) {
	if window > 0 && len(ids) != n {
		return nil, fmt.Errorf("analytics: %d ids for %d items", len(ids), n)
	}
	if window > 0 && window < time.Second {
		return nil, fmt.Errorf("analytics: dedup window %v is below one second", window)
	}
	b := &batchCall{rdb: rdb, script: script, window: window, name: name, ids: ids, keep: make([]bool, n)}
	seen := make(map[string]bool, len(ids))
	for i := range b.keep {
		if window > 0 {
			if seen[ids[i]] {
				b.dupes++
				continue
			}
			seen[ids[i]] = true
		}
		b.keep[i] = true
	}
	return b, nil
}

// run calls the script until it applies the batch (or there is nothing
// left) and returns the script's reply (nil when nothing was sent).
func (b *batchCall) run(ctx context.Context) ([]any, BatchResult, error) {
	for range 10 {
		keys, own, ok := b.argsFor(b.keep)
		if !ok {
			return nil, b.result(), nil
		}
		var ids []string
		if b.window > 0 {
			for i, k := range b.keep {
				if k {
					ids = append(ids, b.ids[i])
				}
			}
		}
		args := make([]any, 0, 3+len(ids)+len(own))
		args = append(args, strconv.FormatInt(int64(b.window/time.Second), 10), SeenPrefix+b.name, strconv.Itoa(len(ids)))
		for _, id := range ids {
			args = append(args, id)
		}
		args = append(args, own...)
		res, err := b.script.Run(ctx, b.rdb, keys, args...).Slice()
		if err != nil {
			return nil, BatchResult{}, err
		}
		if len(res) > 0 && res[0] == "dup" {
			dup := make(map[string]bool, len(res)-1)
			for _, v := range res[1:] {
				s, _ := v.(string)
				dup[s] = true
			}
			for i, k := range b.keep {
				if k && dup[b.ids[i]] {
					b.keep[i] = false
					b.dupes++
				}
			}
			continue
		}
		return res, b.result(), nil
	}
	return nil, BatchResult{}, errMaxRounds
}

func (b *batchCall) result() BatchResult {
	applied := 0
	for _, k := range b.keep {
		if k {
			applied++
		}
	}
	return BatchResult{Applied: applied, Duplicates: b.dupes}
}

// resetSeen deletes the seen sets of name.
func resetSeen(ctx context.Context, rdb redis.Cmdable, name string) error {
	_, err := deleteMatching(ctx, rdb, escapeGlob(SeenPrefix+name+":")+"*")
	return err
}

// deleteMatching deletes the keys matching a SCAN pattern and returns how
// many there were.
func deleteMatching(ctx context.Context, rdb redis.Cmdable, pattern string) (int, error) {
	n := 0
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := rdb.Unlink(ctx, batch...).Err()
		n += len(batch)
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return n, err
	}
	return n, flush()
}

// escapeGlob quotes the glob characters of s for SCAN MATCH.
func escapeGlob(s string) string {
	var out []byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*', '?', '[', ']', '\\', '^':
			out = append(out, '\\', c)
		default:
			out = append(out, c)
		}
	}
	return string(out)
}

// formatFloat writes x so that it reads back bit for bit.
func formatFloat(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// chunks splits [0, n) into ranges of at most size.
func chunks(n, size int) [][2]int {
	var out [][2]int
	for lo := 0; lo < n; lo += size {
		out = append(out, [2]int{lo, min(lo+size, n)})
	}
	return out
}
