package runtime_test

import (
	"bytes"
	"fmt"
	"math"
	rand1 "math/rand"
	"math/rand/v2"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

// Property tests of the optimized kernels: on random models of one
// operator — random shapes, strides, paddings, dilations, zero points,
// multipliers, per-channel or per-tensor filters, activations, int8 and
// uint8 — the optimized kernels (SIMD micro-kernels where this CPU has them,
// their pure-Go fallbacks, and both on several threads) must give exactly
// the reference kernels' bytes.

// kernelVariants are the interpreters each random model runs on; the first
// is the reference.
var kernelVariants = []struct {
	name string
	opts *runtime.Options
}{
	{"reference", &runtime.Options{ReferenceKernels: true}},
	{"optimized", &runtime.Options{}},
	{"purego", runtime.PureGo(runtime.Options{})},
	{"threads3", &runtime.Options{Threads: 3}},
	{"purego-threads2", runtime.PureGo(runtime.Options{Threads: 2})},
}

// compareKernels runs m on inputs with every variant and reports the first
// difference from the reference.
func compareKernels(t *testing.T, desc string, m *builder.Model, inputs ...[]byte) {
	t.Helper()
	model := buildModel(t, m)
	var want [][]byte
	for i, v := range kernelVariants {
		it, err := runtime.NewInterpreter(model, v.opts)
		if err != nil {
			t.Fatalf("%s: %s: prepare: %v", desc, v.name, err)
		}
		got := invoke(t, it, inputs...)
		it.Close()
		if i == 0 {
			want = got
			continue
		}
		for o := range got {
			if !bytes.Equal(got[o], want[o]) {
				n := 0
				for n < len(got[o]) && got[o][n] == want[o][n] {
					n++
				}
				t.Fatalf("%s: %s output %d differs from the reference at byte %d of %d: got %d, want %d",
					desc, v.name, o, n, len(got[o]), got[o][n], want[o][n])
			}
		}
	}
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func fastTensorType(t runtime.DType) tflite.TensorType {
	if t == runtime.Uint8 {
		return tflite.TensorTypeUINT8
	}
	return tflite.TensorTypeINT8
}

// randZeroPoint is a zero point over the whole range of t, with the ends
// more likely.
func randZeroPoint(rng *rand.Rand, t runtime.DType) int64 {
	lo, hi := int64(-128), int64(127)
	if t == runtime.Uint8 {
		lo, hi = 0, 255
	}
	switch rng.IntN(6) {
	case 0:
		return lo
	case 1:
		return hi
	}
	return lo + rng.Int64N(hi-lo+1)
}

// logUniform is a random number between lo and hi, uniform in the log.
func logUniform(rng *rand.Rand, lo, hi float64) float64 {
	return math.Exp(math.Log(lo) + rng.Float64()*(math.Log(hi)-math.Log(lo)))
}

var testActivations = []tflite.ActivationFunctionType{
	tflite.ActivationFunctionTypeNONE, tflite.ActivationFunctionTypeRELU,
	tflite.ActivationFunctionTypeRELU6, tflite.ActivationFunctionTypeRELU_N1_TO_1,
}

// convProperty is one random CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED.
type convProperty struct {
	op                   tflite.BuiltinOperator
	typ                  runtime.DType
	batches, inH, inW    int
	inD, outD, dm        int
	fH, fW               int
	sh, sw, dh, dw       int
	padding              tflite.Padding
	act                  tflite.ActivationFunctionType
	perTensor, bias      bool
	inZP, wZP, outZP     int64
	inScale, outScale    float32
	wScales              []float32
	bigBias              bool
	seed                 uint64
	filterData, biasData []byte
}

func (c *convProperty) String() string {
	name := map[tflite.BuiltinOperator]string{tflite.BuiltinOperatorCONV_2D: "conv", tflite.BuiltinOperatorDEPTHWISE_CONV_2D: "depthwise", tflite.BuiltinOperatorFULLY_CONNECTED: "fc"}[c.op]
	return fmt.Sprintf("%s %s in [%d,%d,%d,%d] out %d (dm %d) filter %dx%d stride %dx%d dilation %dx%d %s act %s perTensor %v bias %v zp in %d w %d out %d scales in %g out %g seed %d",
		name, c.typ, c.batches, c.inH, c.inW, c.inD, c.outD, c.dm, c.fH, c.fW, c.sh, c.sw, c.dh, c.dw,
		tflite.EnumNamesPadding[c.padding], tflite.EnumNamesActivationFunctionType[c.act], c.perTensor, c.bias, c.inZP, c.wZP, c.outZP, c.inScale, c.outScale, c.seed)
}

func randomConv(rng *rand.Rand, op tflite.BuiltinOperator, seed uint64) *convProperty {
	c := &convProperty{op: op, seed: seed, typ: runtime.Int8}
	if rng.IntN(3) == 0 {
		c.typ = runtime.Uint8
	}
	c.batches = 1 + rng.IntN(2)
	c.inH, c.inW = 1+rng.IntN(12), 1+rng.IntN(12)
	c.fH, c.fW = 1+rng.IntN(5), 1+rng.IntN(5)
	if rng.IntN(3) == 0 {
		c.fH, c.fW = 3, 3
	}
	if rng.IntN(4) == 0 {
		c.fH, c.fW = 1, 1
	}
	c.sh, c.sw, c.dh, c.dw = 1+rng.IntN(3), 1+rng.IntN(3), 1, 1
	if rng.IntN(4) == 0 {
		c.dh, c.dw = 1+rng.IntN(3), 1+rng.IntN(3)
	}
	c.padding = tflite.PaddingSAME
	if rng.IntN(2) == 0 {
		c.padding = tflite.PaddingVALID
		c.inH = max(c.inH, (c.fH-1)*c.dh+1)
		c.inW = max(c.inW, (c.fW-1)*c.dw+1)
	}
	c.dm = 1
	switch op {
	case tflite.BuiltinOperatorCONV_2D:
		c.inD, c.outD = 1+rng.IntN(40), 1+rng.IntN(40)
	case tflite.BuiltinOperatorDEPTHWISE_CONV_2D:
		c.inD = 1 + rng.IntN(40)
		if rng.IntN(3) == 0 {
			c.dm = 1 + rng.IntN(4)
		}
		c.outD = c.inD * c.dm
	case tflite.BuiltinOperatorFULLY_CONNECTED:
		c.batches = 1 + rng.IntN(9)
		c.inD, c.outD = 1+rng.IntN(300), 1+rng.IntN(70)
	}
	c.act = testActivations[rng.IntN(len(testActivations))]
	c.perTensor = c.typ == runtime.Uint8 || rng.IntN(3) == 0
	c.bias = rng.IntN(5) != 0
	c.bigBias = rng.IntN(5) == 0
	c.inZP, c.outZP = randZeroPoint(rng, c.typ), randZeroPoint(rng, c.typ)
	if c.typ == runtime.Uint8 {
		c.wZP = randZeroPoint(rng, c.typ)
	}
	c.inScale = float32(logUniform(rng, 1e-3, 1))
	depth := c.fH * c.fW * c.inD
	if op == tflite.BuiltinOperatorDEPTHWISE_CONV_2D {
		depth = c.fH * c.fW
	}
	if op == tflite.BuiltinOperatorFULLY_CONNECTED {
		depth = c.inD
	}
	c.wScales = make([]float32, c.outD)
	for i := range c.wScales {
		c.wScales[i] = float32(logUniform(rng, 1e-3, 0.1))
		if c.perTensor {
			c.wScales[i] = c.wScales[0]
		}
	}
	// Output scales that put typical accumulators (depth products of the
	// mean offset input and weight, plus noise of about 74·74·√depth) near
	// ±50 output steps, some saturating, some tiny; now and then a
	// multiplier above 1 (a left shift).
	mx, mw := -0.5-float64(c.inZP), -0.5
	if c.typ == runtime.Uint8 {
		mx, mw = 127.5-float64(c.inZP), 127.5-float64(c.wZP)
	}
	typical := (float64(depth)*math.Abs(mx*mw) + 74*74*math.Sqrt(float64(depth))) / 50
	c.outScale = float32(float64(c.inScale) * float64(c.wScales[0]) * typical * logUniform(rng, 1.0/16, 4))
	if rng.IntN(10) == 0 {
		c.outScale = float32(float64(c.inScale) * float64(c.wScales[0]) * logUniform(rng, 1.0/64, 1))
	}
	var nW int
	switch op {
	case tflite.BuiltinOperatorCONV_2D:
		nW = c.outD * c.fH * c.fW * c.inD
	case tflite.BuiltinOperatorDEPTHWISE_CONV_2D:
		nW = c.fH * c.fW * c.outD
	default:
		nW = c.outD * c.inD
	}
	c.filterData = randBytes(rng, nW)
	if c.typ == runtime.Int8 && rng.IntN(4) == 0 {
		// Extreme weights: all -128 or 127.
		for i := range c.filterData {
			c.filterData[i] = []byte{0x80, 0x7f}[rng.IntN(2)]
		}
	}
	biasV := make([]int32, c.outD)
	for i := range biasV {
		if c.bigBias {
			biasV[i] = int32(rng.Uint32())
		} else {
			biasV[i] = int32(rng.IntN(1<<17)) - 1<<16
		}
	}
	c.biasData = builder.Int32Data(biasV)
	return c
}

func (c *convProperty) model() *builder.Model {
	m := &builder.Model{}
	tt := fastTensorType(c.typ)
	inShape := []int{c.batches, c.inH, c.inW, c.inD}
	var wShape []int
	var qdim int
	switch c.op {
	case tflite.BuiltinOperatorCONV_2D:
		wShape = []int{c.outD, c.fH, c.fW, c.inD}
	case tflite.BuiltinOperatorDEPTHWISE_CONV_2D:
		wShape, qdim = []int{1, c.fH, c.fW, c.outD}, 3
	default:
		inShape, wShape = []int{c.batches, c.inD}, []int{c.outD, c.inD}
	}
	wScales, wZPs := c.wScales, make([]int64, len(c.wScales))
	if c.perTensor {
		wScales, wZPs = c.wScales[:1], []int64{c.wZP}
	}
	in := m.AddTensor(builder.Tensor{Name: "input", Type: tt, Shape: inShape, Scale: []float32{c.inScale}, ZeroPoint: []int64{c.inZP}})
	w := m.AddTensor(builder.Tensor{Name: "filter", Type: tt, Shape: wShape, Data: c.filterData, Scale: wScales, ZeroPoint: wZPs, QuantizedDimension: qdim})
	biasScales := make([]float32, len(wScales))
	for i := range biasScales {
		biasScales[i] = c.inScale * wScales[i]
	}
	b := -1
	if c.bias {
		b = m.AddTensor(builder.Tensor{Name: "bias", Type: tflite.TensorTypeINT32, Shape: []int{c.outD}, Data: c.biasData, Scale: biasScales, ZeroPoint: make([]int64, len(biasScales))})
	}
	out := m.AddTensor(builder.Tensor{Name: "output", Type: tt, Scale: []float32{c.outScale}, ZeroPoint: []int64{c.outZP}})
	var opts *tflite.BuiltinOptionsT
	switch c.op {
	case tflite.BuiltinOperatorCONV_2D:
		opts = &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsConv2DOptions, Value: &tflite.Conv2DOptionsT{
			Padding: c.padding, StrideH: int32(c.sh), StrideW: int32(c.sw), DilationHFactor: int32(c.dh), DilationWFactor: int32(c.dw), FusedActivationFunction: c.act}}
	case tflite.BuiltinOperatorDEPTHWISE_CONV_2D:
		opts = &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsDepthwiseConv2DOptions, Value: &tflite.DepthwiseConv2DOptionsT{
			Padding: c.padding, StrideH: int32(c.sh), StrideW: int32(c.sw), DilationHFactor: int32(c.dh), DilationWFactor: int32(c.dw), DepthMultiplier: int32(c.dm), FusedActivationFunction: c.act}}
	default:
		opts = &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsFullyConnectedOptions, Value: &tflite.FullyConnectedOptionsT{FusedActivationFunction: c.act}}
	}
	m.AddOp(builder.Op{Builtin: c.op, Inputs: []int{in, w, b}, Outputs: []int{out}, Options: opts})
	m.Inputs, m.Outputs = []int{in}, []int{out}
	return m
}

