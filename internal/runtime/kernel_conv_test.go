package runtime_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
	"github.com/edged/edged/internal/testenv"
)

// convCase describes one CONV_2D or DEPTHWISE_CONV_2D model with random
// contents; convCase.build makes it and an independent oracle of its output.
type convCase struct {
	name      string
	depthwise bool
	typ       runtime.DType // input and output type
	in        []int         // NHWC
	filter    []int         // OHWI, or [1, H, W, C*M] for depthwise
	stride    [2]int        // height, width; zero means 1
	dilation  [2]int        // height, width; zero means 1
	padding   tflite.Padding
	act       tflite.ActivationFunctionType
	noBias    bool // two inputs
	omitBias  bool // bias slot present but -1
	perTensor bool // one filter scale (uint8 always)
	bias32    bool // int16 activations with an int32 bias
	seed      int64
}

func (c convCase) strides() (sh, sw, dh, dw int) {
	sh, sw, dh, dw = c.stride[0], c.stride[1], c.dilation[0], c.dilation[1]
	if sh == 0 {
		sh = 1
	}
	if sw == 0 {
		sw = 1
	}
	if dh == 0 {
		dh = 1
	}
	if dw == 0 {
		dw = 1
	}
	return
}

// convOutSize is TensorFlow's windowed output size and the padding before
// the first element, from the definitions of SAME and VALID.
func convOutSize(p tflite.Padding, in, filter, stride, dilation int) (out, before int) {
	eff := (filter-1)*dilation + 1
	if p == tflite.PaddingVALID {
		return (in-eff)/stride + 1, 0
	}
	out = (in + stride - 1) / stride
	total := max((out-1)*stride+eff-in, 0)
	return out, total / 2
}

// convExpect is what the oracle says about one output element: the ideal
// (real-valued, before rounding) quantized result, or the float result.
type convExpect struct {
	shape []int
	ideal []float64 // quantized: real output in output steps plus zero point; float: the value
	lo    float64   // activation clamp, in output steps (quantized) or real units (float)
	hi    float64
	tol   []float64 // float: allowed absolute error per element
}

type convBuilt struct {
	model *builder.Model
	input []byte
	want  convExpect
}

func dtypeRange(t runtime.DType) (lo, hi int64) {
	switch t {
	case runtime.Int8:
		return math.MinInt8, math.MaxInt8
	case runtime.Uint8:
		return 0, math.MaxUint8
	case runtime.Int16:
		return math.MinInt16, math.MaxInt16
	}
	return 0, 0
}

// encodeInts writes integer values as tensor bytes of type t.
func encodeInts(t runtime.DType, v []int64) []byte {
	out := make([]byte, len(v)*t.Size())
	for i, x := range v {
		switch t {
		case runtime.Int8, runtime.Uint8:
			out[i] = byte(x)
		case runtime.Int16:
			binary.LittleEndian.PutUint16(out[2*i:], uint16(x))
		case runtime.Int32:
			binary.LittleEndian.PutUint32(out[4*i:], uint32(x))
		case runtime.Int64:
			binary.LittleEndian.PutUint64(out[8*i:], uint64(x))
		}
	}
	return out
}

// decodeValues reads tensor bytes of type t as float64 values.
func decodeValues(t runtime.DType, b []byte) []float64 {
	n := len(b) / t.Size()
	out := make([]float64, n)
	for i := range out {
		switch t {
		case runtime.Int8:
			out[i] = float64(int8(b[i]))
		case runtime.Uint8:
			out[i] = float64(b[i])
		case runtime.Int16:
			out[i] = float64(int16(binary.LittleEndian.Uint16(b[2*i:])))
		case runtime.Float32:
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		}
	}
	return out
}

// activationSteps is the fused activation's clamp in output steps, derived
// from its definition: the real bounds quantized, within the type's range.
func activationSteps(act tflite.ActivationFunctionType, t runtime.DType, scale float64, zp int64) (lo, hi float64) {
	tlo, thi := dtypeRange(t)
	lo, hi = float64(tlo), float64(thi)
	q := func(r float64) float64 { return float64(zp) + math.Round(r/scale) }
	switch act {
	case tflite.ActivationFunctionTypeRELU:
		lo = math.Max(lo, q(0))
	case tflite.ActivationFunctionTypeRELU6:
		lo, hi = math.Max(lo, q(0)), math.Min(hi, q(6))
	case tflite.ActivationFunctionTypeRELU_N1_TO_1:
		lo, hi = math.Max(lo, q(-1)), math.Min(hi, q(1))
	}
	return lo, hi
}

func activationReal(act tflite.ActivationFunctionType) (lo, hi float64) {
	switch act {
	case tflite.ActivationFunctionTypeRELU:
		return 0, math.Inf(1)
	case tflite.ActivationFunctionTypeRELU6:
		return 0, 6
	case tflite.ActivationFunctionTypeRELU_N1_TO_1:
		return -1, 1
	}
	return math.Inf(-1), math.Inf(1)
}

func tensorType(t runtime.DType) tflite.TensorType { return tflite.TensorType(t) }

