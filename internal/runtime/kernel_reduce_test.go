package runtime_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

// reduceOp builds a MEAN or SUM model with a constant axis tensor.
func reduceOp(op tflite.BuiltinOperator, typ tflite.TensorType, shape []int, axes []int32, keep bool, in, out *actQ) actOp {
	return actOp{
		op: op, typ: typ, shape: shape, in: in, out: out,
		extra: []builder.Tensor{{Name: "axis", Type: actI32, Shape: []int{len(axes)}, Data: builder.Int32Data(axes)}},
		opts:  &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsReducerOptions, Value: &tflite.ReducerOptionsT{KeepDims: keep}},
	}
}

// reduceRun runs the model and returns the output's shape and bytes.
func reduceRun(t *testing.T, a actOp, input []byte) ([]int, []byte) {
	t.Helper()
	it, err := runtime.NewInterpreter(buildModel(t, a.model()), nil)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	out := invoke(t, it, input)[0]
	return slices.Clone(it.Outputs()[0].Shape), out
}

// reduceOracle reduces values (any float function of the element) over
// axes with numpy semantics: the output shape and every output's sum and
// element count.
func reduceOracle(shape []int, axes []int32, keep bool, value func(i int) float64) (outShape []int, sums []float64, count int) {
	rank := len(shape)
	reduced := make([]bool, rank)
	for _, a := range axes {
		if a < 0 {
			a += int32(rank)
		}
		reduced[a] = true
	}
	count = 1
	var keptDims []int
	for d, n := range shape {
		switch {
		case !reduced[d]:
			outShape = append(outShape, n)
			keptDims = append(keptDims, d)
		case keep:
			outShape = append(outShape, 1)
		}
		if reduced[d] {
			count *= n
		}
	}
	nOut := 1
	for _, d := range keptDims {
		nOut *= shape[d]
	}
	sums = make([]float64, nOut)
	n := 1
	for _, d := range shape {
		n *= d
	}
	coord := make([]int, rank)
	for i := range n {
		rem := i
		for d := rank - 1; d >= 0; d-- {
			coord[d] = rem % shape[d]
			rem /= shape[d]
		}
		o := 0
		for _, d := range keptDims {
			o = o*shape[d] + coord[d]
		}
		sums[o] += value(i)
	}
	if outShape == nil {
		outShape = []int{}
	}
	return outShape, sums, count
}

func reduceRandomValues(r *rand.Rand, typ tflite.TensorType, n int) []int32 {
	lo, hi := actTypeRange(typ)
	if typ == actI16 {
		lo, hi = -3000, 3000
	}
	v := make([]int32, n)
	for i := range v {
		v[i] = lo + r.Int32N(hi-lo+1)
	}
	return v
}

// reduceCheckQuantized runs a quantized MEAN or SUM on random values and
// compares with the float oracle within one output step.
func reduceCheckQuantized(t *testing.T, r *rand.Rand, a actOp, axes []int32, keep, mean bool) {
	t.Helper()
	n := 1
	for _, d := range a.shape {
		n *= d
	}
	in := reduceRandomValues(r, a.typ, n)
	gotShape, raw := reduceRun(t, a, actEncode(a.typ, in))
	wantShape, sums, count := reduceOracle(a.shape, axes, keep, func(i int) float64 { return actDequant(a.in, in[i]) })
	if !slices.Equal(gotShape, wantShape) {
		t.Fatalf("output shape %v, want %v", gotShape, wantShape)
	}
	got := actDecode(a.typ, raw)
	for i, s := range sums {
		if mean {
			s /= float64(count)
		}
		want := actQuantize(a.out, a.typ, s)
		if d := got[i] - want; d > 1 || d < -1 {
			t.Fatalf("output %d: got %d, oracle %d (%g)", i, got[i], want, s)
		}
	}
}