func (c *convProperty) inputBytes(rng *rand.Rand) []byte {
	n := c.batches * c.inH * c.inW * c.inD
	if c.op == tflite.BuiltinOperatorFULLY_CONNECTED {
		n = c.batches * c.inD
	}
	return randBytes(rng, n)
}

func propertyCount(full, short int) int {
	if testing.Short() {
		return short
	}
	return full
}

func testConvProperty(t *testing.T, op tflite.BuiltinOperator) {
	for i := range propertyCount(300, 60) {
		seed := uint64(i) + 1000*uint64(op)
		rng := rand.New(rand.NewPCG(seed, 7))
		c := randomConv(rng, op, seed)
		if op == tflite.BuiltinOperatorDEPTHWISE_CONV_2D && i%5 == 0 {
			// One input channel with a depth multiplier (first layers).
			c.inD, c.dm = 1, 1+rng.IntN(12)
			c.outD = c.dm
			c.filterData = randBytes(rng, c.fH*c.fW*c.outD)
			c.wScales = c.wScales[:1]
			for len(c.wScales) < c.outD {
				c.wScales = append(c.wScales, c.wScales[0]*float32(logUniform(rng, 0.5, 2)))
				if c.perTensor {
					c.wScales[len(c.wScales)-1] = c.wScales[0]
				}
			}
			bias := make([]int32, c.outD)
			for j := range bias {
				bias[j] = int32(rng.IntN(1<<17)) - 1<<16
			}
			c.biasData = builder.Int32Data(bias)
		}
		compareKernels(t, c.String(), c.model(), c.inputBytes(rng))
	}
}

