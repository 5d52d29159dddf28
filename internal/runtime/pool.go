package runtime

import (
	goruntime "runtime"
	"sync/atomic"
	"time"
)

// workerPool runs the parts of one large layer on several goroutines. One
// pool belongs to one interpreter; its goroutines are started once, when the
// interpreter is built, and stopped by Close (or when the interpreter is
// garbage collected). Running a layer creates no goroutine and allocates
// nothing: the caller publishes the task, wakes the workers, takes part in
// the work itself and waits for the parts to be done.
//
// Parts are claimed one at a time, so the caller never waits for a worker
// that has not started: it takes the parts nobody took. Between layers of
// an invocation, workers poll for the next layer (layers follow each other
// within microseconds; waking a blocked goroutine costs more than that),
// then nap in short timer sleeps, so that on a core shared with another
// process they give the core up; the caller waiting for a part does the
// same. After an invocation, workers block until the next one wakes them.
// Threads beyond the cores the process gets make things slower, not faster.
type workerPool struct {
	threads int // including the calling goroutine

	task parallelTask
	// state packs the generation of the current run (high 24 bits), its
	// number of parts (20 bits) and the next part to take (20 bits), so a
	// worker can claim a part with one compare-and-swap and never takes a
	// part of a run other than the one it saw.
	state  atomic.Uint64
	done   atomic.Int64 // parts of the current run finished
	closed atomic.Bool
	// active is set while the interpreter invokes: workers then keep
	// polling between layers instead of blocking (blocking, and waking up,
	// costs more than a layer, and the runtime may allocate for it).
	active atomic.Bool

	workers []*poolWorker
}

type poolWorker struct {
	sleeping atomic.Bool
	wake     chan struct{}
}

// parallelTask is one layer's work, split into parts; worker is the index
// (0 for the calling goroutine) of the goroutine running the part, so a
// kernel can hand each worker its own scratch memory.
type parallelTask interface {
	runPart(worker, part int)
}

func newWorkerPool(threads int) *workerPool {
	p := &workerPool{threads: max(threads, 1)}
	for i := 1; i < p.threads; i++ {
		w := &poolWorker{wake: make(chan struct{}, 1)}
		p.workers = append(p.workers, w)
		go p.loop(i, w)
	}
	return p
}

// Threads is the number of goroutines that run a layer's parts.
func (p *workerPool) Threads() int {
	if p == nil {
		return 1
	}
	return p.threads
}

const (
	poolPartBits = 20
	poolMaxParts = 1<<poolPartBits - 1
)

func poolGen(s uint64) uint64 { return s >> (2 * poolPartBits) }

func (p *workerPool) loop(id int, w *poolWorker) {
	seen := poolGen(p.state.Load())
	for {
		var since time.Time
		for spins := 0; poolGen(p.state.Load()) == seen && !p.closed.Load(); spins++ {
			if spins%64 != 63 {
				continue
			}
			// Poll for a while (longer during an invocation), yielding
			// to other goroutines, then sleep: on a machine whose cores are
			// busy, polling would take the core the caller needs.
			now := time.Now()
			if since.IsZero() {
				since = now
			}
			active := p.active.Load()
			budget := poolIdleSpin
			if active {
				budget = poolActiveSpin
			}
			if now.Sub(since) < budget {
				goruntime.Gosched()
				continue
			}
			if active {
				// During an invocation, nap instead of blocking: a timer
				// sleep needs nothing from the runtime's caches.
				time.Sleep(poolNap)
				continue
			}
			w.sleeping.Store(true)
			if poolGen(p.state.Load()) == seen && !p.closed.Load() {
				<-w.wake
			}
			w.sleeping.Store(false)
			since = time.Time{}
		}
		if p.closed.Load() {
			return
		}
		seen = poolGen(p.state.Load())
		p.work(id, seen)
	}
}

// Polling budgets: a worker between layers of an invocation, a worker
// after one, and the caller waiting for the last parts of a layer; past
// them, naps of poolNap.
const (
	poolActiveSpin = 200 * time.Microsecond
	poolIdleSpin   = 50 * time.Microsecond
	poolWaitSpin   = 200 * time.Microsecond
	poolNap        = 10 * time.Microsecond
)

// work takes parts of run gen until none are left.
func (p *workerPool) work(id int, gen uint64) {
	for {
		s := p.state.Load()
		n, i := int(s>>poolPartBits)&poolMaxParts, int(s)&poolMaxParts
		if poolGen(s) != gen || i >= n {
			return
		}
		if !p.state.CompareAndSwap(s, s+1) {
			continue
		}
		// The run cannot end, nor p.task change, before this part is done.
		p.task.runPart(id, i)
		p.done.Add(1)
	}
}

// run executes parts 0..parts-1 of t across the pool and returns when all
// are done. With one thread (or one part) it runs them in order on the
// calling goroutine.
func (p *workerPool) run(parts int, t parallelTask) {
	if p == nil || p.threads == 1 || parts <= 1 || parts > poolMaxParts {
		for i := range parts {
			t.runPart(0, i)
		}
		return
	}
	p.task = t
	p.done.Store(0)
	gen := (poolGen(p.state.Load()) + 1) & (1<<24 - 1)
	p.state.Store(gen<<(2*poolPartBits) | uint64(parts)<<poolPartBits)
	for _, w := range p.workers {
		if w.sleeping.Load() {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}
	p.work(0, gen)
	// Wait for parts other goroutines run: poll, then nap (a worker that
	// lost its core gets the caller's).
	var since time.Time
	for spins := 0; p.done.Load() < int64(parts); spins++ {
		if spins%64 != 63 {
			continue
		}
		now := time.Now()
		if since.IsZero() {
			since = now
		}
		if now.Sub(since) < poolWaitSpin {
			goruntime.Gosched()
			continue
		}
		time.Sleep(poolNap)
	}
	p.task = nil
}

// begin and end bracket an invocation (see active).
func (p *workerPool) begin() {
	if p != nil {
		p.active.Store(true)
	}
}

func (p *workerPool) end() {
	if p != nil {
		p.active.Store(false)
	}
}

// close stops the workers.
func (p *workerPool) close() {
	if p == nil || p.closed.Swap(true) {
		return
	}
	for _, w := range p.workers {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// parallelRange splits an element-wise loop over n elements into a few
// contiguous ranges for the pool. fn is bound once, in Prepare, so running
// it allocates nothing.
type parallelRange struct {
	pool     *workerPool
	n, parts int
	fn       func(lo, hi int)
}

// parallelMinElements is the size from which an element-wise operator is
// split across threads.
const parallelMinElements = 1 << 16

// newParallelRange returns nil when the loop is too small to split (or
// there is one thread): the caller runs it whole.
func newParallelRange(pool *workerPool, n int, fn func(lo, hi int)) *parallelRange {
	return newParallelItems(pool, n, 1, fn)
}

// newParallelItems is newParallelRange over n items of size elements each
// (rows of a softmax, say), split between items.
func newParallelItems(pool *workerPool, n, size int, fn func(lo, hi int)) *parallelRange {
	t := pool.Threads()
	if t == 1 || n*size < parallelMinElements || n < 2 {
		return nil
	}
	return &parallelRange{pool: pool, n: n, parts: min(2*t, n, n*size/(parallelMinElements/4)), fn: fn}
}

func (r *parallelRange) run() { r.pool.run(r.parts, r) }

func (r *parallelRange) runPart(_, p int) {
	r.fn(p*r.n/r.parts, (p+1)*r.n/r.parts)
}