func TestReduceQuantized(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	cases := []struct {
		name    string
		op      tflite.BuiltinOperator
		typ     tflite.TensorType
		shape   []int
		axes    []int32
		keep    bool
		in, out actQ
	}{
		{"mean int8 hw keep", tflite.BuiltinOperatorMEAN, actI8, []int{2, 7, 5, 3}, []int32{1, 2}, true, actQ{0.05, -10}, actQ{0.02, 4}},
		{"mean int8 hw same scale", tflite.BuiltinOperatorMEAN, actI8, []int{1, 10, 10, 8}, []int32{2, 1}, true, actQ{0.05, -10}, actQ{0.05, -10}},
		{"mean int8 hw drop", tflite.BuiltinOperatorMEAN, actI8, []int{1, 6, 6, 4}, []int32{1, 2}, false, actQ{0.05, 3}, actQ{0.05, 3}},
		{"mean int8 last axis negative", tflite.BuiltinOperatorMEAN, actI8, []int{3, 4, 9}, []int32{-1}, false, actQ{0.1, 0}, actQ{0.07, -3}},
		{"mean int8 all axes", tflite.BuiltinOperatorMEAN, actI8, []int{3, 4, 5}, []int32{0, 1, 2}, false, actQ{0.1, 20}, actQ{0.01, 0}},
		{"mean int8 duplicate axes", tflite.BuiltinOperatorMEAN, actI8, []int{4, 6}, []int32{1, -1, 1}, true, actQ{0.1, 20}, actQ{0.03, 0}},
		{"mean int8 large count", tflite.BuiltinOperatorMEAN, actI8, []int{1, 60, 70, 2}, []int32{1, 2}, true, actQ{0.1, 20}, actQ{0.003, 0}},
		{"mean uint8", tflite.BuiltinOperatorMEAN, actU8, []int{2, 5, 5, 3}, []int32{1, 2}, true, actQ{0.02, 128}, actQ{0.015, 120}},
		{"mean int16", tflite.BuiltinOperatorMEAN, actI16, []int{2, 3, 7}, []int32{0, 2}, false, actQ{0.001, 0}, actQ{0.0005, 0}},
		{"sum int8", tflite.BuiltinOperatorSUM, actI8, []int{3, 4, 5}, []int32{1}, false, actQ{0.01, 5}, actQ{0.05, -2}},
		{"sum int8 keep", tflite.BuiltinOperatorSUM, actI8, []int{2, 3, 4}, []int32{0, 2}, true, actQ{0.01, -5}, actQ{0.08, 0}},
		{"sum uint8", tflite.BuiltinOperatorSUM, actU8, []int{6, 5}, []int32{0}, false, actQ{0.01, 100}, actQ{0.06, 128}},
		{"sum int16", tflite.BuiltinOperatorSUM, actI16, []int{4, 5}, []int32{1}, true, actQ{0.001, 0}, actQ{0.004, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := reduceOp(c.op, c.typ, c.shape, c.axes, c.keep, &c.in, &c.out)
			reduceCheckQuantized(t, r, a, c.axes, c.keep, c.op == tflite.BuiltinOperatorMEAN)
		})
	}
}

// TestReduceRandom reduces random shapes over random axis lists (negative
// and repeated axes included) for every type, against the float oracle.
func TestReduceRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	types := []tflite.TensorType{actI8, actU8, actI16, actF32}
	for iter := range 300 {
		rank := 1 + r.IntN(4)
		shape := make([]int, rank)
		for d := range shape {
			shape[d] = 1 + r.IntN(6)
		}
		axes := make([]int32, 1+r.IntN(rank+1))
		for i := range axes {
			axes[i] = int32(r.IntN(2*rank) - rank)
		}
		keep := r.IntN(2) == 0
		op := tflite.BuiltinOperatorMEAN
		if r.IntN(2) == 0 {
			op = tflite.BuiltinOperatorSUM
		}
		typ := types[r.IntN(len(types))]
		var in, out *actQ
		if typ != actF32 {
			lo, hi := actTypeRange(typ)
			zp := func() int64 {
				if typ == actI16 {
					return 0
				}
				return int64(lo + r.Int32N(hi-lo+1))
			}
			in = &actQ{0.001 + 0.1*r.Float32(), zp()}
			out = &actQ{0.001 + 0.1*r.Float32(), zp()}
			if op == tflite.BuiltinOperatorSUM {
				out.scale *= 8
			}
		}
		a := reduceOp(op, typ, shape, axes, keep, in, out)
		ok := t.Run("", func(t *testing.T) {
			if typ != actF32 {
				reduceCheckQuantized(t, r, a, axes, keep, op == tflite.BuiltinOperatorMEAN)
				return
			}
			n := 1
			for _, d := range shape {
				n *= d
			}
			vals := actRandFloats(r, n, -10, 10)[:n]
			gotShape, raw := reduceRun(t, a, builder.Float32Data(vals))
			wantShape, sums, count := reduceOracle(shape, axes, keep, func(i int) float64 { return float64(vals[i]) })
			if !slices.Equal(gotShape, wantShape) {
				t.Fatalf("output shape %v, want %v", gotShape, wantShape)
			}
			got := float32s(raw)
			for i, s := range sums {
				if op == tflite.BuiltinOperatorMEAN {
					s /= float64(count)
				}
				if math.Abs(float64(got[i])-s) > 1e-4 {
					t.Fatalf("output %d: got %g, want %g", i, got[i], s)
				}
			}
		})
		if !ok {
			t.Fatalf("case %d: %s %s shape %v axes %v keep %v in %+v out %+v", iter, tflite.EnumNamesBuiltinOperator[op], tflite.EnumNamesTensorType[typ], shape, axes, keep, in, out)
		}
	}
}

