package analytics

import (
	"context"
	"errors"
	"time"
)

// errStopped is returned to tasks that submit after the batcher stopped.
var errStopped = errors.New("analytics: batcher stopped")

// pending is one message waiting for its batch.
type pending struct {
	id   string
	val  any
	done chan error
}

// batcher collects items from concurrent tasks and flushes them together:
// when max items wait, or every seconds after the first of a batch. Each
// submitter waits for the flush of its batch and gets its error. One batch
// is flushed at a time.
type batcher struct {
	max   int
	every time.Duration
	flush func([]*pending) error
	in    chan *pending
	quit  chan struct{}
	done  chan struct{}
}

func newBatcher(max int, every time.Duration, flush func([]*pending) error) *batcher {
	b := &batcher{max: max, every: every, flush: flush, in: make(chan *pending), quit: make(chan struct{}), done: make(chan struct{})}
	go b.loop()
	return b
}

// submit adds an item and waits until its batch is flushed. If ctx ends
// first it returns ctx's error; the item may still be flushed.
func (b *batcher) submit(ctx context.Context, id string, val any) error {
	p := &pending{id: id, val: val, done: make(chan error, 1)}
	select {
	case b.in <- p:
	case <-b.quit:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop flushes what waits and ends the loop.
func (b *batcher) stop() {
	select {
	case <-b.quit:
	default:
		close(b.quit)
	}
	<-b.done
}

func (b *batcher) loop() {
	defer close(b.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var buf []*pending
	for {
		select {
		case p := <-b.in:
			if len(buf) == 0 {
				timer.Reset(b.every)
			}
			buf = append(buf, p)
			if len(buf) < b.max {
				continue
			}
		case <-timer.C:
		case <-b.quit:
			b.run(buf)
			return
		}
		timer.Stop()
		b.run(buf)
		buf = nil
	}
}

func (b *batcher) run(buf []*pending) {
	if len(buf) == 0 {
		return
	}
	err := b.flush(buf)
	for _, p := range buf {
		p.done <- err
	}
}
