package runtime

import (
	"fmt"

	"github.com/edged/edged/internal/quantize"
	"github.com/edged/edged/internal/runtime/tflite"
)

// FULLY_CONNECTED: out[b][o] = act(sum_d in[b][d] * w[o][d] + bias[o]).
// Types as TFLM: float32; int8 activations with int8 weights (per tensor or
// per channel) and int32 bias; int16 activations with int8 weights and
// int64 bias; and uint8 (TensorFlow Lite's legacy per-tensor asymmetric
// scheme, reference_ops::FullyConnected).

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorFULLY_CONNECTED, MaxVersion: 12, New: func() Kernel { return &fullyConnected{} }})
}

type fullyConnected struct {
	input, filter, bias, output *Tensor

	batches, outDepth, accDepth int

	inputOffset, filterOffset, outputOffset int32
	// mult holds one multiplier per output channel (a per-tensor filter's
	// multiplier repeated), so Eval has a single path.
	mult           []quantize.Multiplier
	actMin, actMax int32

	fActMin, fActMax float32
	fast             *fcFast // the optimized kernel Prepare chose, if any
}

func (k *fullyConnected) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(2, 3, 1); err != nil {
		return err
	}
	var opts tflite.FullyConnectedOptions
	if err := c.Options(tflite.BuiltinOptionsFullyConnectedOptions, &opts); err != nil {
		return err
	}
	if f := opts.WeightsFormat(); f != tflite.FullyConnectedOptionsWeightsFormatDEFAULT {
		return fmt.Errorf("weights format %s is not supported", tflite.EnumNamesFullyConnectedOptionsWeightsFormat[f])
	}
	k.input, k.filter, k.bias, k.output = c.Input(0), c.Input(1), c.Input(2), c.Output(0)
	in, w, out := k.input, k.filter, k.output

	if len(w.Shape) < 2 {
		return fmt.Errorf("filter %s must have rank 2 or more", w)
	}
	k.outDepth = w.Dim(-2)
	k.accDepth = w.Dim(-1)
	for _, d := range w.Shape[:len(w.Shape)-2] {
		if d != 1 {
			return fmt.Errorf("filter %s: leading dimensions must be 1", w)
		}
	}
	if k.accDepth == 0 || in.NumElements()%k.accDepth != 0 {
		return fmt.Errorf("input %s has %d elements, not a multiple of the filter's depth %d", in, in.NumElements(), k.accDepth)
	}
	k.batches = in.NumElements() / k.accDepth
	var shape []int
	if opts.KeepNumDims() {
		shape = append(append([]int(nil), in.Shape[:len(in.Shape)-1]...), k.outDepth)
		if len(in.Shape) == 0 || in.Dim(-1) != k.accDepth {
			return fmt.Errorf("keep_num_dims needs the input's last dimension (%s) to equal the filter's depth %d", FormatShape(in.Shape), k.accDepth)
		}
	} else {
		shape = []int{k.batches, k.outDepth}
	}
	if err := c.SetOutputShape(0, shape); err != nil {
		return err
	}
	if b := k.bias; b != nil && b.NumElements() != k.outDepth {
		return fmt.Errorf("bias %s has %d elements for %d output channels", b, b.NumElements(), k.outDepth)
	}

	act := opts.FusedActivationFunction()
	if in.Type == Float32 {
		if w.Type != Float32 || out.Type != Float32 || (k.bias != nil && k.bias.Type != Float32) {
			return UnsupportedTypes("float input with filter, bias, output", w.Type, biasType(k.bias), out.Type)
		}
		var err error
		k.fActMin, k.fActMax, err = activationRangeFloat(act)
		return err
	}

	switch {
	case in.Type == Int8 && w.Type == Int8 && out.Type == Int8 && (k.bias == nil || k.bias.Type == Int32):
	case in.Type == Int16 && w.Type == Int8 && out.Type == Int16 && (k.bias == nil || k.bias.Type == Int64):
	case in.Type == Uint8 && w.Type == Uint8 && out.Type == Uint8 && (k.bias == nil || k.bias.Type == Int32):
	default:
		return UnsupportedTypes("input, filter, bias, output", in.Type, w.Type, biasType(k.bias), out.Type)
	}
	for _, t := range []*Tensor{in, w, out} {
		if err := requireQuantized("tensor", t); err != nil {
			return err
		}
	}
	k.inputOffset = -in.ZeroPoint()
	k.filterOffset = -w.ZeroPoint()
	k.outputOffset = out.ZeroPoint()
	if w.Quant.PerChannel() {
		if in.Type == Uint8 {
			return fmt.Errorf("per-channel uint8 filters are not supported")
		}
		if qd := w.Quant.QuantizedDimension; qd != len(w.Shape)-2 {
			return fmt.Errorf("filter %s is quantized along dimension %d, want the output dimension %d", w, qd, len(w.Shape)-2)
		}
		m, err := channelMultipliers(in, w, out, k.outDepth)
		if err != nil {
			return err
		}
		k.mult = m
	} else {
		m, err := tensorMultiplier(in, w, k.bias, out)
		if err != nil {
			return err
		}
		k.mult = make([]quantize.Multiplier, k.outDepth)
		for i := range k.mult {
			k.mult[i] = m
		}
	}
	if in.Type == Int16 {
		for c, m := range k.mult {
			// The 64-bit requantization (MultiplyByQuantizedMultiplier with
			// an int64 input) is defined for shifts below 8.
			if m.Shift > 7 {
				return fmt.Errorf("output channel %d: requantization factor too large for int16 (shift %d > 7)", c, m.Shift)
			}
		}
	}
	var err error
	if k.actMin, k.actMax, err = activationRangeQuantized(act, out); err != nil {
		return err
	}
	k.fast = newFCFast(c, k)
	return nil
}

