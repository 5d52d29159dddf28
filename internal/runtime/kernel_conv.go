package runtime

import (
	"fmt"

	"github.com/edged/edged/internal/quantize"
	"github.com/edged/edged/internal/runtime/tflite"
)

// CONV_2D over NHWC inputs with OHWI filters:
//
//	out[b,y,x,o] = act(bias[o] + Σ_{fy,fx,i} in[b, y*sh-ph+fy*dh, x*sw-pw+fx*dw, g*D+i] * w[o,fy,fx,i])
//
// where D is the filter depth and g the group of output channel o (grouped
// convolution: the input depth is a multiple of D). Positions outside the
// input contribute nothing (zero padding). Types as TFLM: float32; int8
// activations with int8 filters quantized per channel (or per tensor) and
// int32 bias (reference_integer_ops::ConvPerChannel); int16 activations with
// int8 filters and int64 (or int32) bias; and uint8 with uint8 filters
// quantized per tensor, TensorFlow Lite's legacy asymmetric scheme
// (reference_ops::Conv with the multiplier of GetQuantizedConvolutionMultipler,
// as full TensorFlow Lite prepares it).

func init() {
	// Version 8 adds int4 filters, which the type checks reject.
	Register(Registration{Builtin: tflite.BuiltinOperatorCONV_2D, MaxVersion: 8, New: func() Kernel { return &conv2D{} }})
}

// convGeometry is the shape of a 2-D convolution-like op (NHWC).
type convGeometry struct {
	batches              int
	inH, inW, inDepth    int
	filterH, filterW     int
	outH, outW, outDepth int
	strideH, strideW     int
	dilationH, dilationW int
	pad                  paddingValues
}

// window computes the output size and padding from the input's and the
// filter's spatial sizes, strides and dilations.
func (g *convGeometry) window(padding tflite.Padding) error {
	var err error
	g.outH, g.outW, g.pad, err = computePaddingHeightWidth(padding,
		windowGeometry{in: g.inH, filter: g.filterH, stride: g.strideH, dilation: g.dilationH},
		windowGeometry{in: g.inW, filter: g.filterW, stride: g.strideW, dilation: g.dilationW})
	return err
}

// convQuant is the requantization state shared by the convolution kernels.
type convQuant struct {
	inputOffset, filterOffset, outputOffset int32
	// mult holds one multiplier per output channel (a per-tensor filter's
	// multiplier repeated), so Eval has a single path.
	mult           []quantize.Multiplier
	actMin, actMax int32
	// acc32 selects 32-bit accumulation for int16 activations (an int32
	// bias, or no bias with quantized_bias_type INT32).
	acc32 bool

	fActMin, fActMax float32
}

type conv2D struct {
	input, filter, bias, output *Tensor
	g                           convGeometry
	filterDepth, groupSize      int // input channels per group, output channels per group
	q                           convQuant
	fast                        *convFast // the optimized kernel Prepare chose, if any
}

func (k *conv2D) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(2, 3, 1); err != nil {
		return err
	}
	var opts tflite.Conv2DOptions
	if err := c.Options(tflite.BuiltinOptionsConv2DOptions, &opts); err != nil {
		return err
	}
	k.input, k.filter, k.bias, k.output = c.Input(0), c.Input(1), c.Input(2), c.Output(0)
	in, w, out := k.input, k.filter, k.output
	if len(in.Shape) != 4 {
		return fmt.Errorf("input %s must have rank 4 (NHWC)", in)
	}
	if len(w.Shape) != 4 {
		return fmt.Errorf("filter %s must have rank 4 (OHWI)", w)
	}
	if err := convCheckTypes(in, w, k.bias, out, false); err != nil {
		return err
	}

	g := &k.g
	g.batches, g.inH, g.inW, g.inDepth = in.Shape[0], in.Shape[1], in.Shape[2], in.Shape[3]
	g.outDepth, g.filterH, g.filterW, k.filterDepth = w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]
	g.strideH, g.strideW = int(opts.StrideH()), int(opts.StrideW())
	g.dilationH, g.dilationW = int(opts.DilationHFactor()), int(opts.DilationWFactor())
	if k.filterDepth <= 0 || g.inDepth%k.filterDepth != 0 {
		return fmt.Errorf("input depth %d is not a multiple of the filter %s depth %d", g.inDepth, w, k.filterDepth)
	}
	groups := g.inDepth / k.filterDepth
	if groups == 0 || g.outDepth%groups != 0 {
		return fmt.Errorf("%d output channels cannot be split into %d groups (input depth %d / filter depth %d)", g.outDepth, groups, g.inDepth, k.filterDepth)
	}
	k.groupSize = g.outDepth / groups
	if err := g.window(opts.Padding()); err != nil {
		return err
	}
	if err := c.SetOutputShape(0, []int{g.batches, g.outH, g.outW, g.outDepth}); err != nil {
		return err
	}
	if b := k.bias; b != nil && b.NumElements() != g.outDepth {
		return fmt.Errorf("bias %s has %d elements for %d output channels", b, b.NumElements(), g.outDepth)
	}
	if err := k.q.prepare(in, w, k.bias, out, opts.FusedActivationFunction(), 0, g.outDepth, opts.QuantizedBiasType()); err != nil {
		return err
	}
	k.fast = newConvFast(c, k)
	return nil
}