// build makes the model, a random input and the oracle's expectation.
func (c convCase) build() convBuilt {
	rng := rand.New(rand.NewSource(c.seed + 1))
	sh, sw, dh, dw := c.strides()
	batches, inH, inW, inD := c.in[0], c.in[1], c.in[2], c.in[3]
	fH, fW := c.filter[1], c.filter[2]
	var outD, fD int
	if c.depthwise {
		outD, fD = c.filter[3], 1
	} else {
		outD, fD = c.filter[0], c.filter[3]
	}
	outH, padH := convOutSize(c.padding, inH, fH, sh, dh)
	outW, padW := convOutSize(c.padding, inW, fW, sw, dw)
	outShape := []int{batches, outH, outW, outD}
	quant := c.typ != runtime.Float32

	nIn := batches * inH * inW * inD
	nW := 1
	for _, d := range c.filter {
		nW *= d
	}
	// Logical values: quantized integers (stored), or floats.
	inQ := make([]int64, nIn)
	wQ := make([]int64, nW)
	inF := make([]float64, nIn)
	wF := make([]float64, nW)
	biasQ := make([]int64, outD)
	biasF := make([]float64, outD)
	var inZP, wZP, outZP int64
	inScale := 0.05
	wScales := make([]float64, outD)
	lo, hi := dtypeRange(c.typ)
	switch c.typ {
	case runtime.Int8:
		inZP, outZP = int64(rng.Intn(41)-20), int64(rng.Intn(21)-10)
	case runtime.Uint8:
		inZP, wZP, outZP = int64(100+rng.Intn(51)), int64(100+rng.Intn(51)), int64(100+rng.Intn(51))
	case runtime.Int16:
		lo, hi = -3000, 3000 // keeps 32-bit accumulation (bias32) from wrapping
	}
	for i := range inQ {
		inQ[i] = lo + rng.Int63n(hi-lo+1)
		inF[i] = float64(float32(rng.Float64()*4 - 2))
	}
	for i := range wQ {
		if c.typ == runtime.Uint8 {
			wQ[i] = rng.Int63n(256)
		} else {
			wQ[i] = int64(rng.Intn(255) - 127)
		}
		wF[i] = float64(float32(rng.Float64()*2 - 1))
	}
	perTensor := c.perTensor || c.typ == runtime.Uint8
	for i := range wScales {
		wScales[i] = 0.002 + 0.02*rng.Float64()
		if perTensor {
			wScales[i] = wScales[0]
		}
		// Round scales to float32, as the model stores them.
		wScales[i] = float64(float32(wScales[i]))
	}
	for i := range biasQ {
		biasQ[i] = int64(rng.Intn(20001) - 10000)
		biasF[i] = float64(float32(rng.Float64()*2 - 1))
	}
	hasBias := !c.noBias && !c.omitBias

	// The oracle: each output as a sum over the filter taps that fall inside
	// the input, in exact integer (float64-exact) or float64 arithmetic.
	nOut := batches * outH * outW * outD
	acc := make([]float64, nOut)
	sumAbs := make([]float64, nOut)
	groupSize := outD
	if !c.depthwise {
		groupSize = outD / (inD / fD)
	}
	for b := range batches {
		for oy := range outH {
			for ox := range outW {
				for oc := range outD {
					o := ((b*outH+oy)*outW+ox)*outD + oc
					var s, sa float64
					for fy := range fH {
						for fx := range fW {
							y := oy*sh - padH + fy*dh
							x := ox*sw - padW + fx*dw
							if y < 0 || y >= inH || x < 0 || x >= inW {
								continue
							}
							for i := range fD {
								var ic, wi int
								if c.depthwise {
									ic = oc / (outD / inD)
									wi = (fy*fW+fx)*outD + oc
								} else {
									ic = (oc/groupSize)*fD + i
									wi = ((oc*fH+fy)*fW+fx)*fD + i
								}
								ii := ((b*inH+y)*inW+x)*inD + ic
								var p float64
								if quant {
									p = float64(inQ[ii]-inZP) * float64(wQ[wi]-wZP)
								} else {
									p = inF[ii] * wF[wi]
								}
								s += p
								sa += math.Abs(p)
							}
						}
					}
					if hasBias {
						if quant {
							s += float64(biasQ[oc])
						} else {
							s += biasF[oc]
							sa += math.Abs(biasF[oc])
						}
					}
					acc[o], sumAbs[o] = s, sa
				}
			}
		}
	}

	want := convExpect{shape: outShape, ideal: make([]float64, nOut)}
	var outScale float64
	if quant {
		var maxReal float64
		for o, a := range acc {
			maxReal = math.Max(maxReal, math.Abs(a*inScale*wScales[o%outD]))
		}
		steps := 100.0
		if c.typ == runtime.Int16 {
			// int16 requantization reduces the multiplier to 15 bits
			// (relative error up to 2^-15); at a thousand steps that is
			// rarely visible after rounding.
			steps = 1000
		}
		if maxReal == 0 {
			maxReal = inScale * 0.01 * steps
		}
		outScale = float64(float32(maxReal / steps))
		for o, a := range acc {
			m := float64(float32(inScale)) * wScales[o%outD] / outScale
			want.ideal[o] = a*m + float64(outZP)
		}
		want.lo, want.hi = activationSteps(c.act, c.typ, outScale, outZP)
	} else {
		want.tol = make([]float64, nOut)
		for o, a := range acc {
			want.ideal[o] = a
			want.tol[o] = 1e-5 * (1 + sumAbs[o])
		}
		want.lo, want.hi = activationReal(c.act)
	}

	// The model.
	m := &builder.Model{}
	tt := tensorType(c.typ)
	inT := builder.Tensor{Name: "input", Type: tt, Shape: c.in}
	wT := builder.Tensor{Name: "filter", Type: tt, Shape: c.filter}
	outT := builder.Tensor{Name: "output", Type: tt, Shape: outShape}
	var biasT builder.Tensor
	if quant {
		wT.Type = tflite.TensorTypeINT8
		if c.typ == runtime.Uint8 {
			wT.Type = tflite.TensorTypeUINT8
		}
		inT.Scale, inT.ZeroPoint = []float32{float32(inScale)}, []int64{inZP}
		outT.Scale, outT.ZeroPoint = []float32{float32(outScale)}, []int64{outZP}
		nScales := outD
		if perTensor {
			nScales = 1
		}
		for i := range nScales {
			wT.Scale = append(wT.Scale, float32(wScales[i]))
			wT.ZeroPoint = append(wT.ZeroPoint, wZP)
			biasT.Scale = append(biasT.Scale, float32(inScale)*float32(wScales[i]))
			biasT.ZeroPoint = append(biasT.ZeroPoint, 0)
		}
		if c.depthwise {
			wT.QuantizedDimension = 3
		}
		wT.Data = encodeInts(runtime.DType(wT.Type), wQ)
		biasType := runtime.Int32
		if c.typ == runtime.Int16 && !c.bias32 {
			biasType = runtime.Int64
		}
		biasT.Type = tensorType(biasType)
		biasT.Data = encodeInts(biasType, biasQ)
	} else {
		w32 := make([]float32, nW)
		for i, v := range wF {
			w32[i] = float32(v)
		}
		wT.Data = builder.Float32Data(w32)
		b32 := make([]float32, outD)
		for i, v := range biasF {
			b32[i] = float32(v)
		}
		biasT.Type, biasT.Data = tflite.TensorTypeFLOAT32, builder.Float32Data(b32)
	}
	biasT.Name, biasT.Shape = "bias", []int{outD}

	in := m.AddTensor(inT)
	w := m.AddTensor(wT)
	inputs := []int{in, w}
	if hasBias {
		inputs = append(inputs, m.AddTensor(biasT))
	} else if c.omitBias {
		inputs = append(inputs, -1)
	}
	out := m.AddTensor(outT)
	op := builder.Op{Inputs: inputs, Outputs: []int{out}}
	if c.depthwise {
		op.Builtin = tflite.BuiltinOperatorDEPTHWISE_CONV_2D
		op.Options = &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsDepthwiseConv2DOptions, Value: &tflite.DepthwiseConv2DOptionsT{
			Padding: c.padding, StrideH: int32(sh), StrideW: int32(sw), DilationHFactor: int32(dh), DilationWFactor: int32(dw),
			DepthMultiplier: int32(outD / inD), FusedActivationFunction: c.act,
		}}
	} else {
		op.Builtin = tflite.BuiltinOperatorCONV_2D
		opts := &tflite.Conv2DOptionsT{
			Padding: c.padding, StrideH: int32(sh), StrideW: int32(sw), DilationHFactor: int32(dh), DilationWFactor: int32(dw),
			FusedActivationFunction: c.act,
		}
		if c.typ == runtime.Int16 && c.bias32 {
			opts.QuantizedBiasType = tflite.TensorTypeINT32
		}
		op.Options = &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsConv2DOptions, Value: opts}
	}
	m.AddOp(op)
	m.Inputs, m.Outputs = []int{in}, []int{out}

	var input []byte
	if quant {
		input = encodeInts(c.typ, inQ)
	} else {
		f32 := make([]float32, nIn)
		for i, v := range inF {
			f32[i] = float32(v)
		}
		input = builder.Float32Data(f32)
	}
	return convBuilt{model: m, input: input, want: want}
}

