package runtime_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/edged/edged/internal/runtime/builder"
	"github.com/edged/edged/internal/runtime/tflite"
)

func resizeOpts(bilinear, alignCorners, half bool) *tflite.BuiltinOptionsT {
	if bilinear {
		return &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsResizeBilinearOptions,
			Value: &tflite.ResizeBilinearOptionsT{AlignCorners: alignCorners, HalfPixelCenters: half}}
	}
	return &tflite.BuiltinOptionsT{Type: tflite.BuiltinOptionsResizeNearestNeighborOptions,
		Value: &tflite.ResizeNearestNeighborOptionsT{AlignCorners: alignCorners, HalfPixelCenters: half}}
}

func resizeCode(bilinear bool) tflite.BuiltinOperator {
	if bilinear {
		return tflite.BuiltinOperatorRESIZE_BILINEAR
	}
	return tflite.BuiltinOperatorRESIZE_NEAREST_NEIGHBOR
}

func resizeModel(bilinear bool, tt tflite.TensorType, in []int, h, w int32, alignCorners, half bool) *builder.Model {
	return shapeModel([]builder.Tensor{shapeAct(tt, in...), shapeI32([]int{2}, h, w), shapeOut(tt)},
		resizeCode(bilinear), 1, resizeOpts(bilinear, alignCorners, half), []int{0, 1}, []int{2})
}

// resizeNearestSource is the source index of output index v, in exact integer
// arithmetic: the position (v + offset) * scale with scale in/out, or
// (in-1)/(out-1) with align_corners, floored (rounded half up with
// align_corners), clamped to the input.
func resizeNearestSource(v, in, out int, alignCorners, half bool) int {
	num, den := in, out
	if alignCorners && out > 1 {
		num, den = in-1, out-1
	}
	h := 0
	if half {
		h = 1
	}
	// position = (2v + h) * num / (2 den)
	var s int
	if alignCorners {
		s = ((2*v+h)*num + den) / (2 * den)
	} else {
		s = (2*v + h) * num / (2 * den)
	}
	return max(min(s, in-1), 0)
}

func TestResizeNearestNeighbor(t *testing.T) {
	sizes := [][4]int{{2, 2, 4, 4}, {4, 4, 2, 2}, {3, 5, 5, 3}, {3, 1, 7, 2}, {6, 4, 4, 6}, {1, 1, 3, 3}, {4, 4, 4, 4}}
	for _, e := range shapeElems {
		for _, sz := range sizes {
			for _, flags := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
				ac, hp := flags[0], flags[1]
				t.Run(fmt.Sprintf("%s/%v/ac=%v/hp=%v", e.name, sz, ac, hp), func(t *testing.T) {
					in := []int{2, sz[0], sz[1], 3}
					out := []int{2, sz[2], sz[3], 3}
					vals := shapeIota(shapeCount(in))
					want := make([]int, shapeCount(out))
					for i := range want {
						o := shapeUnravel(i, out)
						src := []int{o[0], resizeNearestSource(o[1], in[1], out[1], ac, hp), resizeNearestSource(o[2], in[2], out[2], ac, hp), o[3]}
						want[i] = vals[shapeFlat(src, in)]
					}
					m := resizeModel(false, e.tt, in, int32(sz[2]), int32(sz[3]), ac, hp)
					shapeCheck(t, m, out, e.data(want), e.data(vals))
				})
			}
		}
	}
	t.Run("yolov8n upsample", func(t *testing.T) {
		// half_pixel_centers 2x: output row y takes input row y/2.
		i8 := tflite.TensorTypeINT8
		m := resizeModel(false, i8, []int{1, 2, 2, 1}, 4, 4, false, true)
		in := []byte{1, 2, 3, 4}
		want := []byte{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}
		shapeCheck(t, m, []int{1, 4, 4, 1}, want, in)
	})
}

// resizeBilinearOracle resizes a [b, h, w, c] tensor in float64 following the
// definition: source position per output index (align_corners: index *
// (in-1)/(out-1); half_pixel_centers: (index+0.5)*in/out - 0.5; else
// index*in/out), the two neighbours clamped to the input, weights from the
// position's distance to the lower neighbour.
func resizeBilinearOracle(in []int, vals []float64, oh, ow int, ac, hp bool) []float64 {
	pos := func(v, n, o int) (float64, int, int) {
		var s float64
		switch {
		case ac && o > 1:
			s = float64(v) * float64(n-1) / float64(o-1)
		case hp:
			s = (float64(v)+0.5)*float64(n)/float64(o) - 0.5
		default:
			s = float64(v) * float64(n) / float64(o)
		}
		lo := max(int(math.Floor(s)), 0)
		hi := min(int(math.Ceil(s)), n-1)
		return s - float64(lo), lo, hi
	}
	out := []int{in[0], oh, ow, in[3]}
	res := make([]float64, shapeCount(out))
	for i := range res {
		o := shapeUnravel(i, out)
		fy, y0, y1 := pos(o[1], in[1], oh)
		fx, x0, x1 := pos(o[2], in[2], ow)
		at := func(y, x int) float64 { return vals[shapeFlat([]int{o[0], y, x, o[3]}, in)] }
		res[i] = at(y0, x0)*(1-fy)*(1-fx) + at(y1, x0)*fy*(1-fx) + at(y0, x1)*(1-fy)*fx + at(y1, x1)*fy*fx
	}
	return res
}