func TestReduceExact(t *testing.T) {
	one := &actQ{1, 0}
	t.Run("mean int8 ties", func(t *testing.T) {
		// Same scales: 1/count is folded into the multiplier (2^30 << 2 / 4,
		// shift 1 - 2); 10/4 = 2.5 rounds to 3, -10/4 = -2.5 to -3.
		a := reduceOp(tflite.BuiltinOperatorMEAN, actI8, []int{2, 2, 2, 1}, []int32{1, 2}, true, one, one)
		_, raw := reduceRun(t, a, actEncode(actI8, []int32{1, 2, 3, 4, -1, -2, -3, -4}))
		if got := actDecode(actI8, raw); !slices.Equal(got, []int32{3, -3}) {
			t.Errorf("got %v, want [3 -3]", got)
		}
	})
	t.Run("mean int8 count 3", func(t *testing.T) {
		// Multiplier (2^30 << 1) / 3 = 715827882 (truncated), shift 0:
		// 5 * 715827882 / 2^31 = 1.67 -> 2; with zero point 1 the sum is
		// 8 - 3*1 = 5 as well.
		a := reduceOp(tflite.BuiltinOperatorMEAN, actI8, []int{3}, []int32{0}, false, &actQ{1, 1}, &actQ{1, 1})
		_, raw := reduceRun(t, a, actEncode(actI8, []int32{2, 3, 3}))
		if got := actDecode(actI8, raw); !slices.Equal(got, []int32{3}) {
			t.Errorf("got %v, want [3]", got)
		}
	})
	t.Run("sum int8", func(t *testing.T) {
		// (3-1 + 5-1 + 1-1) * 0.5 = 3; saturation at 127.
		a := reduceOp(tflite.BuiltinOperatorSUM, actI8, []int{2, 3}, []int32{1}, false, &actQ{0.5, 1}, one)
		_, raw := reduceRun(t, a, actEncode(actI8, []int32{3, 5, 1, 127, 127, 127}))
		if got := actDecode(actI8, raw); !slices.Equal(got, []int32{3, 127}) {
			t.Errorf("got %v, want [3 127]", got)
		}
	})
	t.Run("sum int32 wraps", func(t *testing.T) {
		a := reduceOp(tflite.BuiltinOperatorSUM, actI32, []int{2, 2}, []int32{1}, true, nil, nil)
		shape, raw := reduceRun(t, a, actEncode(actI32, []int32{math.MaxInt32, 1, -5, 7}))
		if got := actDecode(actI32, raw); !slices.Equal(got, []int32{math.MinInt32, 2}) || !slices.Equal(shape, []int{2, 1}) {
			t.Errorf("got %v %v, want [2 1] [MinInt32 2]", shape, got)
		}
	})
	t.Run("float", func(t *testing.T) {
		in := builder.Float32Data([]float32{1, 2, 3, 4, 5, 6})
		_, raw := reduceRun(t, reduceOp(tflite.BuiltinOperatorMEAN, actF32, []int{2, 3}, []int32{1}, false, nil, nil), in)
		if got := float32s(raw); !slices.Equal(got, []float32{2, 5}) {
			t.Errorf("mean: got %v", got)
		}
		_, raw = reduceRun(t, reduceOp(tflite.BuiltinOperatorSUM, actF32, []int{2, 3}, []int32{0, 1}, false, nil, nil), in)
		if got := float32s(raw); !slices.Equal(got, []float32{21}) {
			t.Errorf("sum: got %v", got)
		}
	})
	t.Run("float sums in input order", func(t *testing.T) {
		// 1e8 + 1 + ... loses the ones in float32 when added in order.
		vals := []float32{1e8, 1, 1, 1, 1, 1, 1, 1}
		_, raw := reduceRun(t, reduceOp(tflite.BuiltinOperatorSUM, actF32, []int{8}, []int32{0}, false, nil, nil), builder.Float32Data(vals))
		var want float32
		for _, v := range vals {
			want = v + want
		}
		if got := float32s(raw); got[0] != want {
			t.Errorf("got %v, want %v", got[0], want)
		}
	})
	t.Run("scalar", func(t *testing.T) {
		a := reduceOp(tflite.BuiltinOperatorMEAN, actI8, []int{}, []int32{0}, false, &actQ{0.5, 0}, &actQ{0.25, 0})
		shape, raw := reduceRun(t, a, actEncode(actI8, []int32{-7}))
		if got := actDecode(actI8, raw); len(shape) != 0 || !slices.Equal(got, []int32{-14}) {
			t.Errorf("got %v %v, want [] [-14]", shape, got)
		}
	})
	t.Run("empty input", func(t *testing.T) {
		a := reduceOp(tflite.BuiltinOperatorMEAN, actI8, []int{2, 0}, []int32{1}, false, &actQ{0.5, 3}, &actQ{0.5, 3})
		shape, raw := reduceRun(t, a, nil)
		if got := actDecode(actI8, raw); !slices.Equal(shape, []int{2}) || !slices.Equal(got, []int32{0, 0}) {
			t.Errorf("got %v %v, want [2] [0 0]", shape, got)
		}
	})
}

