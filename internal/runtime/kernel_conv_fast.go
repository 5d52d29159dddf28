package runtime

// Optimized int8/uint8 CONV_2D and DEPTHWISE_CONV_2D (see fast_gemm.go for
// why they give the reference kernels' bits). Prepare chooses them; the
// reference kernels stay the specification and run when the interpreter is
// forced onto them, for the types and shapes the fast paths do not cover
// (float32, int16, grouped convolutions) and for tiny layers.

// parallelMinMACs is the size from which a layer is split across threads:
// below it the hand-off costs more than it saves.
const parallelMinMACs = 100_000

// splitParts chooses how many parts to cut n units of work into.
func splitParts(pool *workerPool, n int, macs int64) int {
	t := pool.Threads()
	if t == 1 || macs < parallelMinMACs || n < 2 {
		return 1
	}
	return min(n, 4*t)
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

	pixels, tiles, tilesPerPart, parts int
	panelTiles                         int // tiles gathered and multiplied per micro-kernel call

	ws            *workspace
	pool          *workerPool
	accOff        int
	inBuf, outBuf []byte
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
		f.pf = packFilter(k.filter.Int8s(), g.outDepth, depth, k.q.filterOffset, k.q.inputOffset, bias)
	} else {
		f.pf = packFilter(k.filter.Uint8s(), g.outDepth, depth, k.q.filterOffset, k.q.inputOffset, bias)
	}
	f.rq = newRequantParams(k.q.mult, k.q.outputOffset, k.q.actMin, k.q.actMax)
	f.direct = g.filterH == 1 && g.filterW == 1 && g.strideH == 1 && g.strideW == 1 &&
		g.pad.height == 0 && g.pad.width == 0 && g.inH == g.outH && g.inW == g.outW
	f.pixels = g.batches * g.outH * g.outW
	f.tiles = (f.pixels + gemmMR - 1) / gemmMR
	f.pool = c.pool()
	f.parts = splitParts(f.pool, f.tiles, k.MACs())
	f.tilesPerPart = (f.tiles + f.parts - 1) / f.parts
	f.parts = (f.tiles + f.tilesPerPart - 1) / f.tilesPerPart
	f.panelTiles = panelTiles(f.pf)
	f.accOff = alignUp(f.panelTiles*gemmMR*f.pf.kp*2, 64)
	f.ws = c.requestWorkspace(f.accOff + f.panelTiles*gemmMR*f.pf.nb*gemmNR*4)
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
	f.pool.run(f.parts, f)
}

func (f *convFast) runPart(worker, part int) {
	buf := f.ws.get(worker)
	kp, nb, pt := f.pf.kp, f.pf.nb, f.panelTiles
	a := int16View(buf[:f.accOff])[:pt*gemmMR*kp]
	acc := int32View(buf[f.accOff:])[:pt*gemmMR*nb*gemmNR]
	n := f.k.g.outDepth
	c := f.k.g.inDepth
	end := min(f.tiles, (part+1)*f.tilesPerPart)
	for t := part * f.tilesPerPart; t < end; t += pt {
		nt := min(pt, end-t)
		p0 := t * gemmMR
		rows := min(nt*gemmMR, f.pixels-p0)
		if f.direct && kp == c {
			widen(f.simd, a[:rows*c], f.inBuf[p0*c:(p0+rows)*c], f.signed)
		} else {
			for m := range rows {
				f.gather(p0+m, a[m*kp:m*kp+f.pf.k])
			}
		}
		gemm(f.simd, a, f.pf, acc, nb*gemmNR, nt)
		requant(f.simd, acc, nb*gemmNR, f.rq, f.outBuf[p0*n:], n, n, rows)
	}
}