func TestFastConvMatchesReference(t *testing.T) {
	testConvProperty(t, tflite.BuiltinOperatorCONV_2D)
}

func TestFastDepthwiseMatchesReference(t *testing.T) {
	testConvProperty(t, tflite.BuiltinOperatorDEPTHWISE_CONV_2D)
}

func TestFastFullyConnectedMatchesReference(t *testing.T) {
	testConvProperty(t, tflite.BuiltinOperatorFULLY_CONNECTED)
}

// Large layers, which split across threads, and 1×1 GEMM-shaped layers.
func TestFastConvLargeMatchesReference(t *testing.T) {
	for i := range propertyCount(12, 4) {
		seed := uint64(i) + 77
		rng := rand.New(rand.NewPCG(seed, 9))
		for _, op := range []tflite.BuiltinOperator{tflite.BuiltinOperatorCONV_2D, tflite.BuiltinOperatorDEPTHWISE_CONV_2D} {
			c := randomConv(rng, op, seed)
			c.inH, c.inW = 20+rng.IntN(30), 20+rng.IntN(30)
			if op == tflite.BuiltinOperatorCONV_2D {
				c.inD, c.outD = 16*(1+rng.IntN(4)), 16*(1+rng.IntN(4))+rng.IntN(2)
				c.filterData = randBytes(rng, c.outD*c.fH*c.fW*c.inD)
			} else {
				c.inD, c.dm = 16*(1+rng.IntN(4)), 1
				c.outD = c.inD
				c.filterData = randBytes(rng, c.fH*c.fW*c.outD)
			}
			c.wScales = c.wScales[:1]
			for len(c.wScales) < c.outD {
				c.wScales = append(c.wScales, float32(logUniform(rng, 1e-3, 0.1)))
				if c.perTensor {
					c.wScales[len(c.wScales)-1] = c.wScales[0]
				}
			}
			bias := make([]int32, c.outD)
			for j := range bias {
				bias[j] = int32(rng.IntN(1<<17)) - 1<<16
			}
			c.biasData = builder.Int32Data(bias)
			compareKernels(t, c.String(), c.model(), c.inputBytes(rng))
		}
		// One row, many output channels: split by channel blocks.
		fc := randomConv(rng, tflite.BuiltinOperatorFULLY_CONNECTED, seed)
		fc.batches, fc.inD, fc.outD = 1+rng.IntN(2), 200+rng.IntN(400), 100+rng.IntN(200)
		fc.filterData = randBytes(rng, fc.outD*fc.inD)
		fc.typ, fc.perTensor, fc.wZP = runtime.Int8, false, 0
		fc.inZP, fc.outZP = randZeroPoint(rng, fc.typ), randZeroPoint(rng, fc.typ)
		fc.wScales = fc.wScales[:1]
		for len(fc.wScales) < fc.outD {
			fc.wScales = append(fc.wScales, fc.wScales[0]*float32(logUniform(rng, 0.5, 2)))
		}
		fc.biasData = builder.Int32Data(make([]int32, fc.outD))
		compareKernels(t, fc.String(), fc.model(), fc.inputBytes(rng))
	}
}

