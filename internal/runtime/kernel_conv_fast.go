package runtime

// Optimized int8/uint8 CONV_2D and DEPTHWISE_CONV_2D (see fast_gemm.go for
// why they give the reference kernels' bits). Prepare chooses them; the
// reference kernels stay the specification and run when the interpreter is
// forced onto them, for the types and shapes the fast paths do not cover
// (float32, int16, grouped convolutions) and for tiny layers.

// parallelMinMACs is the size from which a layer is split across threads:
// below it the hand-off costs more than it saves.
const parallelMinMACs = 20_000

// parallelMinMACsDepthwise is parallelMinMACs for depthwise layers.
const parallelMinMACsDepthwise = 20_000

// splitParts chooses how many parts to cut n units of work into: one per
// thread for small layers, up to four per thread for large ones (to even
// out the load). The thresholds were tuned on MobileNet v1 (0.25, 128) on
// two cores, measuring the candidates interleaved.
func splitParts(pool *workerPool, n int, macs int64) int {
	t := pool.Threads()
	if t == 1 || macs < parallelMinMACs || n < 2 {
		return 1
	}
	per := int(min(max(macs/500_000, 1), 4))
	return min(n, per*t)
}

// gemmSplit cuts a GEMM-shaped layer (tiles of gemmMR rows × blocks of 16
// output channels) into parts for the threads: by rows when there are
// enough, otherwise also by channel blocks (a 1×1 layer over one pixel, a
// fully connected layer with one batch), each column part with its own
// view of the packed filter and requantization.
type gemmSplit struct {
	tiles, tilesPerPart, rowParts int
	cols                          []gemmCols
}

type gemmCols struct {
	pf     *packedFilter
	rq     *requantParams
	c0, nc int // first output channel, channels
}

func newGemmSplit(pool *workerPool, tiles int, macs int64, pf *packedFilter, rq *requantParams) gemmSplit {
	parts := splitParts(pool, tiles*pf.nb, macs)
	s := gemmSplit{tiles: tiles}
	colParts := 1
	if tiles < parts {
		colParts = min(pf.nb, (parts+tiles-1)/tiles)
	}
	s.rowParts = max(1, parts/colParts)
	s.tilesPerPart = (tiles + s.rowParts - 1) / s.rowParts
	s.rowParts = (tiles + s.tilesPerPart - 1) / s.tilesPerPart
	per := (pf.nb + colParts - 1) / colParts
	for b0 := 0; b0 < pf.nb; b0 += per {
		b1 := min(pf.nb, b0+per)
		c0 := b0 * gemmNR
		v := pf.view(b0, b1)
		r := *rq
		r.sig, r.lsh, r.rsh, r.mask, r.thr = rq.sig[c0:], rq.lsh[c0:], rq.rsh[c0:], rq.mask[c0:], rq.thr[c0:]
		s.cols = append(s.cols, gemmCols{pf: v, rq: &r, c0: c0, nc: min(b1*gemmNR, pf.n) - c0})
	}
	return s
}

func (s *gemmSplit) parts() int { return s.rowParts * len(s.cols) }

// part returns part i's tiles and channel columns.
func (s *gemmSplit) part(i int) (t0, t1 int, cols *gemmCols) {
	r, c := i/len(s.cols), i%len(s.cols)
	return r * s.tilesPerPart, min(s.tiles, (r+1)*s.tilesPerPart), &s.cols[c]
}

// convFast is the GEMM form of CONV_2D: each output pixel's input patch is
// gathered (im2col, gemmMR pixels at a time) into int16 and multiplied with
// the packed filter by the micro-kernel.
type convFast struct {
	k      *conv2D
	simd   simdKind
	pf     *packedFilter
	rq     *requantParams
	signed bool
	zp     int16
	direct bool // 1×1, stride 1, no padding: pixel p reads input pixel p

	pixels, tiles int
	split         gemmSplit
	panelTiles    int // tiles gathered and multiplied per micro-kernel call

	ring *padRing // input rows for the patches, unless direct

	ws              *workspace
	pool            *workerPool
	accOff, ringOff int
	inBuf, outBuf   []byte
}