// gather writes output pixel p's input patch, in filter order (row, column,
// channel), into row; taps outside the input get the input's zero point.
func (f *convFast) gather(p int, row []int16) {
	g := &f.k.g
	c := g.inDepth
	in := f.inBuf
	if f.direct {
		widen(f.simd, row, in[p*c:p*c+c], f.signed)
		return
	}
	b, r := p/(g.outH*g.outW), p%(g.outH*g.outW)
	oy, ox := r/g.outW, r%g.outW
	iy0, ix0 := oy*g.strideH-g.pad.height, ox*g.strideW-g.pad.width
	rowContiguous := g.dilationW == 1 && ix0 >= 0 && ix0+g.filterW <= g.inW
	i := 0
	for fy := range g.filterH {
		iy := iy0 + fy*g.dilationH
		if iy < 0 || iy >= g.inH {
			fillInt16(row[i:i+g.filterW*c], f.zp)
			i += g.filterW * c
			continue
		}
		base := ((b*g.inH + iy) * g.inW) * c
		if rowContiguous {
			widen(f.simd, row[i:i+g.filterW*c], in[base+ix0*c:base+(ix0+g.filterW)*c], f.signed)
			i += g.filterW * c
			continue
		}
		for fx := range g.filterW {
			ix := ix0 + fx*g.dilationW
			if ix < 0 || ix >= g.inW {
				fillInt16(row[i:i+c], f.zp)
			} else {
				widen(f.simd, row[i:i+c], in[base+ix*c:base+ix*c+c], f.signed)
			}
			i += c
		}
	}
}

func fillInt16(s []int16, v int16) {
	for i := range s {
		s[i] = v
	}
}

// dwFast is the optimized DEPTHWISE_CONV_2D: input rows are widened once
// into a ring of int16 rows padded with the zero point (channels repeated
// depth-multiplier times, so every output channel has its own input lane),
// and each output row is computed over blocks of 16 channels.
type dwFast struct {
	k      *depthwiseConv2D
	simd   simdKind
	signed bool
	zp     int16

	c, cp      int // output channels, padded to 16
	outW       int
	xstride    int // int16 elements between output columns in a ring row
	taps       int
	npairs     int
	rowW       int // padded row width in pixels
	nslots     int
	rowLen     int // int16 elements per ring row
	wNat       []int16
	wPerm      []int16
	bias       []int32
	biasPerm   []int32
	rq         *requantParams
	rowsPerPrt int
	rows       int // batches × output rows
	parts      int

	ws                             *workspace
	pool                           *workerPool
	ringOff, tagOff, tapOff, accOf int
	inBuf, outBuf                  []byte
}

func newDwFast(c *PrepareContext, k *depthwiseConv2D) *dwFast {
	if !c.Optimized() || (k.input.Type != Int8 && k.input.Type != Uint8) {
		return nil
	}
	g := &k.g
	d := &dwFast{k: k, simd: c.simd(), signed: k.input.Type == Int8, zp: int16(k.input.ZeroPoint())}
	d.c = g.outDepth
	d.cp = (d.c + gemmNR - 1) / gemmNR * gemmNR
	d.outW = g.outW
	d.xstride = g.strideW * d.cp
	d.taps = g.filterH * g.filterW
	d.npairs = (d.taps + 1) / 2
	d.rowW = max(g.pad.width+g.inW, (g.outW-1)*g.strideW+(g.filterW-1)*g.dilationW+1)
	d.nslots = (g.filterH-1)*g.dilationH + 1
	d.rowLen = d.rowW * d.cp

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
	ncb := d.cp / gemmNR
	d.wPerm = make([]int16, d.npairs*ncb*32)
	d.biasPerm = make([]int32, d.cp)
	for cb := range ncb {
		for i := range gemmNR {
			d.biasPerm[cb*gemmNR+i] = d.bias[cb*gemmNR+dwPermChannel(i)]
		}
		for j := range d.npairs {
			blk := d.wPerm[(j*ncb+cb)*32 : (j*ncb+cb)*32+32]
			for i := range gemmNR {
				ch := cb*gemmNR + dwPermChannel(i)
				for h := range 2 {
					if t := 2*j + h; t < d.taps {
						blk[2*i+h] = d.wNat[t*d.cp+ch]
					}
				}
			}
		}
	}
	d.rq = newRequantParams(k.q.mult, k.q.outputOffset, k.q.actMin, k.q.actMax)
	d.rows = g.batches * g.outH
	d.pool = c.pool()
	d.parts = splitParts(d.pool, d.rows, k.MACs())
	d.rowsPerPrt = (d.rows + d.parts - 1) / d.parts
	d.parts = (d.rows + d.rowsPerPrt - 1) / d.rowsPerPrt

	d.ringOff = 0
	d.tagOff = alignUp(d.nslots*d.rowLen*2, 64)
	d.tapOff = d.tagOff + alignUp(d.nslots*8, 64)
	d.accOf = d.tapOff + alignUp(2*d.npairs*8, 64)
	d.ws = c.requestWorkspace(d.accOf + d.outW*d.cp*4)
	return d
}

