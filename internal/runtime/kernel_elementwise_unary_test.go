package runtime_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

func TestUnaryFloat(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	negZero := float32(math.Copysign(0, -1))
	cases := []struct {
		op       tflite.BuiltinOperator
		in, want []float32
	}{
		{tflite.BuiltinOperatorFLOOR, []float32{-1.5, 2.5, -0.25, negZero, 3, 1e20, -inf, nan},
			[]float32{-2, 2, -1, negZero, 3, 1e20, -inf, nan}},
		{tflite.BuiltinOperatorSQRT, []float32{4, 2, 0, negZero, inf, -1},
			[]float32{2, float32(math.Sqrt2), 0, negZero, inf, nan}},
		{tflite.BuiltinOperatorRSQRT, []float32{4, 0.25, 0, inf, -1, 2},
			[]float32{0.5, 2, inf, 0, nan, 1 / float32(math.Sqrt2)}},
	}
	for _, c := range cases {
		t.Run(tflite.EnumNamesBuiltinOperator[c.op], func(t *testing.T) {
			actCheckFloat(t, actOp{op: c.op, typ: actF32, shape: []int{len(c.in)}}, c.in, c.want)
		})
	}
	t.Run("random", func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		in := actRandFloats(r, 1000, 0.001, 1000)
		n := []int{len(in)}
		floor := float32s(actRun(t, actOp{op: tflite.BuiltinOperatorFLOOR, typ: actF32, shape: n}, builder.Float32Data(in)))
		sqrt := float32s(actRun(t, actOp{op: tflite.BuiltinOperatorSQRT, typ: actF32, shape: n}, builder.Float32Data(in)))
		rsqrt := float32s(actRun(t, actOp{op: tflite.BuiltinOperatorRSQRT, typ: actF32, shape: n}, builder.Float32Data(in)))
		for i, x := range in {
			xf := float64(x)
			if float64(floor[i]) != math.Floor(xf) {
				t.Errorf("floor(%g) = %g", x, floor[i])
			}
			if math.Abs(float64(sqrt[i])-math.Sqrt(xf)) > 1e-7*math.Sqrt(xf) {
				t.Errorf("sqrt(%g) = %g", x, sqrt[i])
			}
			if x != 0 && math.Abs(float64(rsqrt[i])-1/math.Sqrt(xf)) > 2e-7/math.Sqrt(xf) {
				t.Errorf("rsqrt(%g) = %g", x, rsqrt[i])
			}
		}
	})
}

func TestRsqrtInt8(t *testing.T) {
	cases := []struct {
		name    string
		in, out actQ
	}{
		{"small scales", actQ{0.01, -128}, actQ{0.1, -128}},
		{"offset zero point", actQ{0.05, -20}, actQ{0.02, -100}},
		{"wide output", actQ{0.002, 0}, actQ{0.5, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var in []int32
			for x := int32(c.in.zp) + 1; x <= 127; x++ {
				in = append(in, x)
			}
			a := actOp{op: tflite.BuiltinOperatorRSQRT, version: 2, typ: actI8, shape: []int{len(in)}, in: &c.in, out: &c.out}
			actCheckOracle(t, a, in, func(x float64) float64 { return 1 / math.Sqrt(x) }, 1)
		})
	}
	t.Run("exact", func(t *testing.T) {
		// in 0.25, out 1/128: 16 -> 1/sqrt(4) = 0.5 -> 64; 64 -> 0.25 -> 32;
		// the zero point itself gives the maximum, 1 -> 2 saturates.
		a := actOp{op: tflite.BuiltinOperatorRSQRT, version: 2, typ: actI8, shape: []int{5}, in: &actQ{0.25, 0}, out: &actQ{1.0 / 128, 0}}
		actCheckExact(t, a, []int32{16, 64, 0, 1, 100}, []int32{64, 32, 127, 127, 26})
	})
	t.Run("negative input", func(t *testing.T) {
		a := actOp{op: tflite.BuiltinOperatorRSQRT, version: 2, typ: actI8, shape: []int{3}, in: &actQ{0.25, -10}, out: &actQ{0.1, 0}}
		it, err := runtime.NewInterpreter(buildModel(t, a.model()), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := it.Inputs()[0].CopyFrom(actEncode(actI8, []int32{5, -11, 3})); err != nil {
			t.Fatal(err)
		}
		err = it.Invoke()
		if err == nil || !strings.Contains(err.Error(), "non-negative") || !strings.Contains(err.Error(), "element 1") {
			t.Fatalf("Invoke: %v, want an error about element 1", err)
		}
		// The interpreter stays usable.
		if err := it.Inputs()[0].CopyFrom(actEncode(actI8, []int32{5, 6, 3})); err != nil {
			t.Fatal(err)
		}
		if err := it.Invoke(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestUnaryErrors(t *testing.T) {
	q := &actQ{0.1, 0}
	cases := []struct {
		name string
		a    actOp
		want string
	}{
		{"floor int8", actOp{op: tflite.BuiltinOperatorFLOOR, typ: actI8, shape: []int{4}, in: q, out: q}, "unsupported tensor type"},
		{"sqrt int8", actOp{op: tflite.BuiltinOperatorSQRT, typ: actI8, shape: []int{4}, in: q, out: q}, "unsupported tensor type"},
		{"rsqrt uint8", actOp{op: tflite.BuiltinOperatorRSQRT, typ: actU8, shape: []int{4}, in: q, out: q}, "unsupported tensor type"},
		{"rsqrt int16", actOp{op: tflite.BuiltinOperatorRSQRT, typ: actI16, shape: []int{4}, in: q, out: q}, "unsupported tensor type"},
		{"rsqrt missing quantization", actOp{op: tflite.BuiltinOperatorRSQRT, typ: actI8, shape: []int{4}, in: q}, "no quantization"},
		{"rsqrt type mismatch", actOp{op: tflite.BuiltinOperatorRSQRT, typ: actI8, shape: []int{4}, in: q, out: q, outType: actU8}, "must match"},
		{"rsqrt scales", actOp{op: tflite.BuiltinOperatorRSQRT, typ: actI8, shape: []int{4}, in: &actQ{100, 0}, out: &actQ{1000, 0}}, "too small"},
		{"floor output shape", actOp{op: tflite.BuiltinOperatorFLOOR, typ: actF32, shape: []int{4}, outShape: []int{2, 2}}, "computed output shape"},
		{"floor two inputs", actOp{op: tflite.BuiltinOperatorFLOOR, typ: actF32, shape: []int{4}, extra: []builder.Tensor{{Name: "x", Type: actF32, Shape: []int{1}, Data: make([]byte, 4)}}}, "has 2 inputs, want 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { actWantError(t, c.a.model(), c.want) })
	}
}

func TestUnaryZeroAllocs(t *testing.T) {
	cases := []actOp{
		{op: tflite.BuiltinOperatorFLOOR, typ: actF32},
		{op: tflite.BuiltinOperatorSQRT, typ: actF32},
		{op: tflite.BuiltinOperatorRSQRT, typ: actF32},
		{op: tflite.BuiltinOperatorRSQRT, version: 2, typ: actI8, in: &actQ{0.1, -128}, out: &actQ{0.05, 0}},
	}
	for _, a := range cases {
		t.Run(tflite.EnumNamesBuiltinOperator[a.op]+"/"+tflite.EnumNamesTensorType[a.typ], func(t *testing.T) {
			a.shape = []int{4, 8}
			size := map[tflite.TensorType]int{actI8: 1, actF32: 4}[a.typ]
			actZeroAllocs(t, a.model(), make([]byte, 32*size))
		})
	}
}