// want is the expected value of element i and its tolerance: quantized
// results within one step of the ideal value rounded, float results within
// a small relative error.
func (e convExpect) want(typ runtime.DType, i int) (want, tol float64) {
	if typ == runtime.Float32 {
		return math.Min(math.Max(e.ideal[i], e.lo), e.hi), e.tol[i]
	}
	return math.Min(math.Max(math.Round(e.ideal[i]), e.lo), e.hi), 1
}

// checkTolerance compares a kernel's output with the oracle.
func (e convExpect) checkTolerance(t *testing.T, typ runtime.DType, out []byte) []float64 {
	t.Helper()
	got := decodeValues(typ, out)
	if len(got) != len(e.ideal) {
		t.Fatalf("%d output elements, want %d", len(got), len(e.ideal))
	}
	bad := 0
	for i, g := range got {
		want, tol := e.want(typ, i)
		if math.Abs(g-want) > tol {
			if bad < 5 {
				t.Errorf("element %d: got %v, want %v (ideal %v, tolerance %v)", i, g, want, e.ideal[i], tol)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d elements outside tolerance", bad, len(got))
	}
	return got
}

// check is checkTolerance, plus: quantized results almost all exactly
// equal to the rounded ideal value (one-step differences only where the
// fixed-point rounding lands on the other side of a half), and an output
// that is not all clamped, so the case exercises the arithmetic.
func (e convExpect) check(t *testing.T, typ runtime.DType, out []byte) {
	t.Helper()
	got := e.checkTolerance(t, typ, out)
	if typ != runtime.Float32 {
		inexact := 0
		for i, g := range got {
			if want, _ := e.want(typ, i); g != want {
				inexact++
			}
		}
		if len(got) >= 20 && inexact*20 > len(got) {
			t.Fatalf("%d of %d elements differ by one step from the rounded ideal value; expected only rare rounding differences", inexact, len(got))
		}
	}
	distinct := map[float64]bool{}
	for _, g := range got {
		distinct[g] = true
	}
	if len(got) >= 8 && len(distinct) < 3 {
		t.Fatalf("output has only %d distinct values: the case does not exercise the kernel", len(distinct))
	}
}

func runConvCase(t *testing.T, c convCase) {
	t.Helper()
	b := c.build()
	out := runModel(t, b.model, b.input)
	b.want.check(t, c.typ, out[0])
}

func TestConv2D(t *testing.T) {
	same, valid := tflite.PaddingSAME, tflite.PaddingVALID
	relu, relu6, n1 := tflite.ActivationFunctionTypeRELU, tflite.ActivationFunctionTypeRELU6, tflite.ActivationFunctionTypeRELU_N1_TO_1
	var cases []convCase
	for _, typ := range []runtime.DType{runtime.Int8, runtime.Uint8, runtime.Int16, runtime.Float32} {
		base := []convCase{
			{name: "1x1", in: []int{1, 4, 5, 8}, filter: []int{6, 1, 1, 8}, padding: valid},
			{name: "3x3_same", in: []int{1, 7, 6, 3}, filter: []int{5, 3, 3, 3}, padding: same},
			{name: "3x3_valid", in: []int{2, 7, 6, 3}, filter: []int{5, 3, 3, 3}, padding: valid},
			{name: "stride2_same_odd_padding", in: []int{1, 8, 9, 4}, filter: []int{4, 3, 2, 4}, stride: [2]int{2, 3}, padding: same},
			{name: "stride2_valid", in: []int{1, 9, 9, 2}, filter: []int{3, 3, 3, 2}, stride: [2]int{2, 2}, padding: valid},
			{name: "dilation_same", in: []int{1, 9, 8, 3}, filter: []int{4, 3, 3, 3}, dilation: [2]int{2, 3}, padding: same},
			{name: "dilation_valid_stride", in: []int{1, 11, 10, 2}, filter: []int{3, 2, 3, 2}, dilation: [2]int{3, 2}, stride: [2]int{2, 1}, padding: valid},
			{name: "filter_larger_than_input_same", in: []int{1, 2, 3, 2}, filter: []int{3, 5, 5, 2}, padding: same},
			{name: "grouped", in: []int{1, 5, 5, 6}, filter: []int{4, 3, 3, 3}, padding: same},
			{name: "grouped_4", in: []int{1, 4, 4, 8}, filter: []int{8, 2, 2, 2}, stride: [2]int{2, 2}, padding: valid},
			{name: "relu", in: []int{1, 5, 5, 4}, filter: []int{6, 3, 3, 4}, padding: same, act: relu},
			{name: "relu6", in: []int{1, 5, 5, 4}, filter: []int{6, 3, 3, 4}, padding: same, act: relu6},
			{name: "relu_n1_to_1", in: []int{1, 5, 5, 4}, filter: []int{6, 3, 3, 4}, padding: same, act: n1},
			{name: "no_bias", in: []int{1, 5, 4, 3}, filter: []int{4, 3, 3, 3}, padding: same, noBias: true},
			{name: "omitted_bias", in: []int{1, 5, 4, 3}, filter: []int{4, 3, 3, 3}, padding: same, omitBias: true},
			{name: "per_tensor", in: []int{1, 5, 4, 3}, filter: []int{4, 3, 3, 3}, padding: same, perTensor: true},
		}
		for i, c := range base {
			c.typ, c.seed = typ, int64(i)
			c.name = typ.String() + "/" + c.name
			if typ == runtime.Uint8 && c.perTensor {
				continue // uint8 is always per tensor
			}
			if typ == runtime.Int16 && c.act == n1 {
				c.act = relu6 // RELU_N1_TO_1 at int16 scale saturates everything
			}
			cases = append(cases, c)
		}
	}
	cases = append(cases,
		convCase{name: "int16/int32_bias", typ: runtime.Int16, in: []int{1, 5, 5, 4}, filter: []int{3, 3, 3, 4}, padding: same, bias32: true, seed: 40},
		convCase{name: "int16/no_bias_int32_accumulator", typ: runtime.Int16, in: []int{1, 5, 5, 4}, filter: []int{3, 3, 3, 4}, padding: same, bias32: true, noBias: true, seed: 41},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runConvCase(t, c) })
	}
}

