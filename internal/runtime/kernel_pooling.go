package runtime

import (
	"errors"
	"fmt"
	"math"

	"github.com/edged/edged/internal/runtime/tflite"
)

// AVERAGE_POOL_2D and MAX_POOL_2D over NHWC inputs: the mean or maximum of
// each filter window, counting only the positions inside the input (padding
// neither adds zeros nor counts toward the average). Types as TFLM: float32,
// int8 and int16 (reference_integer_ops::AveragePool / MaxPool), and uint8
// as TensorFlow Lite's reference_ops. Quantized inputs and outputs share
// scale and zero point, so the kernels work on the stored values.
//
// Average rounding: int8 and int16 divide the window sum by the count
// rounding half away from zero; uint8 sums are never negative and round
// half up; float32 divides in float32.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorAVERAGE_POOL_2D, MaxVersion: 3, New: func() Kernel { return &pool2D{} }})
	Register(Registration{Builtin: tflite.BuiltinOperatorMAX_POOL_2D, MaxVersion: 3, New: func() Kernel { return &pool2D{max: true} }})
}

type pool2D struct {
	max           bool
	input, output *Tensor
	g             convGeometry // filterH/W: the window; outDepth == inDepth

	actMin, actMax   int32
	fActMin, fActMax float32

	// The optimized 8-bit MAX_POOL_2D's padded input row and
	// AVERAGE_POOL_2D's window sums (nil: reference kernels).
	padRow []byte
	sums   []int32
	simd   simdKind
}

func (k *pool2D) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(1, 1, 1); err != nil {
		return err
	}
	var opts tflite.Pool2DOptions
	if err := c.Options(tflite.BuiltinOptionsPool2DOptions, &opts); err != nil {
		return err
	}
	k.input, k.output = c.Input(0), c.Output(0)
	in, out := k.input, k.output
	if len(in.Shape) != 4 {
		return fmt.Errorf("input %s must have rank 4 (NHWC)", in)
	}
	if in.Type != out.Type {
		return UnsupportedTypes("input, output", in.Type, out.Type)
	}
	g := &k.g
	g.batches, g.inH, g.inW, g.inDepth = in.Shape[0], in.Shape[1], in.Shape[2], in.Shape[3]
	g.outDepth = g.inDepth
	g.filterH, g.filterW = int(opts.FilterHeight()), int(opts.FilterWidth())
	g.strideH, g.strideW = int(opts.StrideH()), int(opts.StrideW())
	g.dilationH, g.dilationW = 1, 1
	if err := g.window(opts.Padding()); err != nil {
		return err
	}
	if err := c.SetOutputShape(0, []int{g.batches, g.outH, g.outW, g.outDepth}); err != nil {
		return err
	}
	act := opts.FusedActivationFunction()
	switch in.Type {
	case Float32:
		var err error
		k.fActMin, k.fActMax, err = activationRangeFloat(act)
		return err
	case Int8, Uint8, Int16:
	default:
		return UnsupportedTypes("input", in.Type)
	}
	if err := requireQuantized("input", in); err != nil {
		return err
	}
	if err := requireQuantized("output", out); err != nil {
		return err
	}
	if d := math.Abs(float64(in.Scale()) - float64(out.Scale())); d > 1e-6 || in.ZeroPoint() != out.ZeroPoint() {
		return fmt.Errorf("input %s (scale %g, zero point %d) and output %s (scale %g, zero point %d) must share quantization",
			in, in.Scale(), in.ZeroPoint(), out, out.Scale(), out.ZeroPoint())
	}
	if err := checkZeroPointRange("output", out); err != nil {
		return err
	}
	var err error
	if k.actMin, k.actMax, err = activationRangeQuantized(act, out); err != nil {
		return err
	}
	k.prepareFast(c)
	k.prepareFastAverage(c)
	return nil
}

func (k *pool2D) Eval() error {
	switch k.input.Type {
	case Float32:
		if k.max {
			maxPoolFloat(k, k.input.Float32s(), k.output.Float32s())
			return nil
		}
		return averagePoolFloat(k, k.input.Float32s(), k.output.Float32s())
	case Int8:
		if k.padRow != nil {
			maxPoolFast(k, k.input.Uint8s(), k.output.Uint8s())
			return nil
		}
		if k.max {
			maxPoolQuantized(k, k.input.Int8s(), k.output.Int8s(), math.MinInt8)
			return nil
		}
		if k.sums != nil {
			return averagePoolFast(k, k.input.Uint8s(), k.output.Uint8s())
		}
		return averagePoolQuantized(k, k.input.Int8s(), k.output.Int8s())
	case Int16:
		if k.max {
			maxPoolQuantized(k, k.input.Int16s(), k.output.Int16s(), math.MinInt16)
			return nil
		}
		return averagePoolQuantized(k, k.input.Int16s(), k.output.Int16s())
	case Uint8:
		if k.padRow != nil {
			maxPoolFast(k, k.input.Uint8s(), k.output.Uint8s())
			return nil
		}
		if k.max {
			maxPoolQuantized(k, k.input.Uint8s(), k.output.Uint8s(), 0)
			return nil
		}
		if k.sums != nil {
			return averagePoolFast(k, k.input.Uint8s(), k.output.Uint8s())
		}
		return averagePoolQuantized(k, k.input.Uint8s(), k.output.Uint8s())
	}
	return nil
}

