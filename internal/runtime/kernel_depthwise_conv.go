package runtime

import (
	"fmt"

	"github.com/edged/edged/internal/quantize"
	"github.com/edged/edged/internal/runtime/tflite"
)

// DEPTHWISE_CONV_2D over NHWC inputs with [1, H, W, C*M] filters, M the
// depth multiplier:
//
//	out[b,y,x,c*M+m] = act(bias[c*M+m] + Σ_{fy,fx} in[b, y*sh-ph+fy*dh, x*sw-pw+fx*dw, c] * w[0,fy,fx,c*M+m])
//
// Positions outside the input contribute nothing. Types as TFLM: float32;
// int8 with int8 filters quantized per channel along dimension 3 (or per
// tensor) and int32 bias (reference_integer_ops::DepthwiseConvPerChannel);
// int16 with int8 filters and int64 bias; and uint8 per tensor
// (reference_ops::DepthwiseConv from depthwiseconv_uint8.h, whose
// kAwayFromZero rounding is MultiplyByQuantizedMultiplier's double rounding
// whether or not TFLITE_SINGLE_ROUNDING is set).

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorDEPTHWISE_CONV_2D, MaxVersion: 7, New: func() Kernel { return &depthwiseConv2D{} }})
}

type depthwiseConv2D struct {
	input, filter, bias, output *Tensor
	g                           convGeometry
	depthMultiplier             int
	q                           convQuant
	fast                        *dwFast // the optimized kernel Prepare chose, if any
}

func (k *depthwiseConv2D) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(2, 3, 1); err != nil {
		return err
	}
	var opts tflite.DepthwiseConv2DOptions
	if err := c.Options(tflite.BuiltinOptionsDepthwiseConv2DOptions, &opts); err != nil {
		return err
	}
	k.input, k.filter, k.bias, k.output = c.Input(0), c.Input(1), c.Input(2), c.Output(0)
	in, w, out := k.input, k.filter, k.output
	if len(in.Shape) != 4 {
		return fmt.Errorf("input %s must have rank 4 (NHWC)", in)
	}
	if len(w.Shape) != 4 || w.Shape[0] != 1 {
		return fmt.Errorf("filter %s must have shape [1, height, width, channels]", w)
	}
	if err := convCheckTypes(in, w, k.bias, out, true); err != nil {
		return err
	}

	g := &k.g
	g.batches, g.inH, g.inW, g.inDepth = in.Shape[0], in.Shape[1], in.Shape[2], in.Shape[3]
	g.filterH, g.filterW, g.outDepth = w.Shape[1], w.Shape[2], w.Shape[3]
	g.strideH, g.strideW = int(opts.StrideH()), int(opts.StrideW())
	g.dilationH, g.dilationW = int(opts.DilationHFactor()), int(opts.DilationWFactor())
	if g.inDepth <= 0 || g.outDepth%g.inDepth != 0 {
		return fmt.Errorf("filter %s has %d channels, not a multiple of the input %s depth %d", w, g.outDepth, in, g.inDepth)
	}
	// The depth multiplier option is redundant with the shapes; TensorFlow
	// Lite checks they agree.
	k.depthMultiplier = g.outDepth / g.inDepth
	if dm := int(opts.DepthMultiplier()); dm != k.depthMultiplier {
		return fmt.Errorf("depth multiplier %d does not match input depth %d and filter depth %d", dm, g.inDepth, g.outDepth)
	}
	if err := g.window(opts.Padding()); err != nil {
		return err
	}
	if err := c.SetOutputShape(0, []int{g.batches, g.outH, g.outW, g.outDepth}); err != nil {
		return err
	}
	if b := k.bias; b != nil && b.NumElements() != g.outDepth {
		return fmt.Errorf("bias %s has %d elements for %d output channels", b, b.NumElements(), g.outDepth)
	}
	if err := k.q.prepare(in, w, k.bias, out, opts.FusedActivationFunction(), 3, g.outDepth, tflite.TensorTypeINT64); err != nil {
		return err
	}
	k.fast = newDwFast(c, k)
	return nil
}

func (k *depthwiseConv2D) MACs() int64 {
	g := &k.g
	return int64(g.batches) * int64(g.outH) * int64(g.outW) * int64(g.outDepth) * int64(g.filterH) * int64(g.filterW)
}

func (k *depthwiseConv2D) Eval() error {
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
		depthwiseFloat(k, k.input.Float32s(), k.filter.Float32s(), bias, k.output.Float32s())
	case Int8:
		depthwiseQuantized(k, k.input.Int8s(), k.filter.Int8s(), biasInt32s(k.bias), k.output.Int8s())
	case Uint8:
		depthwiseQuantized(k, k.input.Uint8s(), k.filter.Uint8s(), biasInt32s(k.bias), k.output.Uint8s())
	case Int16:
		var bias []int64
		if k.bias != nil {
			bias = k.bias.Int64s()
		}
		depthwiseInt16(k, k.input.Int16s(), k.filter.Int8s(), bias, k.output.Int16s())
	}
	return nil
}

