package runtime

import (
	"fmt"
	"math"

	"github.com/edged/edged/internal/quantize"
	"github.com/edged/edged/internal/runtime/tflite"
)

// SVDF (singular value decomposition filter) as TFLM runs it
// (micro/kernels/svdf.cc, svdf_common.cc): a rank-limited 1-D convolution
// over time. Every invoke takes one input frame per batch row:
//
//	state[b][f] shifts left by one frame; its newest entry = W_feature[f]·x[b]
//	out[b][u] = act(bias[u] + Σ_{r<rank} W_time[u*rank+r]·state[b][u*rank+r])
//
// where state[b][f] holds the last memory_size feature outputs of filter f.
// The activation state (input 4) is a variable tensor kept across invokes
// until Interpreter.Reset.
//
// Types: float32; int8 input, int8 feature weights, int16 (or int8) time
// weights and state, int32 bias, int8 output (EvalIntegerSvdfReference). As
// in TFLM, the integer path applies no fused activation and ignores the
// weights' zero points; the bias is optional.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorSVDF, MaxVersion: 4, New: func() Kernel { return &svdf{} }})
}

// Input slots.
const (
	svdfInput          = 0
	svdfWeightsFeature = 1
	svdfWeightsTime    = 2
	svdfBias           = 3
	svdfState          = 4
)

type svdf struct {
	input, weightsFeature, weightsTime, bias, state, output *Tensor

	rank, batches, inputs, filters, units, memory int
	activation                                    tflite.ActivationFunctionType

	// scratch holds batches × filters time-weighted sums; scratchOut
	// (integer path) batches × units pre-requantization outputs.
	scratch, scratchOut *Scratch

	// Integer path.
	featureMult, outputMult                    quantize.Multiplier
	inputZeroPoint, outputZeroPoint, stateZero int32
}

func (k *svdf) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(3, 5, 1); err != nil {
		return err
	}
	if n := c.NumInputs(); n != 5 {
		return fmt.Errorf("has %d inputs, want 5 (input, feature weights, time weights, bias, activation state)", n)
	}
	var opts tflite.SVDFOptions
	if err := c.Options(tflite.BuiltinOptionsSVDFOptions, &opts); err != nil {
		return err
	}
	k.input, k.weightsFeature, k.weightsTime = c.Input(svdfInput), c.Input(svdfWeightsFeature), c.Input(svdfWeightsTime)
	k.bias, k.state, k.output = c.Input(svdfBias), c.Input(svdfState), c.Output(0)
	if k.state == nil {
		return fmt.Errorf("activation state (input %d) is omitted", svdfState)
	}
	in, wf, wt, bias, state := k.input, k.weightsFeature, k.weightsTime, k.bias, k.state

	k.rank = int(opts.Rank())
	if k.rank < 1 {
		return fmt.Errorf("rank %d must be at least 1", k.rank)
	}
	if len(in.Shape) != 2 {
		return fmt.Errorf("input %s must have rank 2 [batch, input size]", in)
	}
	k.batches, k.inputs = in.Shape[0], in.Shape[1]
	if len(wf.Shape) != 2 || wf.Shape[1] != k.inputs {
		return fmt.Errorf("feature weights %s must have shape [filters, %d]", wf, k.inputs)
	}
	k.filters = wf.Shape[0]
	if k.filters%k.rank != 0 {
		return fmt.Errorf("feature weights %s: %d filters is not a multiple of the rank %d", wf, k.filters, k.rank)
	}
	k.units = k.filters / k.rank
	if len(wt.Shape) != 2 || wt.Shape[0] != k.filters {
		return fmt.Errorf("time weights %s must have shape [%d, memory size]", wt, k.filters)
	}
	k.memory = wt.Shape[1]
	if k.memory < 1 {
		return fmt.Errorf("time weights %s: memory size must be at least 1", wt)
	}
	if bias != nil && (len(bias.Shape) != 1 || bias.Shape[0] != k.units) {
		return fmt.Errorf("bias %s must have shape [%d] (filters / rank)", bias, k.units)
	}
	if len(state.Shape) != 2 || state.Shape[0] != k.batches || state.Shape[1] != k.memory*k.filters {
		return fmt.Errorf("activation state %s must have shape [%d,%d] (batch, memory size × filters)", state, k.batches, k.memory*k.filters)
	}
	if !state.Variable {
		return fmt.Errorf("activation state %s must be a variable tensor", state)
	}
	if err := c.SetOutputShape(0, []int{k.batches, k.units}); err != nil {
		return err
	}

	k.activation = opts.FusedActivationFunction()
	switch in.Type {
	case Float32:
		if wf.Type != Float32 || wt.Type != Float32 || state.Type != Float32 || k.output.Type != Float32 || (bias != nil && bias.Type != Float32) {
			if wf.Type == Int8 {
				return fmt.Errorf("hybrid SVDF (float input with int8 weights) is not supported by TFLM")
			}
			return UnsupportedTypes("float input with feature weights, time weights, bias, state, output", wf.Type, wt.Type, biasType(bias), state.Type, k.output.Type)
		}
		if _, ok := tflite.EnumNamesActivationFunctionType[k.activation]; !ok {
			return fmt.Errorf("fused activation %s is not supported", activationName(k.activation))
		}
		k.scratch = c.RequestScratch(k.batches * k.filters * 4)
		return nil
	case Int8:
		return k.prepareInt8(c)
	}
	return UnsupportedTypes("input", in.Type)
}