// TestConv2DProperty runs random shapes, strides, dilations and paddings
// of every type against the oracle.
func TestConv2DProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	types := []runtime.DType{runtime.Int8, runtime.Uint8, runtime.Int16, runtime.Float32}
	acts := []tflite.ActivationFunctionType{tflite.ActivationFunctionTypeNONE, tflite.ActivationFunctionTypeRELU, tflite.ActivationFunctionTypeRELU6}
	for i := range 60 {
		typ := types[i%len(types)]
		groups := 1
		if rng.Intn(3) == 0 {
			groups = 1 + rng.Intn(3)
		}
		fd := 1 + rng.Intn(4)
		c := convCase{
			typ:      typ,
			in:       []int{1 + rng.Intn(2), 1 + rng.Intn(9), 1 + rng.Intn(9), fd * groups},
			filter:   []int{groups * (1 + rng.Intn(4)), 1 + rng.Intn(4), 1 + rng.Intn(4), fd},
			stride:   [2]int{1 + rng.Intn(3), 1 + rng.Intn(3)},
			dilation: [2]int{1 + rng.Intn(2), 1 + rng.Intn(2)},
			padding:  tflite.Padding(rng.Intn(2)),
			act:      acts[rng.Intn(len(acts))],
			noBias:   rng.Intn(4) == 0,
			seed:     int64(100 + i),
		}
		if typ == runtime.Int16 && c.act != tflite.ActivationFunctionTypeNONE {
			c.act = tflite.ActivationFunctionTypeRELU
		}
		if c.padding == tflite.PaddingVALID {
			// Keep the dilated filter inside the input.
			for d := 1; d <= 2; d++ {
				eff := (c.filter[d]-1)*c.dilation[d-1] + 1
				if eff > c.in[d] {
					c.in[d] = eff + rng.Intn(3)
				}
			}
		}
		c.name = fmt.Sprintf("%d_%s_in%v_f%v_s%v_d%v_%s", i, typ, c.in, c.filter, c.stride, c.dilation, c.padding)
		t.Run(c.name, func(t *testing.T) {
			b := c.build()
			out := runModel(t, b.model, b.input)
			// Small outputs may all clamp; check the tolerance only.
			b.want.checkTolerance(t, c.typ, out[0])
		})
	}
}