// depthwiseQuantized is the reference kernel for int8
// (DepthwiseConvPerChannel, filter offset 0) and uint8
// (reference_ops::DepthwiseConv).
func depthwiseQuantized[T int8 | uint8](k *depthwiseConv2D, in, w []T, bias []int32, out []T) {
	g, q := &k.g, &k.q
	dm := k.depthMultiplier
	for b := range g.batches {
		for oy := range g.outH {
			inY0 := oy*g.strideH - g.pad.height
			for ox := range g.outW {
				inX0 := ox*g.strideW - g.pad.width
				outPix := out[((b*g.outH+oy)*g.outW+ox)*g.outDepth:][:g.outDepth]
				for ic := range g.inDepth {
					for m := range dm {
						oc := m + ic*dm
						var acc int32
						for fy := range g.filterH {
							inY := inY0 + g.dilationH*fy
							if inY < 0 || inY >= g.inH {
								continue
							}
							inRow := (b*g.inH+inY)*g.inW*g.inDepth + ic
							wRow := fy*g.filterW*g.outDepth + oc
							for fx := range g.filterW {
								inX := inX0 + g.dilationW*fx
								if inX < 0 || inX >= g.inW {
									continue
								}
								x := in[inRow+inX*g.inDepth]
								f := w[wRow+fx*g.outDepth]
								acc += (int32(f) + q.filterOffset) * (int32(x) + q.inputOffset)
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
}

// depthwiseInt16 is the reference kernel for int16 activations with int8
// filters: 64-bit accumulation, no offsets.
func depthwiseInt16(k *depthwiseConv2D, in []int16, w []int8, bias []int64, out []int16) {
	g, q := &k.g, &k.q
	dm := k.depthMultiplier
	for b := range g.batches {
		for oy := range g.outH {
			inY0 := oy*g.strideH - g.pad.height
			for ox := range g.outW {
				inX0 := ox*g.strideW - g.pad.width
				outPix := out[((b*g.outH+oy)*g.outW+ox)*g.outDepth:][:g.outDepth]
				for ic := range g.inDepth {
					for m := range dm {
						oc := m + ic*dm
						var acc int64
						for fy := range g.filterH {
							inY := inY0 + g.dilationH*fy
							if inY < 0 || inY >= g.inH {
								continue
							}
							inRow := (b*g.inH+inY)*g.inW*g.inDepth + ic
							wRow := fy*g.filterW*g.outDepth + oc
							for fx := range g.filterW {
								inX := inX0 + g.dilationW*fx
								if inX < 0 || inX >= g.inW {
									continue
								}
								x := in[inRow+inX*g.inDepth]
								f := w[wRow+fx*g.outDepth]
								acc += int64(f) * int64(x)
							}
						}
						if bias != nil {
							acc += bias[oc]
						}
						mu := q.mult[oc]
						v := quantize.MultiplyByQuantizedMultiplier64(acc, mu.Significand, mu.Shift)
						outPix[oc] = int16(clampInt32(v, q.actMin, q.actMax))
					}
				}
			}
		}
	}
}

// depthwiseFloat is the float32 reference kernel
// (reference_ops::DepthwiseConv).
func depthwiseFloat(k *depthwiseConv2D, in, w, bias, out []float32) {
	g, q := &k.g, &k.q
	dm := k.depthMultiplier
	for b := range g.batches {
		for oy := range g.outH {
			inY0 := oy*g.strideH - g.pad.height
			for ox := range g.outW {
				inX0 := ox*g.strideW - g.pad.width
				outPix := out[((b*g.outH+oy)*g.outW+ox)*g.outDepth:][:g.outDepth]
				for ic := range g.inDepth {
					for m := range dm {
						oc := m + ic*dm
						var total float32
						for fy := range g.filterH {
							inY := inY0 + g.dilationH*fy
							if inY < 0 || inY >= g.inH {
								continue
							}
							inRow := (b*g.inH+inY)*g.inW*g.inDepth + ic
							wRow := fy*g.filterW*g.outDepth + oc
							for fx := range g.filterW {
								inX := inX0 + g.dilationW*fx
								if inX < 0 || inX >= g.inW {
									continue
								}
								x := in[inRow+inX*g.inDepth]
								f := w[wRow+fx*g.outDepth]
								total += float32(x * f) // no FMA, as TFLM's x86 build
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
}