func (k *svdf) prepareInt8(c *PrepareContext) error {
	in, wf, wt, bias, state, out := k.input, k.weightsFeature, k.weightsTime, k.bias, k.state, k.output
	if wf.Type != Int8 || !(wt.Type == Int16 || wt.Type == Int8) || state.Type != wt.Type || out.Type != Int8 || (bias != nil && bias.Type != Int32) {
		return UnsupportedTypes("int8 input with feature weights, time weights, bias, state, output (want int8, int16 or int8, int32, the time weights' type, int8)",
			wf.Type, wt.Type, biasType(bias), state.Type, out.Type)
	}
	for _, t := range []*Tensor{in, wf, wt, state, out} {
		if err := requireQuantized("tensor", t); err != nil {
			return err
		}
		if err := checkZeroPointRange("tensor", t); err != nil {
			return err
		}
	}
	// The scales are multiplied and divided in float, as TFLM does.
	inS, wfS, wtS, stS, outS := in.Scale(), wf.Scale(), wt.Scale(), state.Scale(), out.Scale()
	scale1 := float64(inS * wfS / stS)
	scale2 := float64(stS * wtS / outS)
	if bias != nil {
		if d := math.Abs(float64(bias.Scale()) - float64(stS*wtS)); !(d < 1e-5) {
			return fmt.Errorf("bias %s scale %g does not match activation state scale × time weights scale %g", bias, bias.Scale(), stS*wtS)
		}
	}
	var err error
	if k.featureMult, err = quantize.CheckedMultiplier(scale1); err != nil {
		return fmt.Errorf("input × feature weights into the activation state: %w", err)
	}
	if k.outputMult, err = quantize.CheckedMultiplier(scale2); err != nil {
		return fmt.Errorf("activation state × time weights into the output: %w", err)
	}
	k.inputZeroPoint, k.outputZeroPoint, k.stateZero = in.ZeroPoint(), out.ZeroPoint(), state.ZeroPoint()
	k.scratch = c.RequestScratch(k.batches * k.filters * 4)
	k.scratchOut = c.RequestScratch(k.batches * k.units * 4)
	return nil
}

func (k *svdf) MACs() int64 {
	return int64(k.batches) * int64(k.filters) * int64(k.inputs+k.memory)
}

func (k *svdf) Eval() error {
	if k.input.Type == Float32 {
		var bias []float32
		if k.bias != nil {
			bias = k.bias.Float32s()
		}
		svdfFloat(k, k.input.Float32s(), k.weightsFeature.Float32s(), k.weightsTime.Float32s(), bias,
			k.state.Float32s(), view[float32](k.scratch.Bytes), k.output.Float32s())
		return nil
	}
	var bias []int32
	if k.bias != nil {
		bias = k.bias.Int32s()
	}
	scratch, scratchOut := view[int32](k.scratch.Bytes), view[int32](k.scratchOut.Bytes)
	if k.state.Type == Int16 {
		svdfInteger(k, k.input.Int8s(), k.weightsFeature.Int8s(), k.weightsTime.Int16s(), bias, k.state.Int16s(), scratch, scratchOut, k.output.Int8s())
	} else {
		svdfInteger(k, k.input.Int8s(), k.weightsFeature.Int8s(), k.weightsTime.Int8s(), bias, k.state.Int8s(), scratch, scratchOut, k.output.Int8s())
	}
	return nil
}

