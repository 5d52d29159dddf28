package runtime

// fcFast is the optimized int8/uint8 FULLY_CONNECTED: the packed-filter
// micro-kernel over gemmMR input rows at a time (see fast_gemm.go).
type fcFast struct {
	k      *fullyConnected
	simd   simdKind
	signed bool
	pf     *packedFilter
	rq     *requantParams

	tiles int
	split gemmSplit

	ws            *workspace
	pool          *workerPool
	accOff        int
	inBuf, outBuf []byte
}

func newFCFast(c *PrepareContext, k *fullyConnected) *fcFast {
	if !c.Optimized() || (k.input.Type != Int8 && k.input.Type != Uint8) {
		return nil
	}
	f := &fcFast{k: k, simd: c.simd(), signed: k.input.Type == Int8}
	var bias []int32
	if k.bias != nil {
		bias = k.bias.Int32s()
	}
	if f.signed {
		f.pf = packFilter(k.filter.Int8s(), k.outDepth, k.accDepth, k.filterOffset, k.inputOffset, bias, useDot(f.simd) && k.filterOffset == 0)
	} else {
		f.pf = packFilter(k.filter.Uint8s(), k.outDepth, k.accDepth, k.filterOffset, k.inputOffset, bias, false)
	}
	f.rq = newRequantParams(k.mult, k.outputOffset, k.actMin, k.actMax)
	f.tiles = (k.batches + gemmMR - 1) / gemmMR
	f.pool = c.pool()
	f.split = newGemmSplit(f.pool, f.tiles, k.MACs(), f.pf, f.rq)
	f.accOff = alignUp(gemmMR*f.pf.kp*2, 64)
	f.ws = c.requestWorkspace(f.accOff + gemmMR*f.pf.nb*gemmNR*4)
	return f
}

func (f *fcFast) eval() {
	f.inBuf, f.outBuf = f.k.input.Bytes(), f.k.output.Bytes()
	f.pool.run(f.split.parts(), f)
}

func (f *fcFast) runPart(worker, part int) {
	buf := f.ws.get(worker)
	kp, nb, k, n := f.pf.kp, f.pf.nb, f.pf.k, f.pf.n
	a := int16View(buf[:f.accOff])[:gemmMR*kp]
	acc := int32View(buf[f.accOff:])[:gemmMR*nb*gemmNR]
	start, end, cols := f.split.part(part)
	for t := start; t < end; t++ {
		r0 := t * gemmMR
		rows := min(gemmMR, f.k.batches-r0)
		for m := range rows {
			widen(f.simd, a[m*kp:m*kp+k], f.inBuf[(r0+m)*k:(r0+m+1)*k], f.signed)
		}
		gemm(f.simd, a, cols.pf, acc[cols.c0:], nb*gemmNR, 1)
		requant(f.simd, acc[cols.c0:], nb*gemmNR, cols.rq, f.outBuf[r0*n+cols.c0:], n, cols.nc, rows)
	}
}