func biasType(b *Tensor) DType {
	if b == nil {
		return 0
	}
	return b.Type
}

func (k *fullyConnected) MACs() int64 {
	return int64(k.batches) * int64(k.outDepth) * int64(k.accDepth)
}

func (k *fullyConnected) Eval() error {
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
		fullyConnectedFloat(k, k.input.Float32s(), k.filter.Float32s(), bias, k.output.Float32s())
	case Int8:
		fullyConnectedQuantized(k, k.input.Int8s(), k.filter.Int8s(), k.biasInt32(), k.output.Int8s())
	case Uint8:
		fullyConnectedQuantized(k, k.input.Uint8s(), k.filter.Uint8s(), k.biasInt32(), k.output.Uint8s())
	case Int16:
		var bias []int64
		if k.bias != nil {
			bias = k.bias.Int64s()
		}
		fullyConnectedInt16(k, k.input.Int16s(), k.filter.Int8s(), bias, k.output.Int16s())
	}
	return nil
}

func (k *fullyConnected) biasInt32() []int32 {
	if k.bias == nil {
		return nil
	}
	return k.bias.Int32s()
}

// fullyConnectedQuantized is the reference kernel for int8 and uint8
// (reference_integer_ops::FullyConnected[PerChannel] and
// reference_ops::FullyConnected).
func fullyConnectedQuantized[T int8 | uint8, W int8 | uint8](k *fullyConnected, in []T, w []W, bias []int32, out []T) {
	acc := k.accDepth
	for b := range k.batches {
		row := in[b*acc : b*acc+acc]
		for o := range k.outDepth {
			wrow := w[o*acc : o*acc+acc]
			var sum int32
			for d, x := range row {
				sum += (int32(wrow[d]) + k.filterOffset) * (int32(x) + k.inputOffset)
			}
			if bias != nil {
				sum += bias[o]
			}
			v := k.mult[o].Apply(sum) + k.outputOffset
			out[b*k.outDepth+o] = T(clampInt32(v, k.actMin, k.actMax))
		}
	}
}

// fullyConnectedInt16 is the reference kernel for int16 activations with
// int8 weights and 64-bit accumulation.
func fullyConnectedInt16(k *fullyConnected, in []int16, w []int8, bias []int64, out []int16) {
	acc := k.accDepth
	for b := range k.batches {
		row := in[b*acc : b*acc+acc]
		for o := range k.outDepth {
			wrow := w[o*acc : o*acc+acc]
			var sum int64
			for d, x := range row {
				sum += int64(int32(wrow[d])+k.filterOffset) * int64(int32(x)+k.inputOffset)
			}
			if bias != nil {
				sum += bias[o]
			}
			m := k.mult[o]
			v := quantize.MultiplyByQuantizedMultiplier64(sum, m.Significand, m.Shift) + k.outputOffset
			out[b*k.outDepth+o] = int16(clampInt32(v, k.actMin, k.actMax))
		}
	}
}

// fullyConnectedFloat is the float32 reference kernel.
func fullyConnectedFloat(k *fullyConnected, in, w, bias, out []float32) {
	acc := k.accDepth
	for b := range k.batches {
		row := in[b*acc : b*acc+acc]
		for o := range k.outDepth {
			wrow := w[o*acc : o*acc+acc]
			var total float32
			for d, x := range row {
				// The conversion keeps Go from fusing into an FMA, which
				// TensorFlow Lite's x86 reference build does not use.
				total += float32(x * wrow[d])
			}
			var bv float32
			if bias != nil {
				bv = bias[o]
			}
			out[b*k.outDepth+o] = clampFloat32(total+bv, k.fActMin, k.fActMax)
		}
	}
}