// convExactModel is a one-op model with unit scales, so the expected
// outputs follow from integer arithmetic done by hand.
func convExactModel(typ tflite.TensorType, op tflite.BuiltinOperator, in, filter []int, wData []byte, wScale float32, inZP, wZP, outZP int64, act tflite.ActivationFunctionType, outShape []int) *builder.Model {
	m := &builder.Model{}
	i := m.AddTensor(builder.Tensor{Name: "input", Type: typ, Shape: in, Scale: []float32{1}, ZeroPoint: []int64{inZP}})
	wt := tflite.TensorTypeINT8
	if typ == tflite.TensorTypeUINT8 {
		wt = tflite.TensorTypeUINT8
	}
	w := m.AddTensor(builder.Tensor{Name: "filter", Type: wt, Shape: filter, Data: wData, Scale: []float32{wScale}, ZeroPoint: []int64{wZP}})
	o := m.AddTensor(builder.Tensor{Name: "output", Type: typ, Shape: outShape, Scale: []float32{1}, ZeroPoint: []int64{outZP}})
	bop := builder.Op{Builtin: op, Inputs: []int{i, w}, Outputs: []int{o}}
	if op == tflite.BuiltinOperatorCONV_2D {
		bop.Options = &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsConv2DOptions, Value: &tflite.Conv2DOptionsT{
			Padding: tflite.PaddingVALID, StrideH: 1, StrideW: 1, DilationHFactor: 1, DilationWFactor: 1, FusedActivationFunction: act}}
	} else {
		bop.Options = &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsDepthwiseConv2DOptions, Value: &tflite.DepthwiseConv2DOptionsT{
			Padding: tflite.PaddingVALID, StrideH: 1, StrideW: 1, DilationHFactor: 1, DilationWFactor: 1, DepthMultiplier: int32(filter[3] / in[3]), FusedActivationFunction: act}}
	}
	m.AddOp(bop)
	m.Inputs, m.Outputs = []int{i}, []int{o}
	return m
}