func TestReduceErrors(t *testing.T) {
	q := &actQ{0.1, 0}
	cases := []struct {
		name string
		a    actOp
		want string
	}{
		{"axis out of range", reduceOp(tflite.BuiltinOperatorMEAN, actF32, []int{2, 3}, []int32{2}, false, nil, nil), "axis 2 is out of range"},
		{"negative axis out of range", reduceOp(tflite.BuiltinOperatorSUM, actF32, []int{2, 3}, []int32{-3}, false, nil, nil), "axis -3 is out of range"},
		{"mean int32", reduceOp(tflite.BuiltinOperatorMEAN, actI32, []int{2, 3}, []int32{1}, false, nil, nil), "unsupported tensor type"},
		{"bool", reduceOp(tflite.BuiltinOperatorSUM, tflite.TensorTypeBOOL, []int{2, 3}, []int32{1}, false, nil, nil), "unsupported tensor type"},
		{"missing quantization", reduceOp(tflite.BuiltinOperatorMEAN, actI8, []int{2, 3}, []int32{1}, false, q, nil), "no quantization"},
		{"options", func() actOp {
			a := reduceOp(tflite.BuiltinOperatorMEAN, actF32, []int{2, 3}, []int32{1}, false, nil, nil)
			a.opts = actLeakyOpts(1)
			return a
		}(), "want ReducerOptions"},
		{"axis type", func() actOp {
			a := reduceOp(tflite.BuiltinOperatorMEAN, actF32, []int{2, 3}, []int32{1}, false, nil, nil)
			a.extra[0] = builder.Tensor{Name: "axis", Type: tflite.TensorTypeINT64, Shape: []int{1}, Data: builder.Int64Data([]int64{1})}
			return a
		}(), "must be int32"},
		{"declared shape", func() actOp {
			a := reduceOp(tflite.BuiltinOperatorMEAN, actF32, []int{2, 3}, []int32{1}, true, nil, nil)
			a.outShape = []int{2}
			return a
		}(), "computed output shape [2,1]"},
		{"type mismatch", func() actOp {
			a := reduceOp(tflite.BuiltinOperatorSUM, actI8, []int{2, 3}, []int32{1}, false, q, q)
			a.outType = actI16
			return a
		}(), "must match"},
		{"one input", actOp{op: tflite.BuiltinOperatorMEAN, typ: actF32, shape: []int{2}}, "has 1 inputs, want 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { actWantError(t, c.a.model(), c.want) })
	}
	t.Run("axis not constant", func(t *testing.T) {
		m := reduceOp(tflite.BuiltinOperatorMEAN, actF32, []int{2, 3}, []int32{1}, false, nil, nil).model()
		m.Tensors[1].Data = nil
		m.Inputs = append(m.Inputs, 1)
		actWantError(t, m, "must be a constant")
	})
}

func TestReduceZeroAllocs(t *testing.T) {
	q := &actQ{0.1, 3}
	cases := []actOp{
		reduceOp(tflite.BuiltinOperatorMEAN, actI8, []int{2, 3, 4, 5}, []int32{1, 2}, true, q, &actQ{0.05, 0}),
		reduceOp(tflite.BuiltinOperatorMEAN, actU8, []int{2, 3, 4, 5}, []int32{-1}, false, q, q),
		reduceOp(tflite.BuiltinOperatorSUM, actI16, []int{2, 3, 4, 5}, []int32{0, 3}, false, &actQ{0.1, 0}, &actQ{0.5, 0}),
		reduceOp(tflite.BuiltinOperatorMEAN, actF32, []int{2, 3, 4, 5}, []int32{1, 2}, true, nil, nil),
		reduceOp(tflite.BuiltinOperatorSUM, actF32, []int{2, 3, 4, 5}, []int32{3}, false, nil, nil),
		reduceOp(tflite.BuiltinOperatorSUM, actI32, []int{2, 3, 4, 5}, []int32{0}, false, nil, nil),
	}
	for _, a := range cases {
		t.Run(tflite.EnumNamesBuiltinOperator[a.op]+"/"+tflite.EnumNamesTensorType[a.typ], func(t *testing.T) {
			size := map[tflite.TensorType]int{actI8: 1, actU8: 1, actI16: 2, actF32: 4, actI32: 4}[a.typ]
			actZeroAllocs(t, a.model(), make([]byte, 120*size))
		})
	}
}
