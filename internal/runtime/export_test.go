package runtime

// PureGo returns a copy of opts whose interpreters run the optimized
// kernels with their pure-Go micro-kernels instead of SIMD assembly.
func PureGo(opts Options) *Options {
	opts.pureGo = true
	return &opts
}