func newConvFast(c *PrepareContext, k *conv2D) *convFast {
	g := &k.g
	if !c.Optimized() || k.groupSize != g.outDepth || (k.input.Type != Int8 && k.input.Type != Uint8) {
		return nil
	}
	f := &convFast{k: k, simd: c.simd(), signed: k.input.Type == Int8, zp: int16(k.input.ZeroPoint())}
	depth := g.filterH * g.filterW * k.filterDepth
	var bias []int32
	if k.bias != nil {
		bias = k.bias.Int32s()
	}
	if f.signed {
		f.pf = packFilter(k.filter.Int8s(), g.outDepth, depth, k.q.filterOffset, k.q.inputOffset, bias, useDot(f.simd))
	} else {
		f.pf = packFilter(k.filter.Uint8s(), g.outDepth, depth, k.q.filterOffset, k.q.inputOffset, bias, false)
	}
	f.rq = newRequantParams(k.q.mult, k.q.outputOffset, k.q.actMin, k.q.actMax)
	f.direct = g.filterH == 1 && g.filterW == 1 && g.strideH == 1 && g.strideW == 1 &&
		g.pad.height == 0 && g.pad.width == 0 && g.inH == g.outH && g.inW == g.outW
	f.pixels = g.batches * g.outH * g.outW
	f.tiles = (f.pixels + gemmMR - 1) / gemmMR
	f.pool = c.pool()
	f.split = newGemmSplit(f.pool, f.tiles, k.MACs(), f.pf, f.rq)
	f.panelTiles = panelTiles(f.pf)
	f.accOff = alignUp(f.panelTiles*gemmMR*f.pf.kp*2+2*gatherSlack, 64)
	f.ringOff = f.accOff + alignUp(f.panelTiles*gemmMR*f.pf.nb*gemmNR*4, 64)
	size := f.ringOff
	if !f.direct {
		f.ring = newPadRing(g, f.simd, f.signed, f.zp, g.inDepth, g.inDepth, 1)
		size += f.ring.bytes
	}
	f.ws = c.requestWorkspace(size)
	return f
}

// panelTiles is how many tiles of gemmMR rows one micro-kernel call takes:
// as many as keep the int16 rows within 64 KB and the accumulators within
// 32 KB, at most 16.
func panelTiles(p *packedFilter) int {
	return max(1, min(16, 32768/(gemmMR*p.nb*gemmNR*4), 65536/(gemmMR*p.kp*2)))
}

func (f *convFast) eval() {
	f.inBuf, f.outBuf = f.k.input.Bytes(), f.k.output.Bytes()
	if f.ring != nil {
		f.ring.in = f.inBuf
	}
	f.pool.run(f.split.parts(), f)
}

func (f *convFast) runPart(worker, part int) {
	buf := f.ws.get(worker)
	kp, nb, pt := f.pf.kp, f.pf.nb, f.panelTiles
	a := int16View(buf[:f.accOff])[:pt*gemmMR*kp+gatherSlack]
	acc := int32View(buf[f.accOff:])[:pt*gemmMR*nb*gemmNR]
	var rv ringView
	if f.ring != nil {
		rv = f.ring.view(buf, f.ringOff)
	}
	n := f.k.g.outDepth
	c := f.k.g.inDepth
	start, end, cols := f.split.part(part)
	for t := start; t < end; t += pt {
		nt := min(pt, end-t)
		p0 := t * gemmMR
		rows := min(nt*gemmMR, f.pixels-p0)
		switch {
		case f.direct && kp == c:
			widen(f.simd, a[:rows*c], f.inBuf[p0*c:(p0+rows)*c], f.signed)
		case f.direct:
			for m := range rows {
				widen(f.simd, a[m*kp:m*kp+c], f.inBuf[(p0+m)*c:(p0+m+1)*c], f.signed)
			}
		default:
			f.gather(p0, rows, a, kp, rv)
		}
		gemm(f.simd, a, cols.pf, acc[cols.c0:], nb*gemmNR, nt)
		requant(f.simd, acc[cols.c0:], nb*gemmNR, cols.rq, f.outBuf[p0*n+cols.c0:], n, cols.nc, rows)
	}
}