// elementwiseModel is a random ADD, SUB or MUL with broadcasting.
func elementwiseModel(rng *rand.Rand, op tflite.BuiltinOperator, typ runtime.DType) (*builder.Model, [][]byte, string) {
	rank := 1 + rng.IntN(4)
	a, b := make([]int, rank), make([]int, rank)
	for i := range a {
		d := 1 + rng.IntN(7)
		if i == rank-1 {
			d = 1 + rng.IntN(40) // rows long enough for the SIMD kernels
		}
		a[i], b[i] = d, d
		switch rng.IntN(5) {
		case 0:
			a[i] = 1
		case 1:
			b[i] = 1
		}
	}
	tt := fastTensorType(typ)
	m := &builder.Model{}
	sa, sb := float32(logUniform(rng, 1e-3, 1)), float32(logUniform(rng, 1e-3, 1))
	so := float32(logUniform(rng, 1e-3, 1))
	if op == tflite.BuiltinOperatorMUL {
		so = float32(float64(sa) * float64(sb) * logUniform(rng, 1, 40000))
	}
	za, zb, zo := randZeroPoint(rng, typ), randZeroPoint(rng, typ), randZeroPoint(rng, typ)
	ia := m.AddTensor(builder.Tensor{Name: "a", Type: tt, Shape: a, Scale: []float32{sa}, ZeroPoint: []int64{za}})
	ib := m.AddTensor(builder.Tensor{Name: "b", Type: tt, Shape: b, Scale: []float32{sb}, ZeroPoint: []int64{zb}})
	io := m.AddTensor(builder.Tensor{Name: "out", Type: tt, Scale: []float32{so}, ZeroPoint: []int64{zo}})
	act := testActivations[rng.IntN(len(testActivations))]
	var opts *tflite.BuiltinOptionsT
	switch op {
	case tflite.BuiltinOperatorADD:
		opts = &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsAddOptions, Value: &tflite.AddOptionsT{FusedActivationFunction: act}}
	case tflite.BuiltinOperatorSUB:
		opts = &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsSubOptions, Value: &tflite.SubOptionsT{FusedActivationFunction: act}}
	default:
		opts = &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsMulOptions, Value: &tflite.MulOptionsT{FusedActivationFunction: act}}
	}
	m.AddOp(builder.Op{Builtin: op, Inputs: []int{ia, ib}, Outputs: []int{io}, Options: opts})
	m.Inputs, m.Outputs = []int{ia, ib}, []int{io}
	desc := fmt.Sprintf("%s %s %v×%v scales %g %g → %g zero points %d %d → %d act %s", tflite.EnumNamesBuiltinOperator[op], typ, a, b, sa, sb, so, za, zb, zo, tflite.EnumNamesActivationFunctionType[act])
	return m, [][]byte{randBytes(rng, numElems(a)), randBytes(rng, numElems(b))}, desc
}

