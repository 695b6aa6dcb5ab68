package httpapi

import (
	"encoding/json"
	"math"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
)

// config is /config?queue=NAME: a queue's replicated settings.
//
// Without setting parameters it answers the settings as JSON:
//
//	{"queue":"jobs","lease":"30s","max_attempts":5,"dead_letter":"jobs.dead","max_depth":0,"max_bytes":0,"overflow":"reject"}
//
// With any of them it proposes a change of just those settings, applied
// atomically in the state machine (concurrent changes of different settings
// do not undo each other), and answers the resulting settings:
//
//   - lease=DUR: default lease of a /get or /mget without lease= (0s: none,
//     such gets pop); at most 12h.
//   - max_attempts=N: deliveries after which a nacked or expired message is
//     dead (0: unlimited).
//   - dead_letter=NAME: queue that receives dead messages (empty: they are
//     dropped and counted in dead); it must differ from the queue itself.
//   - max_depth=N, max_bytes=N, overflow=reject|evict-oldest: the queue's
//     own limits. While all three are unset (0, 0, reject) the node's
//     --max-depth, --max-bytes and --overflow-policy apply; once any is set,
//     the queue's three values replace the node's.
//
// GET and POST behave the same; HEAD is refused.
func (q *queueAPI) config(r *request) (reply, error) {
	queue, err := r.p.queue()
	if err != nil {
		return reply{}, err
	}
	cfg, fields, err := configChange(queue, r.p)
	if err != nil {
		return reply{}, err
	}
	if fields == 0 {
		if err := q.consistentRead(r); err != nil {
			return reply{}, err
		}
		return configReply(queue, q.o.Queue.Stats(queue).Config), nil
	}
	if _, err := q.propose(r, fsm.Command{Op: fsm.OpConfigure, Queue: queue, Config: cfg, ConfigFields: fields}); err != nil {
		return reply{}, putError(queue, err)
	}
	// Propose returns once the change is applied here, so this is current.
	return configReply(queue, q.o.Queue.Stats(queue).Config), nil
}

// configChange reads the setting parameters into a config holding just
// those values and the mask naming them.
func configChange(queue string, p params) (cfg fsm.QueueConfig, fields fsm.ConfigField, err error) {
	if d, ok, err := p.duration("lease", MaxLease); err != nil {
		return cfg, 0, err
	} else if ok {
		cfg.DefaultLease, fields = d, fields|fsm.ConfigDefaultLease
	}
	if n, ok, err := p.uint("max_attempts", math.MaxUint32); err != nil {
		return cfg, 0, err
	} else if ok {
		cfg.MaxAttempts, fields = uint32(n), fields|fsm.ConfigMaxAttempts
	}
	if v, ok, err := p.strict("dead_letter", api.ErrBadRequest); err != nil {
		return cfg, 0, err
	} else if ok {
		switch {
		case v == "":
		case v == queue:
			return cfg, 0, api.ErrBadRequest.Errorf("invalid dead_letter=%s: must name another queue", api.Quote(v))
		case !api.ValidName(v):
			return cfg, 0, api.ErrBadRequest.Errorf("invalid dead_letter=%s: want [A-Za-z0-9._-]{1,64}", api.Quote(v))
		}
		cfg.DeadLetter, fields = v, fields|fsm.ConfigDeadLetter
	}
	if n, ok, err := p.uint("max_depth", math.MaxInt64); err != nil {
		return cfg, 0, err
	} else if ok {
		cfg.Limits.MaxDepth, fields = int64(n), fields|fsm.ConfigMaxDepth
	}
	if n, ok, err := p.uint("max_bytes", math.MaxInt64); err != nil {
		return cfg, 0, err
	} else if ok {
		cfg.Limits.MaxBytes, fields = int64(n), fields|fsm.ConfigMaxBytes
	}
	if v, ok := p.get("overflow"); ok {
		var policy fsm.OverflowPolicy
		if policy.UnmarshalText([]byte(v)) != nil {
			return cfg, 0, api.ErrBadRequest.Errorf("invalid overflow=%s: want reject or evict-oldest", api.Quote(v))
		}
		cfg.Limits.Policy, fields = policy, fields|fsm.ConfigPolicy
	}
	return cfg, fields, nil
}

func configReply(queue string, cfg fsm.QueueConfig) reply {
	body, _ := json.Marshal(configOf(queue, cfg))
	return reply{contentType: typeJSON, body: append(body, '\n')}
}

// configOf is the JSON of a queue's settings, as /config and /queues
// spell them.
func configOf(queue string, cfg fsm.QueueConfig) api.QueueConfig {
	return api.QueueConfig{
		Queue:       queue,
		Lease:       api.FormatDuration(cfg.DefaultLease),
		MaxAttempts: cfg.MaxAttempts,
		DeadLetter:  cfg.DeadLetter,
		MaxDepth:    cfg.Limits.MaxDepth,
		MaxBytes:    cfg.Limits.MaxBytes,
		Overflow:    cfg.Limits.Policy.String(),
	}
}