// convCheckTypes checks the type combination of a convolution: float32;
// int8 with int8 filters and int32 bias; int16 with int8 filters and int64
// (or, for CONV_2D, int32) bias; uint8 with uint8 filters and int32 bias.
func convCheckTypes(in, w, bias, out *Tensor, depthwise bool) error {
	bt := biasType(bias)
	ok := false
	switch in.Type {
	case Float32:
		ok = w.Type == Float32 && out.Type == Float32 && (bias == nil || bt == Float32)
	case Int8:
		ok = w.Type == Int8 && out.Type == Int8 && (bias == nil || bt == Int32)
	case Int16:
		ok = w.Type == Int8 && out.Type == Int16 && (bias == nil || bt == Int64 || (bt == Int32 && !depthwise))
	case Uint8:
		ok = w.Type == Uint8 && out.Type == Uint8 && (bias == nil || bt == Int32)
	}
	if !ok {
		return UnsupportedTypes("input, filter, bias, output", in.Type, w.Type, bt, out.Type)
	}
	return nil
}

// prepare computes the requantization of a convolution-like op whose filter
// is quantized per channel along dimension channelDim (channels entries):
// as PopulateConvolutionQuantizationParams does, per-channel multipliers in
// double precision for int8 and int16, and the single multiplier of
// GetQuantizedConvolutionMultipler for uint8.
func (q *convQuant) prepare(in, w, bias, out *Tensor, act tflite.ActivationFunctionType, channelDim, channels int, quantizedBiasType tflite.TensorType) error {
	if in.Type == Float32 {
		var err error
		q.fActMin, q.fActMax, err = activationRangeFloat(act)
		return err
	}
	if err := requireQuantized("input", in); err != nil {
		return err
	}
	if err := requireQuantized("filter", w); err != nil {
		return err
	}
	if err := requireQuantized("output", out); err != nil {
		return err
	}
	for _, t := range []*Tensor{in, out} {
		if err := checkZeroPointRange("tensor", t); err != nil {
			return err
		}
	}
	if w.Quant.PerChannel() {
		if in.Type == Uint8 {
			return fmt.Errorf("filter %s: per-channel quantization needs int8 or int16 activations, not uint8", w)
		}
		if qd := w.Quant.QuantizedDimension; qd != channelDim {
			return fmt.Errorf("filter %s is quantized along dimension %d, want the output-channel dimension %d", w, qd, channelDim)
		}
	}
	if len(w.Quant.Scale) != 1 && len(w.Quant.Scale) != channels {
		return fmt.Errorf("filter %s has %d scales for %d output channels", w, len(w.Quant.Scale), channels)
	}
	q.inputOffset = -in.ZeroPoint()
	q.outputOffset = out.ZeroPoint()
	switch in.Type {
	case Uint8:
		if err := checkZeroPointRange("filter", w); err != nil {
			return err
		}
		q.filterOffset = -w.ZeroPoint()
		m, err := tensorMultiplier(in, w, bias, out)
		if err != nil {
			return err
		}
		q.mult = make([]quantize.Multiplier, channels)
		for i := range q.mult {
			q.mult[i] = m
		}
	default:
		// TFLM's int8 and int16 kernels ignore the filter's zero point: the
		// quantization spec makes it 0, and a model saying otherwise would
		// silently compute something else.
		for i, zp := range w.Quant.ZeroPoint {
			if zp != 0 {
				return fmt.Errorf("filter %s has zero point %d (channel %d); %s filters must be symmetric (zero point 0)", w, zp, i, w.Type)
			}
		}
		if in.Type == Int16 {
			// The int16 kernels have no input or output offset.
			if in.ZeroPoint() != 0 || out.ZeroPoint() != 0 {
				return fmt.Errorf("int16 input %s and output %s must have zero point 0, have %d and %d", in, out, in.ZeroPoint(), out.ZeroPoint())
			}
			q.acc32 = (bias != nil && bias.Type == Int32) || (bias == nil && quantizedBiasType == tflite.TensorTypeINT32)
		}
		m, err := channelMultipliers(in, w, out, channels)
		if err != nil {
			return err
		}
		if in.Type == Int16 && !q.acc32 {
			// The 64-bit MultiplyByQuantizedMultiplier takes shifts up to 7.
			for c, mu := range m {
				if mu.Shift > 7 {
					return fmt.Errorf("output channel %d: requantization factor input scale %g × filter scale / output scale %g is too large for 64-bit accumulation (shift %d > 7)", c, in.Scale(), out.Scale(), mu.Shift)
				}
			}
		}
		q.mult = m
	}
	var err error
	q.actMin, q.actMax, err = activationRangeQuantized(act, out)
	return err
}

