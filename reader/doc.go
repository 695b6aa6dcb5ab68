// Package reader is the Go rebuild of pysimplehttp's BaseReader: it reads a
// quorumq queue and runs a set of named tasks on every message, retrying
// only the tasks that failed, with a growing delay, until it gives up. It
// keeps BaseReader's JSON requeue envelope, so Go and Python readers can
// share a queue, but it works on leases instead of destructive gets, so a
// reader that dies loses nothing: its messages come back when their leases
// end.
//
//	cfg := reader.DefaultConfig()
//	cfg.Addrs = []string{"http://127.0.0.1:9001"}
//	cfg.Queue = "clicks"
//	cfg.Tasks = map[string]reader.Task{
//		"print": func(ctx context.Context, m *reader.Message) error {
//			fmt.Printf("%s\n", m.Body)
//			return nil
//		},
//	}
//	r, err := reader.New(cfg)
//	...
//	err = r.Run(ctx) // until ctx ends
//
// A delivery runs every task named in its envelope, in order; what failed
// is given back with a growing delay and only those tasks run again, until
// MaxTries, when the reader gives up (Config.GiveUp, then DeadLetter).
// Messages are leased, touched while they run and acked in batches;
// requests go to the leader, found through /cluster/status. DESIGN.md
// describes the flows, the envelope and the trade-offs.
package reader