// gather writes the input patches of output pixels p0..p0+rows-1, in
// filter order (row, column, channel), into rows of a (kp apart), from the
// ring of padded rows (taps outside the input read the zero point).
func (f *convFast) gather(p0, rows int, a []int16, kp int, rv ringView) {
	g := &f.k.g
	c := g.inDepth
	b, r := p0/(g.outH*g.outW), p0%(g.outH*g.outW)
	oy, ox := r/g.outW, r%g.outW
	run := g.filterW * c
	offs := rv.offs
	for m := 0; m < rows; {
		iy0 := oy*g.strideH - g.pad.height
		for fy := range offs {
			offs[fy] = f.ring.row(rv, b, iy0+fy*g.dilationH)
		}
		// The pixels of this output row in the panel.
		count := min(rows-m, g.outW-ox)
		x := ox * g.strideW * c
		if g.dilationW == 1 {
			for fy := range offs {
				offs[fy] += x
			}
			if !gatherRow(f.simd, a[m*kp:], kp, rv.ring, offs, run, count, g.strideW*c) {
				for j := range count {
					row := a[(m+j)*kp : (m+j)*kp+kp]
					xj := j * g.strideW * c
					i := 0
					for _, off := range offs {
						copy(row[i:i+run], rv.ring[off+xj:off+xj+run])
						i += run
					}
				}
			}
		} else {
			for j := range count {
				row := a[(m+j)*kp : (m+j)*kp+kp]
				xj := x + j*g.strideW*c
				i := 0
				for _, off := range offs {
					for fx := range g.filterW {
						o := off + xj + fx*g.dilationW*c
						copy(row[i:i+c], rv.ring[o:o+c])
						i += c
					}
				}
			}
		}
		m += count
		if ox += count; ox == g.outW {
			ox = 0
			if oy++; oy == g.outH {
				oy, b = 0, b+1
			}
		}
	}
}

func fillInt16(s []int16, v int16) {
	for i := range s {
		s[i] = v
	}
}

// padRing is a small ring of input rows widened to int16 and padded with
// the input's zero point, so windows read them without bounds checks: the
// rows a window of filter taps spans ((filterH-1)·dilationH+1 of them) are
// in distinct slots, and each input row is widened once per part however
// many windows read it. Channels are repeated dm times (depthwise depth
// multiplier) and padded to cp with the zero point.
type padRing struct {
	g         *convGeometry
	simd      simdKind
	signed    bool
	zp        int16
	c, cp, dm int // channels (after repetition), padded
	rowW      int // padded row width in pixels
	nslots    int
	rowLen    int // int16 elements per ring row
	bytes     int // ring, tags and offsets in the workspace
	ringEnd   int
	in        []byte // the input tensor's bytes, set by each Eval
}

func newPadRing(g *convGeometry, simd simdKind, signed bool, zp int16, c, cp, dm int) *padRing {
	r := &padRing{g: g, simd: simd, signed: signed, zp: zp, c: c, cp: cp, dm: dm}
	r.rowW = max(g.pad.width+g.inW, (g.outW-1)*g.strideW+(g.filterW-1)*g.dilationW+1)
	r.nslots = (g.filterH-1)*g.dilationH + 1
	r.rowLen = r.rowW * cp
	r.ringEnd = alignUp(r.nslots*r.rowLen*2+2*gatherSlack, 64)
	r.bytes = r.ringEnd + alignUp(r.nslots*8, 64) + alignUp(g.filterH*8, 64)
	return r
}

// ringView is one worker's ring in its workspace (at offset off).
type ringView struct {
	ring []int16
	tags []int64
	offs []int // scratch: one ring offset per filter row
}

func (r *padRing) view(buf []byte, off int) ringView {
	v := ringView{
		ring: int16View(buf[off : off+r.ringEnd])[:r.nslots*r.rowLen+gatherSlack],
		tags: view[int64](buf[off+r.ringEnd : off+r.bytes])[:r.nslots],
	}
	v.offs = view[int](buf[off+r.ringEnd+alignUp(r.nslots*8, 64) : off+r.bytes])[:r.g.filterH]
	for i := range v.tags {
		v.tags[i] = -1
	}
	return v
}

// row returns the slot (its first int16 in v.ring) holding input row iy of
// batch b, widening it if it is not there.
func (r *padRing) row(v ringView, b, iy int) int {
	slot := ((iy % r.nslots) + r.nslots) % r.nslots
	tag := int64(b)<<32 | int64(uint32(iy))
	if v.tags[slot] != tag {
		r.fill(v.ring[slot*r.rowLen:(slot+1)*r.rowLen], b, iy)
		v.tags[slot] = tag
	}
	return slot * r.rowLen
}

// fill widens input row iy of batch b into a padded ring row.
func (r *padRing) fill(row []int16, b, iy int) {
	g := r.g
	if iy < 0 || iy >= g.inH {
		fillInt16(row, r.zp)
		return
	}
	padW := g.pad.width
	fillInt16(row[:padW*r.cp], r.zp)
	fillInt16(row[(padW+g.inW)*r.cp:], r.zp)
	in := r.in[((b*g.inH+iy)*g.inW)*g.inDepth:]
	mid := row[padW*r.cp : (padW+g.inW)*r.cp]
	if r.dm == 1 && r.cp == r.c {
		widen(r.simd, mid, in[:g.inW*g.inDepth], r.signed)
		return
	}
	for ix := range g.inW {
		px := mid[ix*r.cp : ix*r.cp+r.cp]
		src := in[ix*g.inDepth : ix*g.inDepth+g.inDepth]
		if r.dm == 1 {
			widenGo(px[:r.c], src, r.signed)
		} else {
			// Each input channel repeated dm times, without a division
			// per element.
			i := 0
			for _, v := range src {
				x := int16(v)
				if r.signed {
					x = int16(int8(v))
				}
				for range r.dm {
					px[i] = x
					i++
				}
			}
		}
		fillInt16(px[r.c:], r.zp)
	}
}

