package runtime

import (
	"fmt"
	"math"

	"github.com/edged/edged/internal/runtime/tflite"
)

// RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR on NHWC tensors, to the
// [height, width] a constant int32 size input gives (a non-constant size
// leaves the output's declared shape, checked against the size at Eval).
//
// Bilinear follows the kernels TensorFlow uses per type: float32 and uint8
// take reference_ops::ResizeBilinear (float arithmetic; uint8 adds 0.5
// before truncating, as full TFLite's reference kernel), int8 and int16
// take reference_ops::ResizeBilinearInteger (10-bit fixed-point weights,
// TFLM's and TFLite's int8 path). align_corners and half_pixel_centers
// cannot both be set.
//
// Nearest neighbour (reference_ops::ResizeNearestNeighbor) moves elements,
// so it takes any element type.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorRESIZE_BILINEAR, MaxVersion: 4, New: func() Kernel { return &resize{bilinear: true} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorRESIZE_NEAREST_NEIGHBOR, MaxVersion: 4, New: func() Kernel { return &resize{} }})
}

type resize struct {
	bilinear            bool
	alignCorners, half  bool
	input, size, output *Tensor
	dynamicSize         bool

	batches, inH, inW, depth, outH, outW int

	// Nearest neighbour: the source row and column of each output row and
	// column.
	srcY, srcX []int

	// Bilinear, float path: per output row / column the interpolation
	// point and its lower and upper source indices.
	fy, fx         []float32
	y0, y1, x0, x1 []int
	// Bilinear, integer path: the interpolation points in 1/1024 units.
	iy, ix []int32
}

func (k *resize) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(2, 2, 1); err != nil {
		return err
	}
	if k.bilinear {
		var opts tflite.ResizeBilinearOptions
		if err := c.Options(tflite.BuiltinOptionsResizeBilinearOptions, &opts); err != nil {
			return err
		}
		k.alignCorners, k.half = opts.AlignCorners(), opts.HalfPixelCenters()
		if k.alignCorners && k.half {
			return fmt.Errorf("align_corners and half_pixel_centers cannot both be set")
		}
	} else {
		var opts tflite.ResizeNearestNeighborOptions
		if err := c.Options(tflite.BuiltinOptionsResizeNearestNeighborOptions, &opts); err != nil {
			return err
		}
		k.alignCorners, k.half = opts.AlignCorners(), opts.HalfPixelCenters()
	}
	k.input, k.size, k.output = c.Input(0), c.Input(1), c.Output(0)
	in, size := k.input, k.size
	if err := sameTypes(in, k.output); err != nil {
		return err
	}
	if k.bilinear {
		switch in.Type {
		case Float32, Uint8, Int8, Int16:
		default:
			return UnsupportedTypes("input", in.Type)
		}
	} else if err := shapeCheckMovable("input", in); err != nil {
		return err
	}
	if len(in.Shape) != 4 {
		return fmt.Errorf("input %s must have rank 4 (NHWC)", in)
	}
	if size.Type != Int32 || len(size.Shape) != 1 || size.Shape[0] != 2 {
		return fmt.Errorf("size %s must be an int32 vector of 2 values", size)
	}
	k.batches, k.inH, k.inW, k.depth = in.Shape[0], in.Shape[1], in.Shape[2], in.Shape[3]
	if size.Const {
		v := size.Int32s()
		k.outH, k.outW = int(v[0]), int(v[1])
		if k.outH <= 0 || k.outW <= 0 {
			return fmt.Errorf("size %s holds [%d,%d]; both must be positive", size, k.outH, k.outW)
		}
		if err := c.SetOutputShape(0, []int{k.batches, k.outH, k.outW, k.depth}); err != nil {
			return err
		}
	} else {
		k.dynamicSize = true
		shape, err := shapeDeclared(c, k.output, 4, fmt.Sprintf("size %s is not constant", size))
		if err != nil {
			return err
		}
		if shape[0] != k.batches || shape[3] != k.depth || shape[1] <= 0 || shape[2] <= 0 {
			return fmt.Errorf("output %s declares %s, which does not resize input %s", k.output, FormatShape(shape), in)
		}
		k.outH, k.outW = shape[1], shape[2]
		if err := c.SetOutputShape(0, shape); err != nil {
			return err
		}
	}
	if k.outH > math.MaxInt32/1024 || k.outW > math.MaxInt32/1024 || k.inH > math.MaxInt32/1024 || k.inW > math.MaxInt32/1024 {
		return fmt.Errorf("resize from %dx%d to %dx%d is too large", k.inH, k.inW, k.outH, k.outW)
	}
	if k.inH == 0 || k.inW == 0 {
		if k.batches*k.depth != 0 {
			return fmt.Errorf("input %s is empty, there is nothing to resize", in)
		}
	}
	switch {
	case !k.bilinear:
		k.srcY = make([]int, k.outH)
		for y := range k.srcY {
			k.srcY[y] = int(resizeNearestIndex(int32(y), int32(k.inH), int32(k.outH), k.alignCorners, k.half))
		}
		k.srcX = make([]int, k.outW)
		for x := range k.srcX {
			k.srcX[x] = int(resizeNearestIndex(int32(x), int32(k.inW), int32(k.outW), k.alignCorners, k.half))
		}
	case in.Type == Float32 || in.Type == Uint8:
		k.fy, k.y0, k.y1 = resizeFloatPoints(k.inH, k.outH, k.alignCorners, k.half)
		k.fx, k.x0, k.x1 = resizeFloatPoints(k.inW, k.outW, k.alignCorners, k.half)
	default:
		k.iy, k.y0, k.y1 = resizeIntegerPoints(k.inH, k.outH, k.alignCorners, k.half)
		k.ix, k.x0, k.x1 = resizeIntegerPoints(k.inW, k.outW, k.alignCorners, k.half)
	}
	return nil
}