// TestConv2DExact checks hand-derived results: a 1×1 convolution whose
// requantization factor is exactly 1/4 (input and output scale 1, filter
// scale 0.25), so out = round_half_away(acc / 4) + zp, clamped.
func TestConv2DExact(t *testing.T) {
	// acc = x*w: x in {2, -2, 6, -6, 10, -10, 100, -100}, w in {1, 20}.
	// w=1:  0.5→1, -0.5→-1, 1.5→2, -1.5→-2, 2.5→3, -2.5→-3, 25, -25.
	// w=20: 10, -10, 30, -30, 50, -50, 500→127, -500→-128.
	x := []int8{2, -2, 6, -6, 10, -10, 100, -100}
	t.Run("int8_ties_and_saturation", func(t *testing.T) {
		m := convExactModel(tflite.TensorTypeINT8, tflite.BuiltinOperatorCONV_2D, []int{1, 2, 4, 1}, []int{2, 1, 1, 1},
			builder.Int8Data([]int8{1, 20}), 0.25, 0, 0, 0, tflite.ActivationFunctionTypeNONE, []int{1, 2, 4, 2})
		got := int8s(runModel(t, m, builder.Int8Data(x))[0])
		want := []int8{1, 10, -1, -10, 2, 30, -2, -30, 3, 50, -3, -50, 25, 127, -25, -128}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
	t.Run("int8_offsets_relu6", func(t *testing.T) {
		// Input zero point -2: x - zp = x + 2. Output zero point 3; RELU6
		// clamps to [3, 9]. w = 1: (x+2)/4 + 3.
		// x+2 = 4, 0, 8, -4, 12, -8, 102, -98 → 1, 0, 2, -1, 3, -2, 25.5→26, -24.5→-25; +3 → clamp [3,9].
		m := convExactModel(tflite.TensorTypeINT8, tflite.BuiltinOperatorCONV_2D, []int{1, 2, 4, 1}, []int{1, 1, 1, 1},
			builder.Int8Data([]int8{1}), 0.25, -2, 0, 3, tflite.ActivationFunctionTypeRELU6, []int{1, 2, 4, 1})
		got := int8s(runModel(t, m, builder.Int8Data(x))[0])
		want := []int8{4, 3, 5, 3, 6, 3, 9, 3}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
	t.Run("uint8_offsets", func(t *testing.T) {
		// uint8: input zp 128, filter zp 100, output zp 128.
		// x-128 = {2,-2,6,-6,10,-10,100,-100}; filter 101 (w-zp = 1) and 80 (-20).
		// w'=1: 1,-1,2,-2,3,-3,25,-25; w'=-20: -10,10,-30,30,-50,50,-500,500; +128, clamp [0,255].
		xs := make([]byte, len(x))
		for i, v := range x {
			xs[i] = byte(int(v) + 128)
		}
		m := convExactModel(tflite.TensorTypeUINT8, tflite.BuiltinOperatorCONV_2D, []int{1, 2, 4, 1}, []int{2, 1, 1, 1},
			[]byte{101, 80}, 0.25, 128, 100, 128, tflite.ActivationFunctionTypeNONE, []int{1, 2, 4, 2})
		got := runModel(t, m, xs)[0]
		want := []byte{129, 118, 127, 138, 130, 98, 126, 158, 131, 78, 125, 178, 153, 0, 103, 255}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
}

// convBaseModel is a valid int8 convolution for the error cases to break.
func convBaseModel() *builder.Model {
	c := convCase{typ: runtime.Int8, in: []int{1, 5, 5, 4}, filter: []int{3, 3, 3, 4}, padding: tflite.PaddingSAME}
	return c.build().model
}

func depthwiseBaseModel() *builder.Model {
	c := convCase{depthwise: true, typ: runtime.Int8, in: []int{1, 5, 5, 4}, filter: []int{1, 3, 3, 8}, padding: tflite.PaddingSAME}
	return c.build().model
}

type modelMutation struct {
	name   string
	mutate func(m *builder.Model)
	want   string // substring of the error
}

func runPrepareErrors(t *testing.T, base func() *builder.Model, cases []modelMutation) {
	t.Helper()
	if err := prepareError(t, base()); err != nil {
		t.Fatalf("base model does not prepare: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := base()
			c.mutate(m)
			err := prepareError(t, m)
			if err == nil {
				t.Fatalf("prepared without error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

func conv2DOpts(m *builder.Model) *tflite.Conv2DOptionsT {
	return m.Ops[0].Options.Value.(*tflite.Conv2DOptionsT)
}

// convCommonErrors are the malformed models both convolutions reject.
func convCommonErrors() []modelMutation {
	return []modelMutation{
		{"input_rank_3", func(m *builder.Model) { m.Tensors[0].Shape = []int{5, 5, 4} }, "rank 4"},
		{"float_filter", func(m *builder.Model) {
			f := &m.Tensors[1]
			f.Type, f.Data = tflite.TensorTypeFLOAT32, make([]byte, 4*len(f.Data))
		}, "unsupported tensor type"},
		{"output_type", func(m *builder.Model) { m.Tensors[3].Type = tflite.TensorTypeINT16 }, "unsupported tensor type"},
		{"int16_bias_for_int8", func(m *builder.Model) {
			b := &m.Tensors[2]
			b.Type, b.Data = tflite.TensorTypeINT16, b.Data[:len(b.Data)/2]
		}, "unsupported tensor type"},
		{"input_not_quantized", func(m *builder.Model) { m.Tensors[0].Scale, m.Tensors[0].ZeroPoint = nil, nil }, "no quantization"},
		{"filter_not_quantized", func(m *builder.Model) { m.Tensors[1].Scale, m.Tensors[1].ZeroPoint = nil, nil }, "no quantization"},
		{"output_not_quantized", func(m *builder.Model) { m.Tensors[3].Scale, m.Tensors[3].ZeroPoint = nil, nil }, "no quantization"},
		{"bias_size", func(m *builder.Model) {
			b := &m.Tensors[2]
			b.Shape, b.Data, b.Scale, b.ZeroPoint = []int{2}, b.Data[:8], b.Scale[:2], b.ZeroPoint[:2]
		}, "bias"},
		{"filter_zero_point", func(m *builder.Model) { m.Tensors[1].ZeroPoint[1] = 3 }, "zero point"},
		{"output_zero_point_range", func(m *builder.Model) { m.Tensors[3].ZeroPoint[0] = 200 }, "zero point"},
		{"declared_output_shape", func(m *builder.Model) { m.Tensors[3].Shape = []int{1, 4, 5, m.Tensors[3].Shape[3]} }, "computed output shape"},
		{"one_input", func(m *builder.Model) { m.Ops[0].Inputs = m.Ops[0].Inputs[:1] }, "inputs"},
		{"wrong_options", func(m *builder.Model) {
			m.Ops[0].Options = &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsPool2DOptions, Value: &tflite.Pool2DOptionsT{}}
		}, "options"},
	}
}

func TestConv2DErrors(t *testing.T) {
	cases := append(convCommonErrors(),
		modelMutation{"stride_zero", func(m *builder.Model) { conv2DOpts(m).StrideW = 0 }, "stride"},
		modelMutation{"dilation_zero", func(m *builder.Model) { conv2DOpts(m).DilationHFactor = 0 }, "dilation"},
		modelMutation{"unknown_padding", func(m *builder.Model) { conv2DOpts(m).Padding = 5 }, "padding"},
		modelMutation{"valid_filter_too_large", func(m *builder.Model) {
			conv2DOpts(m).Padding = tflite.PaddingVALID
			conv2DOpts(m).DilationHFactor = 3
		}, "does not fit"},
		modelMutation{"bad_activation", func(m *builder.Model) { conv2DOpts(m).FusedActivationFunction = tflite.ActivationFunctionTypeTANH }, "activation"},
		modelMutation{"filter_rank_3", func(m *builder.Model) { m.Tensors[1].Shape = []int{3, 3, 12} }, "rank 4"},
		modelMutation{"input_depth_not_multiple", func(m *builder.Model) { m.Tensors[0].Shape = []int{1, 5, 5, 5} }, "multiple"},
		modelMutation{"groups_do_not_divide_outputs", func(m *builder.Model) {
			// Filter depth 2 → 2 groups, 3 output channels.
			f := &m.Tensors[1]
			f.Shape, f.Data = []int{3, 3, 3, 2}, f.Data[:3*18]
		}, "groups"},
		modelMutation{"per_channel_uint8", func(m *builder.Model) {
			for _, i := range []int{0, 3} {
				m.Tensors[i].Type = tflite.TensorTypeUINT8
				m.Tensors[i].ZeroPoint[0] = 128
			}
			m.Tensors[1].Type = tflite.TensorTypeUINT8
		}, "per-channel"},
		modelMutation{"per_channel_wrong_dimension", func(m *builder.Model) {
			f := &m.Tensors[1]
			f.Scale, f.ZeroPoint, f.QuantizedDimension = []float32{0.01, 0.02, 0.03, 0.04}, []int64{0, 0, 0, 0}, 3
		}, "dimension 3"},
		modelMutation{"int16_input_zero_point", func(m *builder.Model) {
			for _, i := range []int{0, 3} {
				m.Tensors[i].Type = tflite.TensorTypeINT16
			}
			m.Tensors[0].ZeroPoint[0] = 5
			b := &m.Tensors[2]
			b.Type, b.Data = tflite.TensorTypeINT64, make([]byte, 2*len(b.Data))
		}, "zero point 0"},
	)
	runPrepareErrors(t, convBaseModel, cases)
}

func TestConv2DUint8BiasScale(t *testing.T) {
	// GetQuantizedConvolutionMultipler rejects a bias scale far from
	// input scale × filter scale.
	c := convCase{typ: runtime.Uint8, in: []int{1, 3, 3, 2}, filter: []int{2, 1, 1, 2}, padding: tflite.PaddingVALID}
	m := c.build().model
	if err := prepareError(t, m); err != nil {
		t.Fatal(err)
	}
	m.Tensors[2].Scale[0] *= 10
	if err := prepareError(t, m); err == nil || !strings.Contains(err.Error(), "bias scale") {
		t.Fatalf("got %v, want a bias scale error", err)
	}
}

// goldenTensor is one entry of a golden case's tensors.json.
type goldenTensor struct {
	Index    int    `json:"index"`
	Name     string `json:"name"`
	DType    string `json:"dtype"`
	File     string `json:"file"`
	Constant bool   `json:"constant"`
}

// TestConvGoldenTensorDumps compares every intermediate tensor of the two
// golden cases that carry TFLM's per-tensor dumps, layer by layer.
func TestConvGoldenTensorDumps(t *testing.T) {
	for _, name := range []string{"person_detect_person", "micro_speech_yes"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(testenv.SharedDir(t), "golden", name)
			var gc testenv.GoldenCase
			readJSON(t, filepath.Join(dir, "case.json"), &gc)
			var dumps []goldenTensor
			readJSON(t, filepath.Join(dir, "tensors.json"), &dumps)
			model := loadSharedModel(t, filepath.Join("models", gc.Model))
			it, err := runtime.NewInterpreter(model, &runtime.Options{PreserveAllTensors: true})
			if err != nil {
				t.Fatal(err)
			}
			in, err := os.ReadFile(filepath.Join(dir, "input_0.bin"))
			if err != nil {
				t.Fatal(err)
			}
			invoke(t, it, in)
			checked := 0
			for _, d := range dumps {
				if d.Constant {
					continue
				}
				want, err := os.ReadFile(filepath.Join(dir, d.File))
				if err != nil {
					t.Fatal(err)
				}
				tt := it.Tensor(d.Index)
				if tt.Type.String() != d.DType {
					t.Fatalf("tensor %d %q: %s, dump says %s", d.Index, d.Name, tt.Type, d.DType)
				}
				if err := compareDump(tt.Type, tt.Bytes(), want); err != nil {
					t.Errorf("tensor %d %q: %v", d.Index, d.Name, err)
				}
				checked++
			}
			if checked == 0 {
				t.Fatal("no activation tensors in the dump")
			}
		})
	}
}

// loadSharedModel loads a model of the shared test data. TFLM's
// person_detect.tflite gives its per-channel biases the filter's
// quantized_dimension (3, on a rank-1 tensor); TFLM ignores it, edged's model
// reader still rejects it. Until the reader accepts such biases the tests
// that need the model skip, naming the reason (and fail under CI).
func loadSharedModel(t testing.TB, rel string) *runtime.Model {
	t.Helper()
	m, err := runtime.LoadModelFile(testenv.SharedFile(t, rel))
	if err != nil {
		if strings.Contains(err.Error(), "out of range for rank 1") && !testenv.InCI() {
			t.Skipf("%v (the model reader must accept a rank-1 per-channel bias whose quantized_dimension is the filter's, as TFLM does)", err)
		}
		t.Fatal(err)
	}
	return m
}

func compareDump(typ runtime.DType, got, want []byte) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d bytes, dump has %d", len(got), len(want))
	}
	g, w := decodeValues(typ, got), decodeValues(typ, want)
	diffs, first := 0, -1
	for i := range g {
		if g[i] != w[i] {
			if first < 0 {
				first = i
			}
			diffs++
		}
	}
	if diffs > 0 {
		return fmt.Errorf("%d of %d elements differ (first at %d: got %v, want %v)", diffs, len(g), first, g[first], w[first])
	}
	return nil
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestConvMACs checks the multiply-accumulate counts against the ones
// MODELS.md lists for the shared models.
func TestConvMACs(t *testing.T) {
	for _, c := range []struct {
		model           string
		conv, depthwise int64
	}{
		{"person_detect.tflite", 6193664, 964224},
		{"mobilenet_v1_0.25_128_quant.tflite", 12151040, 1419264},
		{"micro_speech_quantized.tflite", 0, 320000},
	} {
		t.Run(c.model, func(t *testing.T) {
			it, err := runtime.NewInterpreter(loadSharedModel(t, filepath.Join("models", c.model)), nil)
			if err != nil {
				t.Fatal(err)
			}
			var conv, dw int64
			for _, n := range it.Nodes() {
				switch n.Op.Code.Builtin {
				case tflite.BuiltinOperatorCONV_2D:
					conv += n.MACs
				case tflite.BuiltinOperatorDEPTHWISE_CONV_2D:
					dw += n.MACs
				}
			}
			if conv != c.conv || dw != c.depthwise {
				t.Fatalf("MACs: CONV_2D %d, DEPTHWISE_CONV_2D %d; want %d, %d", conv, dw, c.conv, c.depthwise)
			}
		})
	}
}

// TestPersonDetectZeroAllocs checks that a steady-state invocation of the
// person detection model allocates nothing.
func TestPersonDetectZeroAllocs(t *testing.T) {
	it, err := runtime.NewInterpreter(loadSharedModel(t, "models/person_detect.tflite"), nil)
	if err != nil {
		t.Fatal(err)
	}
	in := it.Inputs()[0].Bytes()
	for i := range in {
		in[i] = byte(i * 7)
	}
	if err := it.Invoke(); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(5, func() {
		if err := it.Invoke(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Invoke allocates %v times per run, want 0", allocs)
	}
}

// benchConv runs one layer repeatedly and reports multiply-accumulates per
// second.
func benchConv(b *testing.B, c convCase) {
	built := c.build()
	it, err := runtime.NewInterpreter(buildModel(b, built.model), nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := it.Inputs()[0].CopyFrom(built.input); err != nil {
		b.Fatal(err)
	}
	macs := it.MACs()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := it.Invoke(); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(macs)*float64(n)/b.Elapsed().Seconds(), "MAC/s")
}

// A MobileNet v1 0.25 layer at 32×32: the pointwise convolution 64 → 128
// channels and the 3×3 depthwise convolution before it.
func BenchmarkConv2DInt8Pointwise(b *testing.B) {
	benchConv(b, convCase{typ: runtime.Int8, in: []int{1, 32, 32, 64}, filter: []int{128, 1, 1, 64}, padding: tflite.PaddingSAME, act: tflite.ActivationFunctionTypeRELU6})
}

func BenchmarkConv2DInt83x3(b *testing.B) {
	benchConv(b, convCase{typ: runtime.Int8, in: []int{1, 32, 32, 32}, filter: []int{64, 3, 3, 32}, padding: tflite.PaddingSAME, act: tflite.ActivationFunctionTypeRELU6})
}

func BenchmarkConv2DUint8Pointwise(b *testing.B) {
	benchConv(b, convCase{typ: runtime.Uint8, in: []int{1, 32, 32, 64}, filter: []int{128, 1, 1, 64}, padding: tflite.PaddingSAME, act: tflite.ActivationFunctionTypeRELU6})
}

func BenchmarkConv2DFloat32Pointwise(b *testing.B) {
	benchConv(b, convCase{typ: runtime.Float32, in: []int{1, 32, 32, 64}, filter: []int{128, 1, 1, 64}, padding: tflite.PaddingSAME, act: tflite.ActivationFunctionTypeRELU6})
}

func BenchmarkDepthwiseInt8(b *testing.B) {
	benchConv(b, convCase{depthwise: true, typ: runtime.Int8, in: []int{1, 32, 32, 64}, filter: []int{1, 3, 3, 64}, padding: tflite.PaddingSAME, act: tflite.ActivationFunctionTypeRELU6})
}

func BenchmarkDepthwiseUint8(b *testing.B) {
	benchConv(b, convCase{depthwise: true, typ: runtime.Uint8, in: []int{1, 32, 32, 64}, filter: []int{1, 3, 3, 64}, padding: tflite.PaddingSAME, act: tflite.ActivationFunctionTypeRELU6})
}

func BenchmarkDepthwiseFloat32(b *testing.B) {
	benchConv(b, convCase{depthwise: true, typ: runtime.Float32, in: []int{1, 32, 32, 64}, filter: []int{1, 3, 3, 64}, padding: tflite.PaddingSAME, act: tflite.ActivationFunctionTypeRELU6})
}

// assertNoAllocs checks that invoking a prepared model allocates nothing
// after a warm-up invocation.
func assertNoAllocs(t *testing.T, m *builder.Model, input []byte) {
	t.Helper()
	it, err := runtime.NewInterpreter(buildModel(t, m), nil)
	if err != nil {
		t.Fatal(err)
	}
	invoke(t, it, input)
	if allocs := testing.AllocsPerRun(5, func() { _ = it.Invoke() }); allocs != 0 {
		t.Fatalf("Invoke allocates %v times per run, want 0", allocs)
	}
}

// TestConvZeroAllocs checks every type path of both convolutions for heap
// allocation during Eval, on models that need no shared test data.
func TestConvZeroAllocs(t *testing.T) {
	for _, typ := range []runtime.DType{runtime.Int8, runtime.Uint8, runtime.Int16, runtime.Float32} {
		for _, c := range []convCase{
			{name: "conv", in: []int{1, 6, 6, 4}, filter: []int{4, 3, 3, 4}, padding: tflite.PaddingSAME},
			{name: "conv_bias32", in: []int{1, 6, 6, 4}, filter: []int{4, 3, 3, 4}, padding: tflite.PaddingSAME, bias32: typ == runtime.Int16},
			{name: "depthwise", depthwise: true, in: []int{1, 6, 6, 4}, filter: []int{1, 3, 3, 8}, padding: tflite.PaddingSAME},
		} {
			c.typ = typ
			t.Run(typ.String()+"/"+c.name, func(t *testing.T) {
				b := c.build()
				assertNoAllocs(t, b.model, b.input)
			})
		}
	}
}