func numElems(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

func TestFastElementwiseMatchesReference(t *testing.T) {
	for _, op := range []tflite.BuiltinOperator{tflite.BuiltinOperatorADD, tflite.BuiltinOperatorSUB, tflite.BuiltinOperatorMUL} {
		for i := range propertyCount(200, 40) {
			rng := rand.New(rand.NewPCG(uint64(i), uint64(op)))
			typ := runtime.Int8
			if i%3 == 0 {
				typ = runtime.Uint8
			}
			m, inputs, desc := elementwiseModel(rng, op, typ)
			if err := prepareErrorOpts(t, m); err != nil {
				continue // parameters the operator rejects
			}
			compareKernels(t, desc, m, inputs...)
		}
	}
}

// prepareErrorOpts reports whether the reference kernels reject m.
func prepareErrorOpts(t *testing.T, m *builder.Model) error {
	_, err := runtime.NewInterpreter(buildModel(t, m), &runtime.Options{ReferenceKernels: true})
	return err
}

func TestFastSoftmaxLogisticTanhMatchReference(t *testing.T) {
	for i := range propertyCount(150, 30) {
		rng := rand.New(rand.NewPCG(uint64(i), 99))
		typ := runtime.Int8
		if i%2 == 1 {
			typ = runtime.Uint8
		}
		tt := fastTensorType(typ)
		shape := []int{1 + rng.IntN(5), 1 + rng.IntN(300)}
		inScale := float32(logUniform(rng, 1e-3, 1))
		inZP := randZeroPoint(rng, typ)
		var op tflite.BuiltinOperator
		var opts *tflite.BuiltinOptionsT
		outScale, outZP := float32(1.0/256), int64(-128)
		if typ == runtime.Uint8 {
			outZP = 0
		}
		switch i % 3 {
		case 0:
			op = tflite.BuiltinOperatorSOFTMAX
			opts = &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsSoftmaxOptions, Value: &tflite.SoftmaxOptionsT{Beta: float32(logUniform(rng, 0.1, 4))}}
		case 1:
			op = tflite.BuiltinOperatorLOGISTIC
		case 2:
			op = tflite.BuiltinOperatorTANH
			outScale, outZP = 1.0/128, 0
			if typ == runtime.Uint8 {
				outZP = 128
			}
		}
		m := &builder.Model{}
		in := m.AddTensor(builder.Tensor{Name: "in", Type: tt, Shape: shape, Scale: []float32{inScale}, ZeroPoint: []int64{inZP}})
		out := m.AddTensor(builder.Tensor{Name: "out", Type: tt, Shape: shape, Scale: []float32{outScale}, ZeroPoint: []int64{outZP}})
		m.AddOp(builder.Op{Builtin: op, Inputs: []int{in}, Outputs: []int{out}, Options: opts})
		m.Inputs, m.Outputs = []int{in}, []int{out}
		desc := fmt.Sprintf("%s %s %v scale %g zero point %d", tflite.EnumNamesBuiltinOperator[op], typ, shape, inScale, inZP)
		if err := prepareErrorOpts(t, m); err != nil {
			t.Fatalf("%s: %v", desc, err)
		}
		compareKernels(t, desc, m, randBytes(rng, numElems(shape)))
	}
}