// resizeNearestIndex is reference_ops::GetNearestNeighbor.
func resizeNearestIndex(v, inSize, outSize int32, alignCorners, half bool) int32 {
	var scale float32
	if alignCorners && outSize > 1 {
		scale = float32(inSize-1) / float32(outSize-1)
	} else {
		scale = float32(inSize) / float32(outSize)
	}
	var offset float32
	if half {
		offset = 0.5
	}
	f := (float32(v) + offset) * scale
	var out int32
	if alignCorners {
		out = int32(math.Round(float64(f)))
	} else {
		out = int32(math.Floor(float64(f)))
	}
	out = min(out, inSize-1)
	if half {
		out = max(0, out)
	}
	return out
}

// resizeFloatScale is ResizeBilinear's per-axis scale.
func resizeFloatScale(inSize, outSize int, alignCorners bool) float32 {
	if alignCorners && outSize > 1 {
		return float32(inSize-1) / float32(outSize-1)
	}
	return float32(inSize) / float32(outSize)
}

// resizeFloatPoints is ComputeInterpolationValues for every output index.
func resizeFloatPoints(inSize, outSize int, alignCorners, half bool) (f []float32, lo, hi []int) {
	scale := resizeFloatScale(inSize, outSize, alignCorners)
	f, lo, hi = make([]float32, outSize), make([]int, outSize), make([]int, outSize)
	for i := range outSize {
		var v float32
		if half {
			v = float32((float32(i)+0.5)*scale) - 0.5
		} else {
			v = float32(i) * scale
		}
		f[i] = v
		lo[i] = max(int(int32(math.Floor(float64(v)))), 0)
		hi[i] = min(int(int32(math.Ceil(float64(v)))), inSize-1)
	}
	return f, lo, hi
}

// resizeIntegerPoints is ComputeInterpolationValuesInteger for every
// output index.
func resizeIntegerPoints(inSize, outSize int, alignCorners, half bool) (p []int32, lo, hi []int) {
	in, out := int32(inSize), int32(outSize)
	scale := ((1<<10)*in + out/2) / out
	if alignCorners && out > 1 {
		scale = ((1<<10)*(in-1) + (out-1)/2) / (out - 1)
	}
	p, lo, hi = make([]int32, outSize), make([]int, outSize), make([]int, outSize)
	for i := range outSize {
		var v int32
		if half {
			v = int32(i)*scale + scale/2 - (1 << 9)
		} else {
			v = int32(i) * scale
		}
		p[i] = v
		lo[i] = int(max(v/(1<<10), 0))
		hi[i] = int(min((v+(1<<10)-1)/(1<<10), in-1))
	}
	return p, lo, hi
}