// dwPermChannel is the channel, within a block of 16, in lane i of the
// AVX2 kernel's accumulators: VPUNPCKLWD/HWD work within 128-bit lanes.
func dwPermChannel(i int) int {
	return [16]int{0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15}[i]
}

func (d *dwFast) eval() {
	d.inBuf, d.outBuf = d.k.input.Bytes(), d.k.output.Bytes()
	d.pool.run(d.parts, d)
}

func (d *dwFast) runPart(worker, part int) {
	g := &d.k.g
	buf := d.ws.get(worker)
	ring := int16View(buf[d.ringOff:d.tagOff])[:d.nslots*d.rowLen]
	tags := view[int64](buf[d.tagOff:d.tapOff])[:d.nslots]
	taps := view[int64](buf[d.tapOff:d.accOf])[:2*d.npairs]
	acc := int32View(buf[d.accOf:])[:d.outW*d.cp]
	for i := range tags {
		tags[i] = -1
	}
	end := min(d.rows, (part+1)*d.rowsPerPrt)
	for r := part * d.rowsPerPrt; r < end; r++ {
		b, oy := r/g.outH, r%g.outH
		iy0 := oy*g.strideH - g.pad.height
		for fy := range g.filterH {
			iy := iy0 + fy*g.dilationH
			slot := ((iy % d.nslots) + d.nslots) % d.nslots
			tag := int64(b)<<32 | int64(uint32(iy))
			if tags[slot] != tag {
				d.fillRow(ring[slot*d.rowLen:(slot+1)*d.rowLen], b, iy)
				tags[slot] = tag
			}
			for fx := range g.filterW {
				taps[fy*g.filterW+fx] = int64(slot*d.rowLen+fx*g.dilationW*d.cp) * 2
			}
		}
		if d.taps%2 == 1 {
			taps[d.taps] = taps[d.taps-1]
		}
		dwRow(d.simd, d, ring, taps, acc)
		requant(d.simd, acc, d.cp, d.rq, d.outBuf[(b*g.outH+oy)*g.outW*d.c:], d.c, d.c, d.outW)
	}
}

// fillRow widens input row iy of batch b into a padded ring row.
func (d *dwFast) fillRow(row []int16, b, iy int) {
	g := &d.k.g
	if iy < 0 || iy >= g.inH {
		fillInt16(row, d.zp)
		return
	}
	padW := g.pad.width
	fillInt16(row[:padW*d.cp], d.zp)
	fillInt16(row[(padW+g.inW)*d.cp:], d.zp)
	in := d.inBuf[((b*g.inH+iy)*g.inW)*g.inDepth:]
	mid := row[padW*d.cp : (padW+g.inW)*d.cp]
	dm := d.k.depthMultiplier
	if dm == 1 && d.cp == d.c {
		widen(d.simd, mid, in[:g.inW*g.inDepth], d.signed)
		return
	}
	for ix := range g.inW {
		px := mid[ix*d.cp : ix*d.cp+d.cp]
		src := in[ix*g.inDepth : ix*g.inDepth+g.inDepth]
		if dm == 1 {
			widen(d.simd, px[:d.c], src, d.signed)
		} else {
			for ch := range d.c {
				v := src[ch/dm]
				if d.signed {
					px[ch] = int16(int8(v))
				} else {
					px[ch] = int16(v)
				}
			}
		}
		fillInt16(px[d.c:], d.zp)
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
