package analytics

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumq/quorumq/online"
)

// momentsFields are the hash fields of a Moments, in RawMoments order.
var momentsFields = []string{"n", "mean", "m2", "m3", "m4"}

// mergeScript merges the accumulator in its own arguments (n, mean, m2,
// m3, m4 as text) into the hash KEYS[1], operation by operation as
// online.MergeMoments documents, stores the result as text and returns
// {'ok', n, mean, m2, m3, m4} as strings.
var mergeScript = redis.NewScript(dedupPrelude + `
local function f(x) return string.format('%.17g', x) end
local cur = redis.call('HMGET', KEYS[1], 'n', 'mean', 'm2', 'm3', 'm4')
for i = 1, 5 do
  if cur[i] and not tonumber(cur[i]) then
    return redis.error_reply('moments hash ' .. KEYS[1] .. ': field ' .. i .. ' is not a number')
  end
end
local an = tonumber(cur[1]) or 0
local bn = tonumber(ARGV[base])
if bn == 0 then
  if an == 0 then return {'ok', '0', '0', '0', '0', '0'} end
  return {'ok', cur[1], cur[2], cur[3], cur[4], cur[5]}
end
local bmean, bm2, bm3, bm4 = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3]), tonumber(ARGV[base + 4])
local n, mean, m2, m3, m4
if an == 0 then
  n, mean, m2, m3, m4 = bn, bmean, bm2, bm3, bm4
else
  local amean = tonumber(cur[2]) or 0
  local am2 = tonumber(cur[3]) or 0
  local am3 = tonumber(cur[4]) or 0
  local am4 = tonumber(cur[5]) or 0
  local na, nb = an, bn
  local nn = na + nb
  local d = bmean - amean
  local dn = d / nn
  local dn2 = dn * dn
  local nanb = na * nb
  mean = amean + nb * dn
  m2 = am2 + bm2 + d * dn * nanb
  m3 = am3 + bm3 + d * dn2 * nanb * (na - nb)
       + 3 * dn * (na * bm2 - nb * am2)
  m4 = am4 + bm4 + d * dn2 * dn * nanb * (na * na - nanb + nb * nb)
       + 6 * dn2 * (na * na * bm2 + nb * nb * am2)
       + 4 * dn * (na * bm3 - nb * am3)
  n = an + bn
end
local r = {'ok', string.format('%d', n), f(mean), f(m2), f(m3), f(m4)}
redis.call('HSET', KEYS[1], 'n', r[2], 'mean', r[3], 'm2', r[4], 'm3', r[5], 'm4', r[6])
return r
`)

// Moments is a moments accumulator in the Redis hash Key (fields n, mean,
// m2, m3, m4), shared by any number of writers.
type Moments struct {
	rdb redis.Cmdable
	key string
	// DedupWindow > 0 makes MergeBatch skip the ids it merged within the
	// window (see the package documentation). 0: every item is merged.
	DedupWindow time.Duration
}

// NewMoments returns the accumulator in the hash key.
func NewMoments(rdb redis.Cmdable, key string) *Moments {
	return &Moments{rdb: rdb, key: key}
}

// Key returns the hash's name.
func (m *Moments) Key() string { return m.key }

// Merge merges part into the hash atomically and returns the new state,
// which is bit for bit online.MergeMoments(old, part).
func (m *Moments) Merge(ctx context.Context, part online.RawMoments) (online.RawMoments, error) {
	if err := part.Validate(); err != nil {
		return online.RawMoments{}, err
	}
	b, err := newBatchCall(m.rdb, mergeScript, 0, m.key, nil, 0)
	if err != nil {
		return online.RawMoments{}, err
	}
	b.argsFor = func([]bool) ([]string, []any, bool) { return []string{m.key}, rawArgs(part), true }
	res, _, err := b.run(ctx)
	if err != nil {
		return online.RawMoments{}, fmt.Errorf("analytics: merging into %s: %w", m.key, err)
	}
	return parseMergeReply(res)
}

// MergeBatch folds xs into a local accumulator and merges it atomically;
// ids[i] is the message id of xs[i]. With a DedupWindow, items whose id was
// merged within the window (or repeats within xs) are left out; without
// one, ids may be nil. It returns the hash's new state (the old one when
// nothing was merged). A non-finite x is an error and merges nothing.
func (m *Moments) MergeBatch(ctx context.Context, ids []string, xs []float64) (online.RawMoments, BatchResult, error) {
	var state online.RawMoments
	var total BatchResult
	for _, c := range chunks(len(xs), maxBatchIDs) {
		var cids []string
		if ids != nil {
			cids = ids[c[0]:c[1]]
		}
		s, r, err := m.mergeChunk(ctx, cids, xs[c[0]:c[1]])
		if err != nil {
			return state, total, err
		}
		state = s
		total.Applied += r.Applied
		total.Duplicates += r.Duplicates
	}
	if len(xs) == 0 {
		s, err := m.Get(ctx)
		return s, total, err
	}
	return state, total, nil
}

