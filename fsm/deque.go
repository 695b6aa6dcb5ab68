package fsm

// deque is a FIFO of T stored in fixed-size chunks: push and pop at either end
// are O(1) and never move other elements, and a point-in-time view costs one
// copy of the chunk pointer list (O(n/chunkSize)).
//
// Copy-on-write: every chunk records the generation it was written in. Taking
// a view bumps the deque's generation, so any later write to a chunk from an
// older generation first copies that chunk. Views therefore stay immutable
// while the deque keeps changing, which is what lets a snapshot be persisted
// concurrently with Apply.
type deque[T any] struct {
	chunks []*chunk[T]
	head   int // index of the first element in chunks[0]
	n      int
	gen    uint64
}

// chunkSize: 255 elements and the generation fill Go's 8 KiB size class
// exactly for 32-byte elements and nearly for 24-byte ones (a 128-element
// chunk of 32-byte items took the 4864-byte class: 18 % waste).
const chunkSize = 255

type chunk[T any] struct {
	gen   uint64
	items [chunkSize]T
}

// dequeView is an immutable point-in-time copy of a deque.
type dequeView[T any] struct {
	chunks []*chunk[T]
	head   int
	n      int
}

func (d *deque[T]) Len() int { return d.n }

// owned returns chunk i, copying it first if a view may still see it.
func (d *deque[T]) owned(i int) *chunk[T] {
	c := d.chunks[i]
	if c.gen != d.gen {
		cp := *c
		cp.gen = d.gen
		c = &cp
		d.chunks[i] = c
	}
	return c
}

func (d *deque[T]) PushBack(v T) {
	pos := d.head + d.n
	ci := pos / chunkSize
	if ci == len(d.chunks) {
		d.chunks = append(d.chunks, &chunk[T]{gen: d.gen})
	}
	d.owned(ci).items[pos%chunkSize] = v
	d.n++
}

func (d *deque[T]) PushFront(v T) {
	if d.head == 0 {
		switch {
		case len(d.chunks) == 0:
			d.chunks = append(d.chunks, &chunk[T]{gen: d.gen})
		case d.n == 0:
			d.chunks = d.chunks[:1]
		default:
			// Rare (messages returning to the head); copying the pointer
			// list here keeps every other operation simple.
			chunks := make([]*chunk[T], 0, len(d.chunks)+1)
			chunks = append(chunks, &chunk[T]{gen: d.gen})
			d.chunks = append(chunks, d.chunks...)
		}
		d.head = chunkSize
	}
	d.head--
	d.owned(0).items[d.head] = v
	d.n++
}

// Front returns the first element; the deque must not be empty.
func (d *deque[T]) Front() T { return d.chunks[0].items[d.head] }

// PopFront removes and returns the first element; the deque must not be empty.
func (d *deque[T]) PopFront() T {
	c := d.owned(0)
	v := c.items[d.head]
	var zero T
	c.items[d.head] = zero // let the GC have the payload
	d.head++
	d.n--
	if d.n == 0 {
		// Keep the (owned) chunk for reuse; drop the rest.
		d.chunks[0] = c
		clear(d.chunks[1:])
		d.chunks = d.chunks[:1]
		d.head = 0
		return v
	}
	if d.head == chunkSize {
		d.chunks[0] = nil
		d.chunks = d.chunks[1:]
		d.head = 0
	}
	return v
}

// View returns an immutable copy that later writes do not affect.
func (d *deque[T]) View() dequeView[T] {
	v := dequeView[T]{chunks: make([]*chunk[T], len(d.chunks)), head: d.head, n: d.n}
	copy(v.chunks, d.chunks)
	d.gen++
	return v
}

// Each calls fn for every element in order until fn returns false.
func (v dequeView[T]) Each(fn func(T) bool) {
	pos := v.head
	for i := 0; i < v.n; i++ {
		if !fn(v.chunks[pos/chunkSize].items[pos%chunkSize]) {
			return
		}
		pos++
	}
}

// Each calls fn for every element of the live deque in order until fn returns false.
func (d *deque[T]) Each(fn func(T) bool) {
	dequeView[T]{chunks: d.chunks, head: d.head, n: d.n}.Each(fn)
}

// Update calls fn with a copy of every element in order; when fn returns
// true the element is replaced by the copy, its chunk copied first if a
// view still shares it.
func (d *deque[T]) Update(fn func(*T) bool) {
	pos := d.head
	for i := 0; i < d.n; i++ {
		ci, k := pos/chunkSize, pos%chunkSize
		v := d.chunks[ci].items[k]
		if fn(&v) {
			d.owned(ci).items[k] = v
		}
		pos++
	}
}

// At returns element i, counted from the front; 0 <= i < Len().
func (d *deque[T]) At(i int) T {
	pos := d.head + i
	return d.chunks[pos/chunkSize].items[pos%chunkSize]
}

// At returns element i of the view, counted from the front.
func (v dequeView[T]) At(i int) T {
	pos := v.head + i
	return v.chunks[pos/chunkSize].items[pos%chunkSize]
}

// Len is the number of elements in the view.
func (v dequeView[T]) Len() int { return v.n }