// resizeBilinearElem is a bilinear type: encoding of test values (offset for
// uint8) and decoding of output bytes, with the tolerance against the
// float64 oracle.
type resizeBilinearElem struct {
	name   string
	tt     tflite.TensorType
	offset float64
	enc    func(v float64) []byte
	dec    func(b []byte) []float64
	tol    float64
}

var resizeBilinearElems = []resizeBilinearElem{
	{"float32", tflite.TensorTypeFLOAT32, 0, func(v float64) []byte { return builder.Float32Data([]float32{float32(v)}) },
		func(b []byte) []float64 {
			var out []float64
			for _, f := range float32s(b) {
				out = append(out, float64(f))
			}
			return out
		}, 1e-4},
	{"uint8", tflite.TensorTypeUINT8, 128, func(v float64) []byte { return []byte{uint8(v)} },
		func(b []byte) []float64 {
			var out []float64
			for _, x := range b {
				out = append(out, float64(x))
			}
			return out
		}, 1},
	{"int8", tflite.TensorTypeINT8, 0, func(v float64) []byte { return []byte{byte(int8(v))} },
		func(b []byte) []float64 {
			var out []float64
			for _, x := range int8s(b) {
				out = append(out, float64(x))
			}
			return out
		}, 1},
	{"int16", tflite.TensorTypeINT16, 0, func(v float64) []byte { return builder.Int16Data([]int16{int16(v)}) },
		func(b []byte) []float64 {
			var out []float64
			for i := 0; i < len(b); i += 2 {
				out = append(out, float64(int16(uint16(b[i])|uint16(b[i+1])<<8)))
			}
			return out
		}, 1},
}