func (m *Moments) mergeChunk(ctx context.Context, ids []string, xs []float64) (online.RawMoments, BatchResult, error) {
	b, err := newBatchCall(m.rdb, mergeScript, m.DedupWindow, m.key, ids, len(xs))
	if err != nil {
		return online.RawMoments{}, BatchResult{}, err
	}
	var foldErr error
	b.argsFor = func(keep []bool) ([]string, []any, bool) {
		var acc online.Moments
		for i, k := range keep {
			if k {
				if err := acc.Add(xs[i]); err != nil {
					foldErr = err
					return nil, nil, false
				}
			}
		}
		if acc.Count() == 0 {
			return nil, nil, false
		}
		return []string{m.key}, rawArgs(acc.Raw()), true
	}
	res, r, err := b.run(ctx)
	if foldErr != nil {
		return online.RawMoments{}, BatchResult{}, foldErr
	}
	if err != nil {
		return online.RawMoments{}, BatchResult{}, fmt.Errorf("analytics: merging into %s: %w", m.key, err)
	}
	if res == nil {
		s, err := m.Get(ctx)
		return s, r, err
	}
	s, err := parseMergeReply(res)
	return s, r, err
}

// Get reads the hash; a missing hash is the empty accumulator.
func (m *Moments) Get(ctx context.Context) (online.RawMoments, error) {
	return ReadMoments(ctx, m.rdb, m.key)
}

// ReadMoments reads the moments hash key; a missing hash is the empty
// accumulator. The state is checked with RawMoments.Validate.
func ReadMoments(ctx context.Context, rdb redis.Cmdable, key string) (online.RawMoments, error) {
	vals, err := rdb.HMGet(ctx, key, momentsFields...).Result()
	if err != nil {
		return online.RawMoments{}, fmt.Errorf("analytics: reading %s: %w", key, err)
	}
	strs := make([]any, len(vals))
	for i, v := range vals {
		if v == nil {
			v = "0"
		}
		strs[i] = v
	}
	r, err := parseRaw(strs)
	if err != nil {
		return r, fmt.Errorf("analytics: %s: %w", key, err)
	}
	return r, r.Validate()
}

// Reset deletes the hash and its sets of merged ids.
func (m *Moments) Reset(ctx context.Context) error {
	if err := m.rdb.Del(ctx, m.key).Err(); err != nil {
		return err
	}
	return resetSeen(ctx, m.rdb, m.key)
}

// NaiveMerge is the tutorial's race, kept to demonstrate it: it reads the
// hash, merges part in Go and writes the result back, in three separate
// steps. Two writers that interleave (Mr. T and Bozo both read n = 0, both
// write n = 1) lose an update. between, if not nil, runs after the read
// and before the write, so a test can force the interleaving. Use
// Moments.Merge instead.
func NaiveMerge(ctx context.Context, rdb redis.Cmdable, key string, part online.RawMoments, between func()) error {
	old, err := ReadMoments(ctx, rdb, key)
	if err != nil {
		return err
	}
	if between != nil {
		between()
	}
	r := online.MergeMoments(old, part)
	return rdb.HSet(ctx, key, "n", r.N, "mean", formatFloat(r.Mean), "m2", formatFloat(r.M2),
		"m3", formatFloat(r.M3), "m4", formatFloat(r.M4)).Err()
}

func rawArgs(r online.RawMoments) []any {
	return []any{strconv.FormatInt(r.N, 10), formatFloat(r.Mean), formatFloat(r.M2), formatFloat(r.M3), formatFloat(r.M4)}
}

func parseMergeReply(res []any) (online.RawMoments, error) {
	if len(res) != 6 || res[0] != "ok" {
		return online.RawMoments{}, fmt.Errorf("analytics: unexpected merge reply %v", res)
	}
	return parseRaw(res[1:])
}

// parseRaw reads n, mean, m2, m3, m4 from their text.
func parseRaw(vals []any) (online.RawMoments, error) {
	var f [5]float64
	var n int64
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			return online.RawMoments{}, fmt.Errorf("field %s: not a string: %v", momentsFields[i], v)
		}
		if i == 0 {
			var err error
			if n, err = strconv.ParseInt(s, 10, 64); err != nil {
				x, ferr := strconv.ParseFloat(s, 64)
				if ferr != nil || x != float64(int64(x)) {
					return online.RawMoments{}, fmt.Errorf("field n: %q is not an integer", s)
				}
				n = int64(x)
			}
			continue
		}
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return online.RawMoments{}, fmt.Errorf("field %s: %q is not a number", momentsFields[i], s)
		}
		f[i] = x
	}
	return online.RawMoments{N: n, Mean: f[1], M2: f[2], M3: f[3], M4: f[4]}, nil
}