func (k *resize) Eval() error {
	if k.dynamicSize {
		v := k.size.Int32s()
		if int(v[0]) != k.outH || int(v[1]) != k.outW {
			return fmt.Errorf("size %s holds [%d,%d], output %s is %dx%d", k.size, v[0], v[1], k.output, k.outH, k.outW)
		}
	}
	in, out := k.input, k.output
	switch {
	case !k.bilinear:
		resizeNearestRef(k)
	case in.Type == Float32:
		resizeBilinearFloatRef(k, in.Float32s(), out.Float32s(), 0)
	case in.Type == Uint8:
		resizeBilinearFloatRef(k, in.Uint8s(), out.Uint8s(), 0.5)
	case in.Type == Int8:
		resizeBilinearIntegerRef(k, in.Int8s(), out.Int8s())
	case in.Type == Int16:
		resizeBilinearIntegerRef(k, in.Int16s(), out.Int16s())
	}
	return nil
}

// resizeNearestRef is the reference nearest-neighbour kernel: each output
// pixel copies the depth vector of its source pixel.
func resizeNearestRef(k *resize) {
	es := k.input.Type.Size()
	in, out := k.input.Bytes(), k.output.Bytes()
	depth := k.depth * es
	rowStride := k.inW * depth
	batchStride := k.inH * rowStride
	pos := 0
	for b := range k.batches {
		for _, sy := range k.srcY {
			row := b*batchStride + sy*rowStride
			for _, sx := range k.srcX {
				src := row + sx*depth
				copy(out[pos:pos+depth], in[src:src+depth])
				pos += depth
			}
		}
	}
}

// resizeBilinearFloatRef is reference_ops::ResizeBilinear: the four
// neighbours weighted in float32, summed left to right, plus rounding
// (0.5 for uint8), converted by truncation. Every product is rounded to
// float32 on its own, as the C++ does without fused multiply-adds.
func resizeBilinearFloatRef[T float32 | uint8](k *resize, in, out []T, rounding float32) {
	d := k.depth
	row := k.inW * d
	plane := k.inH * row
	pos := 0
	for b := range k.batches {
		base := b * plane
		for y := range k.outH {
			dy := k.fy[y] - float32(k.y0[y])
			wy := 1 - dy
			r0, r1 := base+k.y0[y]*row, base+k.y1[y]*row
			for x := range k.outW {
				dx := k.fx[x] - float32(k.x0[x])
				wx := 1 - dx
				c0, c1 := k.x0[x]*d, k.x1[x]*d
				for c := range d {
					v := float32(float32(float32(in[r0+c0+c])*wy)*wx) +
						float32(float32(float32(in[r1+c0+c])*dy)*wx)
					v += float32(float32(float32(in[r0+c1+c])*wy) * dx)
					v += float32(float32(float32(in[r1+c1+c])*dy) * dx)
					v += rounding
					out[pos] = T(v)
					pos++
				}
			}
		}
	}
}

// resizeBilinearIntegerRef is reference_ops::ResizeBilinearInteger with
// TFLM's default double rounding: weights in 1/1024 units, products in
// 1/2^20, rounded half away from zero.
func resizeBilinearIntegerRef[T int8 | int16](k *resize, in, out []T) {
	d := k.depth
	row := k.inW * d
	plane := k.inH * row
	pos := 0
	for b := range k.batches {
		base := b * plane
		for y := range k.outH {
			fy := int64(k.iy[y] - (1<<10)*int32(k.y0[y]))
			r0, r1 := base+k.y0[y]*row, base+k.y1[y]*row
			for x := range k.outW {
				fx := int64(k.ix[x] - (1<<10)*int32(k.x0[x]))
				c0, c1 := k.x0[x]*d, k.x1[x]*d
				for c := range d {
					v := int64(in[r0+c0+c])*((1<<10)-fy)*((1<<10)-fx) +
						int64(in[r1+c0+c])*fy*((1<<10)-fx) +
						int64(in[r0+c1+c])*((1<<10)-fy)*fx +
						int64(in[r1+c1+c])*fy*fx
					round := -int64(1 << 19)
					if v > 0 {
						round = 1 << 19
					}
					out[pos] = T((v + round) / (1 << 20))
					pos++
				}
			}
		}
	}
}