// The optimized kernels allocate nothing per Invoke, on one thread or
// several.
func TestFastZeroAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	c := randomConv(rng, tflite.BuiltinOperatorCONV_2D, 5)
	c.inH, c.inW, c.inD, c.outD, c.fH, c.fW = 40, 40, 16, 16, 3, 3
	c.batches, c.padding, c.sh, c.sw, c.dh, c.dw = 1, tflite.PaddingSAME, 1, 1, 1, 1
	c.filterData = randBytes(rng, c.outD*c.fH*c.fW*c.inD)
	c.wScales = c.wScales[:1]
	for len(c.wScales) < c.outD {
		c.wScales = append(c.wScales, c.wScales[0])
	}
	c.biasData = builder.Int32Data(make([]int32, c.outD))
	// A convolution, and a large element-wise MUL then LOGISTIC.
	m := &builder.Model{}
	shape := []int{1, 300, 300}
	a := m.AddTensor(builder.Tensor{Name: "a", Type: tflite.TensorTypeINT8, Shape: shape, Scale: []float32{0.05}, ZeroPoint: []int64{3}})
	b := m.AddTensor(builder.Tensor{Name: "b", Type: tflite.TensorTypeINT8, Shape: shape, Scale: []float32{0.03}, ZeroPoint: []int64{-7}})
	p := m.AddTensor(builder.Tensor{Name: "p", Type: tflite.TensorTypeINT8, Shape: shape, Scale: []float32{0.01}, ZeroPoint: []int64{1}})
	o := m.AddTensor(builder.Tensor{Name: "o", Type: tflite.TensorTypeINT8, Shape: shape, Scale: []float32{1.0 / 256}, ZeroPoint: []int64{-128}})
	m.AddOp(builder.Op{Builtin: tflite.BuiltinOperatorMUL, Inputs: []int{a, b}, Outputs: []int{p},
		Options: &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsMulOptions, Value: &tflite.MulOptionsT{}}})
	m.AddOp(builder.Op{Builtin: tflite.BuiltinOperatorLOGISTIC, Inputs: []int{p}, Outputs: []int{o}})
	m.Inputs, m.Outputs = []int{a, b}, []int{o}
	for _, model := range []*runtime.Model{buildModel(t, c.model()), buildModel(t, m)} {
		testZeroAllocs(t, model)
	}
}