func TestResizeBilinear(t *testing.T) {
	// Hand-computed rows (height 1, depth 1), from the reference kernels'
	// arithmetic. E.g. [0, 1] to width 4: positions 0, 0.5, 1, 1.5 (the last
	// clamped to the last pixel); at 0.5 the float kernel gives 0.5, the
	// integer kernel (weights 512/1024) rounds 0.5 half away from zero to 1
	// and -0.5 to -1, the uint8 float kernel truncates 128.5 + 0.5 to 129.
	// [0, 0, 100, 0, -100] to width 3: integer scale (5*1024+1)/3 = 1707;
	// output 1 sits at 1707/1024 = 1 + 683/1024 → 100*683/1024 = 66.7 → 67.
	// [-100, 50, 127, -128] to width 7 with half_pixel_centers: output 3
	// sits at 1.5 in float (88.5; uint8 216.5 + 0.5 → 217), at
	// 3*585 + 292 - 512 = 1535/1024 in the integer kernel:
	// (50*513 + 127*511)/1024 = 88.42 → 88.
	cases := []struct {
		row     []int
		out     int
		ac, hp  bool
		float   []float32
		uint8   []int // for row + 128
		integer []int
	}{
		{[]int{0, 100}, 4, false, false, []float32{0, 50, 100, 100}, []int{128, 178, 228, 228}, []int{0, 50, 100, 100}},
		{[]int{0, 1}, 4, false, false, []float32{0, 0.5, 1, 1}, []int{128, 129, 129, 129}, []int{0, 1, 1, 1}},
		{[]int{0, -1}, 4, false, false, []float32{0, -0.5, -1, -1}, []int{128, 128, 127, 127}, []int{0, -1, -1, -1}},
		{[]int{3, 4, -7}, 2, false, false, []float32{3, -1.5}, []int{131, 127}, []int{3, -2}},
		{[]int{0, 0, 100, 0, -100}, 3, false, false, []float32{0, 66.666664, -33.333324}, []int{128, 195, 95}, []int{0, 67, -33}},
		{[]int{10, 20, 30}, 5, true, false, []float32{10, 15, 20, 25, 30}, []int{138, 143, 148, 153, 158}, []int{10, 15, 20, 25, 30}},
		{[]int{10, 20, 30}, 5, false, true, []float32{10, 14, 20, 26, 30}, []int{138, 142, 148, 154, 158}, []int{10, 14, 20, 26, 30}},
		{[]int{-100, 50, 127, -128}, 7, false, true, []float32{-100, -46.42856, 39.28572, 88.5, 108.78566, -36.928616, -128},
			[]int{28, 82, 167, 217, 237, 91, 0}, []int{-100, -47, 39, 88, 109, -37, -128}},
		{[]int{-100, 50, 127, -128}, 3, true, false, []float32{-100, 88.5, -128}, []int{28, 217, 0}, []int{-100, 89, -128}},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%v/%d/ac=%v/hp=%v", tc.row, tc.out, tc.ac, tc.hp)
		in := []int{1, 1, len(tc.row), 1}
		outShape := []int{1, 1, tc.out, 1}
		t.Run("float32/"+name, func(t *testing.T) {
			row := make([]float32, len(tc.row))
			for i, v := range tc.row {
				row[i] = float32(v)
			}
			m := resizeModel(true, tflite.TensorTypeFLOAT32, in, 1, int32(tc.out), tc.ac, tc.hp)
			shapeCheck(t, m, outShape, builder.Float32Data(tc.float), builder.Float32Data(row))
		})
		t.Run("uint8/"+name, func(t *testing.T) {
			var row, want []byte
			for _, v := range tc.row {
				row = append(row, byte(v+128))
			}
			for _, v := range tc.uint8 {
				want = append(want, byte(v))
			}
			m := resizeModel(true, tflite.TensorTypeUINT8, in, 1, int32(tc.out), tc.ac, tc.hp)
			shapeCheck(t, m, outShape, want, row)
		})
		t.Run("int8/"+name, func(t *testing.T) {
			var row, want []byte
			for _, v := range tc.row {
				row = append(row, byte(int8(v)))
			}
			for _, v := range tc.integer {
				want = append(want, byte(int8(v)))
			}
			m := resizeModel(true, tflite.TensorTypeINT8, in, 1, int32(tc.out), tc.ac, tc.hp)
			shapeCheck(t, m, outShape, want, row)
		})
		t.Run("int16/"+name, func(t *testing.T) {
			// int16 takes the same integer kernel as int8.
			var row, want []int16
			for _, v := range tc.row {
				row = append(row, int16(v))
			}
			for _, v := range tc.integer {
				want = append(want, int16(v))
			}
			m := resizeModel(true, tflite.TensorTypeINT16, in, 1, int32(tc.out), tc.ac, tc.hp)
			shapeCheck(t, m, outShape, builder.Int16Data(want), builder.Int16Data(row))
		})
	}

	t.Run("oracle", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 8))
		sizes := [][4]int{{2, 2, 4, 4}, {4, 4, 2, 2}, {3, 5, 5, 3}, {3, 2, 7, 5}, {5, 4, 4, 6}, {1, 3, 2, 6}, {4, 4, 4, 4}}
		for _, e := range resizeBilinearElems {
			for _, sz := range sizes {
				for _, flags := range [][2]bool{{false, false}, {true, false}, {false, true}} {
					ac, hp := flags[0], flags[1]
					t.Run(fmt.Sprintf("%s/%v/ac=%v/hp=%v", e.name, sz, ac, hp), func(t *testing.T) {
						in := []int{2, sz[0], sz[1], 3}
						vals := make([]float64, shapeCount(in))
						var data []byte
						for i := range vals {
							vals[i] = float64(rng.IntN(201) - 100)
							if e.name == "float32" {
								vals[i] += 0.25
							}
							data = append(data, e.enc(vals[i]+e.offset)...)
						}
						want := resizeBilinearOracle(in, vals, sz[2], sz[3], ac, hp)
						m := resizeModel(true, e.tt, in, int32(sz[2]), int32(sz[3]), ac, hp)
						outs, shapes := shapeRun(t, m, data)
						if fmt.Sprint(shapes[0]) != fmt.Sprint([]int{2, sz[2], sz[3], 3}) {
							t.Fatalf("shape %v", shapes[0])
						}
						for i, g := range e.dec(outs[0]) {
							if d := math.Abs(g - e.offset - want[i]); d > e.tol {
								t.Fatalf("element %d: got %v, oracle %v", i, g-e.offset, want[i])
							}
						}
					})
				}
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		f := tflite.TensorTypeFLOAT32
		for _, tc := range []struct {
			name     string
			bilinear bool
			tensors  []builder.Tensor
			opts     *tflite.BuiltinOptionsT
			want     string
		}{
			{"both flags", true, []builder.Tensor{shapeAct(f, 1, 2, 2, 1), shapeI32([]int{2}, 4, 4), shapeOut(f)}, resizeOpts(true, true, true), "cannot both"},
			{"rank 3", true, []builder.Tensor{shapeAct(f, 2, 2, 1), shapeI32([]int{2}, 4, 4), shapeOut(f)}, nil, "rank 4"},
			{"rank 3 nearest", false, []builder.Tensor{shapeAct(f, 2, 2, 1), shapeI32([]int{2}, 4, 4), shapeOut(f)}, nil, "rank 4"},
			{"size type", false, []builder.Tensor{shapeAct(f, 1, 2, 2, 1), shapeI64([]int{2}, 4, 4), shapeOut(f)}, nil, "int32 vector"},
			{"size count", true, []builder.Tensor{shapeAct(f, 1, 2, 2, 1), shapeI32([]int{3}, 4, 4, 1), shapeOut(f)}, nil, "int32 vector"},
			{"zero size", true, []builder.Tensor{shapeAct(f, 1, 2, 2, 1), shapeI32([]int{2}, 0, 4), shapeOut(f)}, nil, "positive"},
			{"negative size", false, []builder.Tensor{shapeAct(f, 1, 2, 2, 1), shapeI32([]int{2}, 4, -4), shapeOut(f)}, nil, "positive"},
			{"int32 bilinear", true, []builder.Tensor{shapeAct(tflite.TensorTypeINT32, 1, 2, 2, 1), shapeI32([]int{2}, 4, 4), shapeOut(tflite.TensorTypeINT32)}, nil, "unsupported"},
			{"type mismatch", false, []builder.Tensor{shapeAct(f, 1, 2, 2, 1), shapeI32([]int{2}, 4, 4), shapeOut(tflite.TensorTypeINT8)}, nil, "must match"},
			{"empty input", false, []builder.Tensor{shapeAct(f, 1, 0, 2, 1), shapeI32([]int{2}, 4, 4), shapeOut(f)}, nil, "empty"},
			{"declared shape", true, []builder.Tensor{shapeAct(f, 1, 2, 2, 1), shapeI32([]int{2}, 4, 4), shapeAct(f, 1, 4, 3, 1)}, nil, "computed output shape"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				m := shapeModel(tc.tensors, resizeCode(tc.bilinear), 1, tc.opts, []int{0, 1}, []int{2})
				shapePrepareErr(t, m, tc.want)
			})
		}
	})
}