func (k *conv2D) MACs() int64 {
	g := &k.g
	return int64(g.batches) * int64(g.outH) * int64(g.outW) * int64(g.outDepth) *
		int64(g.filterH) * int64(g.filterW) * int64(k.filterDepth)
}

func (k *conv2D) Eval() error {
	if k.fast != nil {
		k.fast.eval()
		return nil
	}
	switch k.input.Type {
	case Float32:
		var bias []float32
		if k.bias != nil {
			bias = k.bias.Float32s()
		}
		convFloat(k, k.input.Float32s(), k.filter.Float32s(), bias, k.output.Float32s())
	case Int8:
		convQuantized(k, k.input.Int8s(), k.filter.Int8s(), biasInt32s(k.bias), k.output.Int8s())
	case Uint8:
		convQuantized(k, k.input.Uint8s(), k.filter.Uint8s(), biasInt32s(k.bias), k.output.Uint8s())
	case Int16:
		if k.q.acc32 {
			convInt16(k, k.input.Int16s(), k.filter.Int8s(), biasInt32s(k.bias), k.output.Int16s(), scaleAcc32)
		} else {
			var bias []int64
			if k.bias != nil {
				bias = k.bias.Int64s()
			}
			convInt16(k, k.input.Int16s(), k.filter.Int8s(), bias, k.output.Int16s(), scaleAcc64)
		}
	}
	return nil
}

// biasInt32s is an optional int32 bias's contents.
func biasInt32s(b *Tensor) []int32 {
	if b == nil {
		return nil
	}
	return b.Int32s()
}

// scaleAcc32 and scaleAcc64 requantize an int32 or int64 accumulator as
// TensorFlow Lite's MultiplyByQuantizedMultiplier overloads do.
func scaleAcc32(acc int32, m quantize.Multiplier) int32 { return m.Apply(acc) }
func scaleAcc64(acc int64, m quantize.Multiplier) int32 {
	return quantize.MultiplyByQuantizedMultiplier64(acc, m.Significand, m.Shift)
}