// poolWindow is the part of the filter window at output (oy, ox) that lies
// inside the input: filter rows [y0, y1) and columns [x0, x1), and the input
// position of filter row and column 0.
func (g *convGeometry) poolWindow(oy, ox int) (inY0, inX0, y0, y1, x0, x1 int) {
	inY0 = oy*g.strideH - g.pad.height
	inX0 = ox*g.strideW - g.pad.width
	y0, y1 = max(0, -inY0), min(g.filterH, g.inH-inY0)
	x0, x1 = max(0, -inX0), min(g.filterW, g.inW-inX0)
	return
}

var errEmptyPoolWindow = errors.New("a pooling window lies entirely in the padding")

// poolAverage is a window sum divided by its count, rounding half away
// from zero as TFLM does: (sum ± count/2) / count, truncating.
func poolAverage(sum, count int32) int32 {
	if sum > 0 {
		return (sum + count/2) / count
	}
	return (sum - count/2) / count
}

// averagePoolQuantized is the reference kernel for int8, int16 and uint8:
// the window sum divided by the number of input positions in the window
// (poolAverage), then the activation clamp.
func averagePoolQuantized[T int8 | int16 | uint8](k *pool2D, in, out []T) error {
	g := &k.g
	for b := range g.batches {
		for oy := range g.outH {
			for ox := range g.outW {
				inY0, inX0, y0, y1, x0, x1 := g.poolWindow(oy, ox)
				count := int32((y1 - y0) * (x1 - x0))
				if y1 <= y0 || x1 <= x0 {
					return errEmptyPoolWindow
				}
				outPix := out[((b*g.outH+oy)*g.outW+ox)*g.outDepth:][:g.outDepth]
				for ch := range outPix {
					var acc int32
					for fy := y0; fy < y1; fy++ {
						row := ((b*g.inH+inY0+fy)*g.inW + inX0) * g.inDepth
						for fx := x0; fx < x1; fx++ {
							acc += int32(in[row+fx*g.inDepth+ch])
						}
					}
					outPix[ch] = T(clampInt32(poolAverage(acc, count), k.actMin, k.actMax))
				}
			}
		}
	}
	return nil
}

// maxPoolQuantized is the reference kernel for int8, int16 and uint8: the
// window maximum, starting from lowest (the type's minimum), then the
// activation clamp.
func maxPoolQuantized[T int8 | int16 | uint8](k *pool2D, in, out []T, lowest T) {
	g := &k.g
	for b := range g.batches {
		for oy := range g.outH {
			for ox := range g.outW {
				inY0, inX0, y0, y1, x0, x1 := g.poolWindow(oy, ox)
				outPix := out[((b*g.outH+oy)*g.outW+ox)*g.outDepth:][:g.outDepth]
				for ch := range outPix {
					m := lowest
					for fy := y0; fy < y1; fy++ {
						row := ((b*g.inH+inY0+fy)*g.inW + inX0) * g.inDepth
						for fx := x0; fx < x1; fx++ {
							if v := in[row+fx*g.inDepth+ch]; v > m {
								m = v
							}
						}
					}
					outPix[ch] = T(clampInt32(int32(m), k.actMin, k.actMax))
				}
			}
		}
	}
}

// averagePoolFloat is the float32 reference kernel: the window sum in
// float32, divided by the count as a float32.
func averagePoolFloat(k *pool2D, in, out []float32) error {
	g := &k.g
	for b := range g.batches {
		for oy := range g.outH {
			for ox := range g.outW {
				inY0, inX0, y0, y1, x0, x1 := g.poolWindow(oy, ox)
				if y1 <= y0 || x1 <= x0 {
					return errEmptyPoolWindow
				}
				count := float32((y1 - y0) * (x1 - x0))
				outPix := out[((b*g.outH+oy)*g.outW+ox)*g.outDepth:][:g.outDepth]
				for ch := range outPix {
					var total float32
					for fy := y0; fy < y1; fy++ {
						row := ((b*g.inH+inY0+fy)*g.inW + inX0) * g.inDepth
						for fx := x0; fx < x1; fx++ {
							total += in[row+fx*g.inDepth+ch]
						}
					}
					outPix[ch] = clampFloat32(total/count, k.fActMin, k.fActMax)
				}
			}
		}
	}
	return nil
}

// maxPoolFloat is the float32 reference kernel: std::max from the lowest
// float (a NaN input never replaces the running maximum), then the clamp.
func maxPoolFloat(k *pool2D, in, out []float32) {
	g := &k.g
	for b := range g.batches {
		for oy := range g.outH {
			for ox := range g.outW {
				inY0, inX0, y0, y1, x0, x1 := g.poolWindow(oy, ox)
				outPix := out[((b*g.outH+oy)*g.outW+ox)*g.outDepth:][:g.outDepth]
				for ch := range outPix {
					m := float32(-math.MaxFloat32)
					for fy := y0; fy < y1; fy++ {
						row := ((b*g.inH+inY0+fy)*g.inW + inX0) * g.inDepth
						for fx := x0; fx < x1; fx++ {
							if v := in[row+fx*g.inDepth+ch]; m < v {
								m = v
							}
						}
					}
					outPix[ch] = clampFloat32(m, k.fActMin, k.fActMax)
				}
			}
		}
	}
}