// dwFast is the optimized DEPTHWISE_CONV_2D: input rows are widened once
// into a ring of int16 rows padded with the zero point (channels repeated
// depth-multiplier times, so every output channel has its own input lane),
// and each output row is computed over blocks of 16 channels.
type dwFast struct {
	k      *depthwiseConv2D
	conv   *convFast // when the input has one channel: the convolution kernel
	simd   simdKind
	signed bool
	zp     int16

	c, cp      int // output channels, padded to 16
	outW       int
	xstride    int // int16 elements between output columns in a ring row
	taps       int
	npairs     int
	ring       *padRing
	wNat       []int16
	wPerm      []int16
	bias       []int32
	biasPerm   []int32
	wPairs8    []int16 // 8 channels, stride 1: the 16-lane layout over two columns
	biasPairs8 []int32
	rq         *requantParams
	rowsPerPrt int
	rows       int // batches × output rows
	parts      int

	ws            *workspace
	pool          *workerPool
	tapOff, accOf int
	inBuf, outBuf []byte
}

func newDwFast(c *PrepareContext, k *depthwiseConv2D) *dwFast {
	if !c.Optimized() || (k.input.Type != Int8 && k.input.Type != Uint8) {
		return nil
	}
	g := &k.g
	d := &dwFast{k: k, simd: c.simd(), signed: k.input.Type == Int8, zp: int16(k.input.ZeroPoint())}
	if g.inDepth == 1 {
		// One input channel (a first layer with a depth multiplier): the
		// same as a convolution with one input channel, filter [M, H, W, 1],
		// which the GEMM kernel does far better than lanes of copies.
		w := k.filter
		t := make([]byte, len(w.data))
		for tap := range g.filterH * g.filterW {
			for oc := range g.outDepth {
				t[oc*g.filterH*g.filterW+tap] = w.data[tap*g.outDepth+oc]
			}
		}
		cv := &conv2D{input: k.input, bias: k.bias, output: k.output, g: k.g, filterDepth: 1, groupSize: g.outDepth, q: k.q,
			filter: &Tensor{Index: w.Index, Name: w.Name, Type: w.Type, Shape: []int{g.outDepth, g.filterH, g.filterW, 1}, Quant: w.Quant, Const: true, data: t}}
		if d.conv = newConvFast(c, cv); d.conv != nil {
			return d
		}
	}
	d.c = g.outDepth
	d.cp = (d.c + 7) / 8 * 8
	d.outW = g.outW
	d.xstride = g.strideW * d.cp
	d.taps = g.filterH * g.filterW
	d.npairs = (d.taps + 1) / 2
	d.ring = newPadRing(g, d.simd, d.signed, d.zp, d.c, d.cp, k.depthMultiplier)

	// Weights w' = w + filterOffset, natural [tap][channel] and, for the
	// AVX2 kernel, [pair][block of 16][channels 0-3,8-11 | 4-7,12-15][tap
	// of the pair]; bias plus inputOffset·Σw'.
	d.wNat = make([]int16, d.taps*d.cp)
	d.bias = make([]int32, d.cp)
	var bias []int32
	if k.bias != nil {
		bias = k.bias.Int32s()
	}
	for ch := range d.c {
		var sum int32
		for t := range d.taps {
			var wv int32
			if d.signed {
				wv = int32(k.filter.Int8s()[t*d.c+ch])
			} else {
				wv = int32(k.filter.Uint8s()[t*d.c+ch])
			}
			wv += k.q.filterOffset
			d.wNat[t*d.cp+ch] = int16(wv)
			sum += wv
		}
		if bias != nil {
			d.bias[ch] = bias[ch]
		}
		d.bias[ch] += sum * k.q.inputOffset
	}
	// The AVX2 layout: per pair of taps, blocks of 16 channels in the
	// order of the kernel's lanes, then a block of 8 in natural order.
	ncb := d.cp / 16
	d.wPerm = make([]int16, d.npairs*2*d.cp)
	d.biasPerm = make([]int32, d.cp)
	for ch := range d.cp {
		cb, i := ch/16, ch%16
		lane := ch // the tail block of 8: natural order
		if cb < ncb {
			lane = cb*16 + dwPermLane(i)
		}
		d.biasPerm[lane] = d.bias[ch]
		for j := range d.npairs {
			for h := range 2 {
				if t := 2*j + h; t < d.taps {
					d.wPerm[j*2*d.cp+2*lane+h] = d.wNat[t*d.cp+ch]
				}
			}
		}
	}
	if d.cp == 8 && g.strideW == 1 {
		// Eight channels, stride 1: two neighbouring output columns' taps
		// are adjacent in the ring, so a 16-lane block covers columns x and
		// x+1 with the filter repeated (pairs8).
		d.wPairs8 = make([]int16, d.npairs*32)
		d.biasPairs8 = make([]int32, 16)
		for i := range 16 {
			ch, lane := i%8, dwPermLane(i)
			d.biasPairs8[lane] = d.bias[ch]
			for j := range d.npairs {
				for h := range 2 {
					if t := 2*j + h; t < d.taps {
						d.wPairs8[j*32+2*lane+h] = d.wNat[t*d.cp+ch]
					}
				}
			}
		}
	}
	d.rq = newRequantParams(k.q.mult, k.q.outputOffset, k.q.actMin, k.q.actMax)
	d.rows = g.batches * g.outH
	d.pool = c.pool()
	// Each part widens again the input rows its first output row needs.
	d.parts = 1
	if k.MACs() >= parallelMinMACsDepthwise {
		d.parts = splitParts(d.pool, d.rows, k.MACs())
	}
	d.rowsPerPrt = (d.rows + d.parts - 1) / d.parts
	d.parts = (d.rows + d.rowsPerPrt - 1) / d.rowsPerPrt

	d.tapOff = d.ring.bytes
	d.accOf = d.tapOff + alignUp((2*d.npairs+g.filterH)*8, 64)
	d.ws = c.requestWorkspace(d.accOf + d.outW*d.cp*4)
	return d
}