func testZeroAllocs(t *testing.T, model *runtime.Model) {
	rng := rand.New(rand.NewPCG(6, 6))
	for _, threads := range []int{1, 2, 4} {
		it, err := runtime.NewInterpreter(model, &runtime.Options{Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range it.Inputs() {
			copy(in.Bytes(), randBytes(rng, len(in.Bytes())))
		}
		if err := it.Invoke(); err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(50, func() {
			if err := it.Invoke(); err != nil {
				t.Fatal(err)
			}
		})
		it.Close()
		if allocs != 0 {
			t.Errorf("threads %d: %v allocations per Invoke, want 0", threads, allocs)
		}
	}
}

// The random layers are not all saturated: at least two in five outputs lie strictly
// inside the output range, so the comparisons test the arithmetic.
func TestFastPropertyOutputsSpread(t *testing.T) {
	inside, total := 0, 0
	for i := range 40 {
		seed := uint64(i) + 1000*uint64(tflite.BuiltinOperatorCONV_2D)
		rng := rand.New(rand.NewPCG(seed, 7))
		c := randomConv(rng, tflite.BuiltinOperatorCONV_2D, seed)
		c.act = tflite.ActivationFunctionTypeNONE
		out := runModel(t, c.model(), c.inputBytes(rng))[0]
		for _, v := range out {
			total++
			if v != 0 && v != 255 && v != 127 && v != 128 {
				inside++
			}
		}
	}
	if inside < total*2/5 {
		t.Errorf("only %d of %d outputs are inside the range", inside, total)
	}
}

func TestKernelBackend(t *testing.T) {
	b := runtime.KernelBackend()
	t.Logf("optimized kernels use %s micro-kernels", b)
	if b == "" {
		t.Error("no backend name")
	}
}

func TestFastPoolQuantizeMatchReference(t *testing.T) {
	for i := range propertyCount(200, 40) {
		rng := rand.New(rand.NewPCG(uint64(i), 123))
		typ := runtime.Int8
		if i%2 == 1 {
			typ = runtime.Uint8
		}
		tt := fastTensorType(typ)
		scale, zp := float32(logUniform(rng, 1e-3, 1)), randZeroPoint(rng, typ)
		m := &builder.Model{}
		var shape []int
		var desc string
		if i%3 == 2 {
			// QUANTIZE between 8-bit types (a requantization).
			shape = []int{1 + rng.IntN(3), 1 + rng.IntN(100)}
			outT := []runtime.DType{runtime.Int8, runtime.Uint8}[rng.IntN(2)]
			oScale, oZP := float32(float64(scale)*logUniform(rng, 0.05, 20)), randZeroPoint(rng, outT)
			in := m.AddTensor(builder.Tensor{Name: "in", Type: tt, Shape: shape, Scale: []float32{scale}, ZeroPoint: []int64{zp}})
			out := m.AddTensor(builder.Tensor{Name: "out", Type: fastTensorType(outT), Shape: shape, Scale: []float32{oScale}, ZeroPoint: []int64{oZP}})
			m.AddOp(builder.Op{Builtin: tflite.BuiltinOperatorQUANTIZE, Inputs: []int{in}, Outputs: []int{out}})
			m.Inputs, m.Outputs = []int{in}, []int{out}
			desc = fmt.Sprintf("QUANTIZE %s→%s %v scale %g→%g zero point %d→%d", typ, outT, shape, scale, oScale, zp, oZP)
		} else {
			shape = []int{1 + rng.IntN(2), 1 + rng.IntN(12), 1 + rng.IntN(12), 1 + rng.IntN(70)}
			fh, fw := 1+rng.IntN(5), 1+rng.IntN(5)
			sh, sw := 1+rng.IntN(3), 1+rng.IntN(3)
			pad := []tflite.Padding{tflite.PaddingSAME, tflite.PaddingVALID}[rng.IntN(2)]
			if pad == tflite.PaddingVALID {
				shape[1], shape[2] = max(shape[1], fh), max(shape[2], fw)
			}
			act := testActivations[rng.IntN(len(testActivations))]
			in := m.AddTensor(builder.Tensor{Name: "in", Type: tt, Shape: shape, Scale: []float32{scale}, ZeroPoint: []int64{zp}})
			out := m.AddTensor(builder.Tensor{Name: "out", Type: tt, Scale: []float32{scale}, ZeroPoint: []int64{zp}})
			op := tflite.BuiltinOperatorMAX_POOL_2D
			if rng.IntN(2) == 0 {
				op = tflite.BuiltinOperatorAVERAGE_POOL_2D
			}
			m.AddOp(builder.Op{Builtin: op, Inputs: []int{in}, Outputs: []int{out},
				Options: &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsPool2DOptions, Value: &tflite.Pool2DOptionsT{
					Padding: pad, StrideH: int32(sh), StrideW: int32(sw), FilterHeight: int32(fh), FilterWidth: int32(fw), FusedActivationFunction: act}}})
			m.Inputs, m.Outputs = []int{in}, []int{out}
			desc = fmt.Sprintf("%s %s %v filter %dx%d stride %dx%d %s act %s", tflite.EnumNamesBuiltinOperator[op], typ, shape, fh, fw, sh, sw, tflite.EnumNamesPadding[pad], tflite.EnumNamesActivationFunctionType[act])
		}
		if err := prepareErrorOpts(t, m); err != nil {
			continue // parameters the operator rejects
		}
		compareKernels(t, desc, m, randBytes(rng, numElems(shape)))
	}
}

func TestFastPadMatchesReference(t *testing.T) {
	for i := range propertyCount(100, 20) {
		rng := rand.New(rand.NewPCG(uint64(i), 321))
		shape := []int{1 + rng.IntN(2), 1 + rng.IntN(6), 1 + rng.IntN(6), 1 + rng.IntN(5)}
		pads := make([]int32, 8)
		for d := range 4 {
			if d < 3 || rng.IntN(3) == 0 {
				pads[2*d], pads[2*d+1] = int32(rng.IntN(3)), int32(rng.IntN(3))
			}
		}
		typ := []tflite.TensorType{tflite.TensorTypeINT8, tflite.TensorTypeUINT8, tflite.TensorTypeFLOAT32}[i%3]
		size := 1
		if typ == tflite.TensorTypeFLOAT32 {
			size = 4
		}
		m := &builder.Model{}
		q := []float32{0.1}
		zp := []int64{int64(rng.IntN(50))}
		if typ == tflite.TensorTypeFLOAT32 {
			q, zp = nil, nil
		}
		in := m.AddTensor(builder.Tensor{Name: "in", Type: typ, Shape: shape, Scale: q, ZeroPoint: zp})
		p := m.AddTensor(builder.Tensor{Name: "paddings", Type: tflite.TensorTypeINT32, Shape: []int{4, 2}, Data: builder.Int32Data(pads)})
		out := m.AddTensor(builder.Tensor{Name: "out", Type: typ, Scale: q, ZeroPoint: zp})
		m.AddOp(builder.Op{Builtin: tflite.BuiltinOperatorPAD, Inputs: []int{in, p}, Outputs: []int{out}})
		m.Inputs, m.Outputs = []int{in}, []int{out}
		compareKernels(t, fmt.Sprintf("PAD %v %v %v", typ, shape, pads), m, randBytes(rng, numElems(shape)*size))
	}
}

// The int8 LSTM's gate matmuls run through the packed-filter micro-kernel.
func TestFastLSTMMatchesReference(t *testing.T) {
	for i := range propertyCount(40, 8) {
		rng := rand1.New(rand1.NewSource(int64(i) + 5))
		batch, steps, inputs, cells := 1+rng.Intn(3), 1+rng.Intn(4), 1+rng.Intn(40), 1+rng.Intn(40)
		s := randomLSTMSpec(rng, runtime.Int8, batch, steps, inputs, cells, rng.Intn(2) == 0)
		s.inZP, s.hidZP = int64(rng.Intn(256)-128), int64(rng.Intn(256)-128)
		desc := fmt.Sprintf("LSTM int8 batch %d steps %d inputs %d cells %d zero points %d %d", batch, steps, inputs, cells, s.inZP, s.hidZP)
		compareKernels(t, desc, s.model(), s.inputBytes(s.randomInput(rng)))
	}
}

// Large same-shape element-wise operators split across threads.
func TestFastElementwiseLargeMatchesReference(t *testing.T) {
	for i := range propertyCount(15, 5) {
		rng := rand.New(rand.NewPCG(uint64(i), 777))
		typ := []runtime.DType{runtime.Int8, runtime.Uint8}[i%2]
		tt := fastTensorType(typ)
		shape := []int{1, 200 + rng.IntN(200), 300 + rng.IntN(100)}
		n := numElems(shape)
		m := &builder.Model{}
		sa, sb := float32(logUniform(rng, 1e-3, 1)), float32(logUniform(rng, 1e-3, 1))
		za, zb, zo := randZeroPoint(rng, typ), randZeroPoint(rng, typ), randZeroPoint(rng, typ)
		ia := m.AddTensor(builder.Tensor{Name: "a", Type: tt, Shape: shape, Scale: []float32{sa}, ZeroPoint: []int64{za}})
		ib := m.AddTensor(builder.Tensor{Name: "b", Type: tt, Shape: shape, Scale: []float32{sb}, ZeroPoint: []int64{zb}})
		var op tflite.BuiltinOperator
		var opts *tflite.BuiltinOptionsT
		outScale, outZP := float32(logUniform(rng, 1e-3, 1)), zo
		inputs := []int{ia, ib}
		switch i % 5 {
		case 0:
			op = tflite.BuiltinOperatorADD
			opts = &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsAddOptions, Value: &tflite.AddOptionsT{}}
		case 1:
			op = tflite.BuiltinOperatorMUL
			outScale = float32(float64(sa) * float64(sb) * logUniform(rng, 1, 40000))
			opts = &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsMulOptions, Value: &tflite.MulOptionsT{}}
		case 2:
			op, inputs = tflite.BuiltinOperatorLOGISTIC, []int{ia}
			outScale, outZP = 1.0/256, -128
			if typ == runtime.Uint8 {
				outZP = 0
			}
		case 3:
			op, inputs = tflite.BuiltinOperatorQUANTIZE, []int{ia}
		case 4:
			op, inputs = tflite.BuiltinOperatorSOFTMAX, []int{ia}
			opts = &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsSoftmaxOptions, Value: &tflite.SoftmaxOptionsT{Beta: 1}}
			outScale, outZP = 1.0/256, -128
			if typ == runtime.Uint8 {
				outZP = 0
			}
		}
		io := m.AddTensor(builder.Tensor{Name: "out", Type: tt, Shape: shape, Scale: []float32{outScale}, ZeroPoint: []int64{outZP}})
		m.AddOp(builder.Op{Builtin: op, Inputs: inputs, Outputs: []int{io}, Options: opts})
		m.Inputs, m.Outputs = inputs, []int{io}
		data := [][]byte{randBytes(rng, n), randBytes(rng, n)}[:len(inputs)]
		compareKernels(t, fmt.Sprintf("%s %s %v", tflite.EnumNamesBuiltinOperator[op], typ, shape), m, data...)
	}
}
