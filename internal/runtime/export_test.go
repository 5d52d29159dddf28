package runtime

import "time"

// SwapDelegate registers d under its name for a test (or removes the
// registration when d.Open is nil) and returns what restores the previous
// state.
func SwapDelegate(name string, d Delegate) (restore func()) {
	delegatesMu.Lock()
	defer delegatesMu.Unlock()
	old, had := delegates[name]
	if d.Open == nil {
		delete(delegates, name)
	} else {
		delegates[name] = d
	}
	return func() {
		delegatesMu.Lock()
		defer delegatesMu.Unlock()
		if had {
			delegates[name] = old
		} else {
			delete(delegates, name)
		}
	}
}

// PureGo returns a copy of opts whose interpreters run the optimized
// kernels with their pure-Go micro-kernels instead of SIMD assembly.
func PureGo(opts Options) *Options {
	opts.pureGo = true
	return &opts
}

// Int8PeakLoop runs the CPU's int8 multiply-accumulate peak loop; it
// returns the multiply-accumulates per iteration (0: no loop here).
func Int8PeakLoop(iters int) int { return int8PeakLoop(iters) }

// NodeTimes invokes it runs times, operator by operator, and returns each
// operator's total time.
func NodeTimes(it *Interpreter, runs int) []time.Duration {
	d := make([]time.Duration, len(it.nodes))
	it.pool.begin()
	defer it.pool.end()
	for range runs {
		for i := range it.nodes {
			start := time.Now()
			if err := it.nodes[i].kernel.Eval(); err != nil {
				panic(err)
			}
			d[i] += time.Since(start)
		}
	}
	return d
}