// svdfInteger is EvalIntegerSvdfReference, T being the type of the time
// weights and the activation state.
func svdfInteger[T int8 | int16](k *svdf, in, wf []int8, wt []T, bias []int32, state []T, scratch, scratchOut []int32, out []int8) {
	nIn, nFilter, nMemory, nUnit, rank := k.inputs, k.filters, k.memory, k.units, k.rank
	stateLo, stateHi, _ := typeRange(k.state.Type)

	// Shift the state one frame left (over the whole buffer; each filter's
	// newest entry is overwritten below).
	if len(state) > 0 {
		copy(state, state[1:])
	}

	// Feature matmul into each filter's newest state entry.
	for b := range k.batches {
		x := in[b*nIn : (b+1)*nIn]
		for f := range nFilter {
			w := wf[f*nIn : (f+1)*nIn]
			var dot int32
			for c, v := range x {
				dot += int32(w[c]) * (int32(v) - k.inputZeroPoint)
			}
			dot = clampInt32(k.featureMult.Apply(dot), stateLo, stateHi)
			// The zero point is added after the clamp; the sum wraps to T.
			state[(b*nFilter+f)*nMemory+nMemory-1] = T(k.stateZero + dot)
		}
	}

	// Time weights: one dot product over the memory per filter.
	for b := range k.batches {
		st := state[b*nMemory*nFilter : (b+1)*nMemory*nFilter]
		for f := range nFilter {
			w, s := wt[f*nMemory:(f+1)*nMemory], st[f*nMemory:(f+1)*nMemory]
			var sum int32
			for j, v := range s {
				sum += int32(w[j]) * (int32(v) - k.stateZero)
			}
			scratch[b*nFilter+f] = sum
		}
	}

	// Bias, reduction over the rank, requantization.
	for b := range k.batches {
		for u := range nUnit {
			var acc int32
			if bias != nil {
				acc = bias[u]
			}
			for _, v := range scratch[b*nFilter+u*rank : b*nFilter+(u+1)*rank] {
				acc += v
			}
			scratchOut[b*nUnit+u] = acc
		}
	}
	for i, acc := range scratchOut[:k.batches*nUnit] {
		v := k.outputMult.Apply(acc) + k.outputZeroPoint
		out[i] = int8(clampInt32(v, math.MinInt8, math.MaxInt8))
	}
}

// svdfFloat is EvalFloatSvdfReference.
func svdfFloat(k *svdf, in, wf, wt, bias, state, scratch, out []float32) {
	nIn, nFilter, nMemory, nUnit, rank := k.inputs, k.filters, k.memory, k.units, k.rank

	if len(state) > 0 {
		copy(state, state[1:])
	}

	for b := range k.batches {
		x := in[b*nIn : (b+1)*nIn]
		for f := range nFilter {
			w := wf[f*nIn : (f+1)*nIn]
			var dot float32
			for c, v := range x {
				// The conversion keeps Go from fusing into an FMA.
				dot += float32(w[c] * v)
			}
			state[(b*nFilter+f)*nMemory+nMemory-1] = dot
		}
	}

	for b := range k.batches {
		st := state[b*nMemory*nFilter : (b+1)*nMemory*nFilter]
		for f := range nFilter {
			w, s := wt[f*nMemory:(f+1)*nMemory], st[f*nMemory:(f+1)*nMemory]
			var sum float32
			for j, v := range s {
				sum += float32(w[j] * v)
			}
			scratch[b*nFilter+f] = sum
		}
	}

	for b := range k.batches {
		o := out[b*nUnit : (b+1)*nUnit]
		for u := range o {
			var acc float32
			if bias != nil {
				acc = bias[u]
			}
			for _, v := range scratch[b*nFilter+u*rank : b*nFilter+(u+1)*rank] {
				acc += v
			}
			o[u] = svdfActivation(k.activation, acc)
		}
	}
}

// svdfActivation is TFLM's ActivationValFloat, with std::max and std::min
// mirrored exactly.
func svdfActivation(act tflite.ActivationFunctionType, a float32) float32 {
	switch act {
	case tflite.ActivationFunctionTypeRELU:
		if 0 < a {
			return a
		}
		return 0
	case tflite.ActivationFunctionTypeRELU_N1_TO_1:
		if 1 < a {
			a = 1
		}
		if -1 < a {
			return a
		}
		return -1
	case tflite.ActivationFunctionTypeRELU6:
		if 6 < a {
			a = 6
		}
		if 0 < a {
			return a
		}
		return 0
	case tflite.ActivationFunctionTypeTANH:
		return tanhTransform(a)
	case tflite.ActivationFunctionTypeSIGN_BIT:
		if math.Signbit(float64(a)) {
			return 1
		}
		return 0
	}
	return a
}