// dwPermLane is the lane, within a block of 16, of the AVX2 kernel's
// accumulators that holds channel i: VPUNPCKLWD/HWD work within 128-bit
// lanes, so the low accumulator holds channels 0-3 and 8-11.
func dwPermLane(i int) int {
	return [16]int{0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15}[i]
}

func (d *dwFast) eval() {
	if d.conv != nil {
		d.conv.eval()
		return
	}
	d.inBuf, d.outBuf = d.k.input.Bytes(), d.k.output.Bytes()
	d.ring.in = d.inBuf
	d.pool.run(d.parts, d)
}

func (d *dwFast) runPart(worker, part int) {
	g := &d.k.g
	buf := d.ws.get(worker)
	rv := d.ring.view(buf, 0)
	taps := view[int64](buf[d.tapOff:d.accOf])[:2*d.npairs+g.filterH]
	acc := int32View(buf[d.accOf:])[:d.outW*d.cp]
	end := min(d.rows, (part+1)*d.rowsPerPrt)
	for r := part * d.rowsPerPrt; r < end; r++ {
		b, oy := r/g.outH, r%g.outH
		iy0 := oy*g.strideH - g.pad.height
		for fy := range g.filterH {
			off := d.ring.row(rv, b, iy0+fy*g.dilationH)
			taps[2*d.npairs+fy] = int64(off) * 2
			for fx := range g.filterW {
				taps[fy*g.filterW+fx] = int64(off+fx*g.dilationW*d.cp) * 2
			}
		}
		if d.taps%2 == 1 {
			taps[d.taps] = taps[d.taps-1]
		}
		dwRow(d.simd, d, rv.ring, taps, acc)
		requant(d.simd, acc, d.cp, d.rq, d.outBuf[(b*g.outH+oy)*g.outW*d.c:], d.c, d.c, d.outW)
	}
}

// dwRowGo is the pure-Go row kernel: taps[t]/2 is tap t's int16 offset in
// the ring for output column 0.
func dwRowGo(d *dwFast, ring []int16, taps []int64, acc []int32) {
	cp := d.cp
	for ox := range d.outW {
		a := acc[ox*cp : ox*cp+cp]
		copy(a, d.bias)
		for t := range d.taps {
			off := int(taps[t]/2) + ox*d.xstride
			x := ring[off : off+cp]
			w := d.wNat[t*cp : t*cp+cp]
			for ch := range a {
				a[ch] += int32(x[ch]) * int32(w[ch])
			}
		}
	}
}