func TestResizeNonConstantSize(t *testing.T) {
	for _, bilinear := range []bool{true, false} {
		t.Run(fmt.Sprintf("bilinear=%v", bilinear), func(t *testing.T) {
			i8, i32 := tflite.TensorTypeINT8, tflite.TensorTypeINT32
			tensors := []builder.Tensor{shapeAct(i8, 1, 1, 2, 1), shapeAct(i32, 2), shapeAct(i8, 1, 1, 4, 1)}
			m := shapeModel(tensors, resizeCode(bilinear), 1, nil, []int{0, 1}, []int{2})
			want := []byte{0, 0, 100, 100} // nearest: sources 0, 0, 1, 1
			if bilinear {
				want = []byte{0, 50, 100, 100}
			}
			shapeCheck(t, m, []int{1, 1, 4, 1}, want, []byte{0, 100}, builder.Int32Data([]int32{1, 4}))
			shapeEvalErr(t, m, "holds [1,3]", []byte{0, 100}, builder.Int32Data([]int32{1, 3}))
			shapeNoAllocs(t, m, []byte{0, 100}, builder.Int32Data([]int32{1, 4}))
			tensors[2] = shapeAct(i8, 1, -1, 4, 1)
			shapePrepareErr(t, shapeModel(tensors, resizeCode(bilinear), 1, nil, []int{0, 1}, []int{2}), "not constant", "full shape")
		})
	}
}

func TestResizeNoAllocs(t *testing.T) {
	for _, tt := range []tflite.TensorType{tflite.TensorTypeFLOAT32, tflite.TensorTypeUINT8, tflite.TensorTypeINT8, tflite.TensorTypeINT16} {
		for _, bilinear := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/bilinear=%v", tflite.EnumNamesTensorType[tt], bilinear), func(t *testing.T) {
				m := resizeModel(bilinear, tt, []int{1, 3, 3, 2}, 6, 5, false, true)
				size := map[tflite.TensorType]int{tflite.TensorTypeFLOAT32: 4, tflite.TensorTypeINT16: 2}[tt]
				if size == 0 {
					size = 1
				}
				shapeNoAllocs(t, m, make([]byte, 18*size))
			})
		}
	}
}