// convQuantized is the reference kernel for int8 (ConvPerChannel, whose
// filter offset is 0) and uint8 (reference_ops::Conv): 32-bit accumulation of
// (w + filterOffset) * (x + inputOffset), bias, per-channel requantization,
// output offset, activation clamp.
func convQuantized[T int8 | uint8](k *conv2D, in, w []T, bias []int32, out []T) {
	g, q := &k.g, &k.q
	fd := k.filterDepth
	for b := range g.batches {
		for oy := range g.outH {
			inY0 := oy*g.strideH - g.pad.height
			for ox := range g.outW {
				inX0 := ox*g.strideW - g.pad.width
				outPix := out[((b*g.outH+oy)*g.outW+ox)*g.outDepth:][:g.outDepth]
				for oc := range outPix {
					group := oc / k.groupSize
					var acc int32
					for fy := range g.filterH {
						inY := inY0 + g.dilationH*fy
						if inY < 0 || inY >= g.inH {
							continue
						}
						for fx := range g.filterW {
							inX := inX0 + g.dilationW*fx
							if inX < 0 || inX >= g.inW {
								continue
							}
							x := in[((b*g.inH+inY)*g.inW+inX)*g.inDepth+group*fd:][:fd]
							f := w[((oc*g.filterH+fy)*g.filterW+fx)*fd:][:fd]
							for i, xv := range x {
								acc += (int32(f[i]) + q.filterOffset) * (int32(xv) + q.inputOffset)
							}
						}
					}
					if bias != nil {
						acc += bias[oc]
					}
					v := q.mult[oc].Apply(acc) + q.outputOffset
					outPix[oc] = T(clampInt32(v, q.actMin, q.actMax))
				}
			}
		}
	}
}

// convInt16 is the reference kernel for int16 activations with int8
// filters (ConvPerChannel<AccumScalar>): no offsets, accumulation in A.
func convInt16[A int32 | int64](k *conv2D, in []int16, w []int8, bias []A, out []int16, scale func(A, quantize.Multiplier) int32) {
	g, q := &k.g, &k.q
	fd := k.filterDepth
	for b := range g.batches {
		for oy := range g.outH {
			inY0 := oy*g.strideH - g.pad.height
			for ox := range g.outW {
				inX0 := ox*g.strideW - g.pad.width
				outPix := out[((b*g.outH+oy)*g.outW+ox)*g.outDepth:][:g.outDepth]
				for oc := range outPix {
					group := oc / k.groupSize
					var acc A
					for fy := range g.filterH {
						inY := inY0 + g.dilationH*fy
						if inY < 0 || inY >= g.inH {
							continue
						}
						for fx := range g.filterW {
							inX := inX0 + g.dilationW*fx
							if inX < 0 || inX >= g.inW {
								continue
							}
							x := in[((b*g.inH+inY)*g.inW+inX)*g.inDepth+group*fd:][:fd]
							f := w[((oc*g.filterH+fy)*g.filterW+fx)*fd:][:fd]
							for i, xv := range x {
								acc += A(int32(f[i]) * int32(xv))
							}
						}
					}
					if bias != nil {
						acc += bias[oc]
					}
					outPix[oc] = int16(clampInt32(scale(acc, q.mult[oc]), q.actMin, q.actMax))
				}
			}
		}
	}
}

// convFloat is the float32 reference kernel (reference_ops::Conv): products
// summed in float32 in filter order, then the bias, then the clamp.
func convFloat(k *conv2D, in, w, bias, out []float32) {
	g, q := &k.g, &k.q
	fd := k.filterDepth
	for b := range g.batches {
		for oy := range g.outH {
			inY0 := oy*g.strideH - g.pad.height
			for ox := range g.outW {
				inX0 := ox*g.strideW - g.pad.width
				outPix := out[((b*g.outH+oy)*g.outW+ox)*g.outDepth:][:g.outDepth]
				for oc := range outPix {
					group := oc / k.groupSize
					var total float32
					for fy := range g.filterH {
						inY := inY0 + g.dilationH*fy
						if inY < 0 || inY >= g.inH {
							continue
						}
						for fx := range g.filterW {
							inX := inX0 + g.dilationW*fx
							if inX < 0 || inX >= g.inW {
								continue
							}
							x := in[((b*g.inH+inY)*g.inW+inX)*g.inDepth+group*fd:][:fd]
							f := w[((oc*g.filterH+fy)*g.filterW+fx)*fd:][:fd]
							for i, xv := range x {
								// The conversion keeps Go from fusing into an
								// FMA, which TFLM's x86 build does not use.
								total += float32(xv * f[i])
							}
						}
					}
					var bv float32
					if bias != nil {
						bv = bias[oc]
					}
					outPix[oc] = clampFloat32(total+bv, q.fActMin, q.fActMax)
				}
			}
		}
	}
}
