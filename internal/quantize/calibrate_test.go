package quantize

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func TestChooseParams(t *testing.T) {
	cases := []struct {
		rmin, rmax float64
		want       Params
	}{
		// Values worked out from TensorFlow Lite's ChooseQuantizationParams.
		{0, 1, Params{float32(1.0 / 255), -128}},       // ReLU-like: zero at qmin
		{-1, 1, Params{float32(2.0 / 255), -1}},        // -0.5 rounds away from zero
		{-2, 0, Params{float32(2.0 / 255), 127}},       // zero at qmax
		{0.5, 3, Params{float32(3.0 / 255), -128}},     // widened to contain 0
		{-10, -4, Params{float32(10.0 / 255), 127}},    // widened to contain 0
		{-0.25, 0.75, Params{float32(1.0 / 255), -64}}, // 0.25·255 = 63.75 → -128 + 63.75 = -64.25 → -64
		{0, 0, Params{1, 0}},                           // a point: scale 1, never 0
		{3, -1, Params{float32(4.0 / 255), -64}},       // bounds in either order
		{-0.0039, 1000, Params{float32(1000.0039 / 255), -128}},
	}
	for _, c := range cases {
		got, err := ChooseParamsInt8(c.rmin, c.rmax)
		if err != nil {
			t.Fatalf("[%g, %g]: %v", c.rmin, c.rmax, err)
		}
		if math.Abs(float64(got.Scale-c.want.Scale)) > 1e-7*float64(c.want.Scale) || got.ZeroPoint != c.want.ZeroPoint {
			t.Errorf("[%g, %g]: got %+v, want %+v", c.rmin, c.rmax, got, c.want)
		}
	}
	// The range's ends map to the ends of the integer range (within one
	// step), and 0 is exact.
	rng := rand.New(rand.NewPCG(1, 1))
	for range 1000 {
		lo, hi := -rng.Float64()*10, rng.Float64()*10
		p, err := ChooseParamsInt8(lo, hi)
		if err != nil {
			t.Fatal(err)
		}
		if q := QuantizeValue(0, p, -128, 127); q != p.ZeroPoint {
			t.Fatalf("0 quantizes to %d, zero point %d", q, p.ZeroPoint)
		}
		for _, x := range []float64{lo, hi} {
			q := QuantizeValue(float32(x), p, -128, 127)
			back := float64(p.Scale) * float64(q-p.ZeroPoint)
			if math.Abs(back-x) > float64(p.Scale)*1.01 {
				t.Fatalf("[%g, %g] %+v: %g comes back as %g", lo, hi, p, x, back)
			}
		}
	}
	for _, bad := range [][2]float64{{math.NaN(), 1}, {0, math.Inf(1)}} {
		if _, err := ChooseParamsInt8(bad[0], bad[1]); err == nil {
			t.Errorf("range %v accepted", bad)
		}
	}
	if _, err := ChooseParams(0, 1, 5, 5); err == nil {
		t.Error("empty integer range accepted")
	}
}

func TestQuantizeValue(t *testing.T) {
	p := Params{Scale: 0.5, ZeroPoint: 3}
	for _, c := range []struct {
		x    float32
		want int32
	}{
		{0, 3}, {0.25, 4}, {-0.25, 2}, {0.2, 3}, {100, 127}, {-100, -128}, {float32(math.NaN()), 3},
	} {
		if got := QuantizeValue(c.x, p, -128, 127); got != c.want {
			t.Errorf("QuantizeValue(%g) = %d, want %d", c.x, got, c.want)
		}
	}
	got := DequantizeInt8([]int8{3, 5, -128}, p, nil)
	if got[0] != 0 || got[1] != 1 || got[2] != -65.5 {
		t.Errorf("DequantizeInt8 = %v", got)
	}
}

func TestQuantizeSymmetricPerChannel(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	// Fully connected [outputs, inputs] along 0 and depthwise [1, kh, kw,
	// channels] along 3.
	for _, c := range []struct {
		shape []int
		axis  int
	}{{[]int{5, 40}, 0}, {[]int{1, 3, 2, 4}, 3}, {[]int{4, 3, 3, 2}, 0}} {
		n := 1
		for _, d := range c.shape {
			n *= d
		}
		w := make([]float32, n)
		for i := range w {
			w[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(3)-1)))
		}
		channels := c.shape[c.axis]
		inner := n / channels
		for _, d := range c.shape[:c.axis] {
			inner /= d
		}
		channelOf := func(i int) int { return (i / inner) % channels }
		// One channel all zeros.
		for i := range w {
			if channelOf(i) == channels-1 {
				w[i] = 0
			}
		}
		q, err := QuantizeSymmetricPerChannel(w, c.shape, c.axis)
		if err != nil {
			t.Fatal(err)
		}
		if len(q.Scales) != channels || q.Axis != c.axis {
			t.Fatalf("%v: %d scales along %d", c.shape, len(q.Scales), q.Axis)
		}
		maxAbs := make([]float64, channels)
		hitMax := make([]bool, channels)
		for i, v := range w {
			maxAbs[channelOf(i)] = math.Max(maxAbs[channelOf(i)], math.Abs(float64(v)))
		}
		deq := q.Dequantize(c.shape)
		for i, v := range w {
			ch := channelOf(i)
			s := q.Scales[ch]
			if q.Values[i] == -128 {
				t.Fatalf("value -128 outside the narrow range [-127, 127]")
			}
			if math.Abs(float64(deq[i]-v)) > float64(s)/2*1.0001 {
				t.Fatalf("%v weight %d: %g comes back as %g (scale %g)", c.shape, i, v, deq[i], s)
			}
			if q.Values[i] == 127 || q.Values[i] == -127 {
				hitMax[ch] = true
			}
		}
		for ch := range channels {
			want := float32(maxAbs[ch] / 127)
			if maxAbs[ch] == 0 {
				want = 1
			} else if !hitMax[ch] {
				t.Errorf("%v channel %d: its largest weight is not ±127", c.shape, ch)
			}
			if q.Scales[ch] != want {
				t.Errorf("%v channel %d: scale %g, want max/127 = %g", c.shape, ch, q.Scales[ch], want)
			}
		}
	}
	if _, err := QuantizeSymmetricPerChannel([]float32{1, 2}, []int{3}, 0); err == nil {
		t.Error("size mismatch accepted")
	}
	if _, err := QuantizeSymmetricPerChannel([]float32{1, 2}, []int{2}, 1); err == nil {
		t.Error("axis out of range accepted")
	}
	if _, err := QuantizeSymmetricPerChannel([]float32{1, float32(math.NaN())}, []int{2}, 0); err == nil {
		t.Error("NaN weight accepted")
	}
}

func TestQuantizeBias(t *testing.T) {
	in := float32(0.0841869861)
	ws := []float32{0.000478705071, 0.002, 0.01}
	b := []float32{0.5, -1.25, 3}
	q, scales, err := QuantizeBias(b, in, ws)
	if err != nil {
		t.Fatal(err)
	}
	for c := range b {
		if scales[c] != in*ws[c] {
			t.Errorf("channel %d: bias scale %g, want input × weight scale %g", c, scales[c], in*ws[c])
		}
		if want := int32(math.Round(float64(b[c]) / float64(scales[c]))); q[c] != want {
			t.Errorf("channel %d: %d, want %d", c, q[c], want)
		}
		if math.Abs(float64(q[c])*float64(scales[c])-float64(b[c])) > float64(scales[c])/2 {
			t.Errorf("channel %d: does not round-trip", c)
		}
	}
	// A per-tensor weight scale serves every channel.
	if _, s, err := QuantizeBias(b, in, ws[:1]); err != nil || s[2] != in*ws[0] {
		t.Errorf("per-tensor weight scale: %v %v", s, err)
	}
	if _, _, err := QuantizeBias([]float32{1e30}, 1e-6, []float32{1e-6}); !errors.Is(err, ErrBiasOverflow) {
		t.Errorf("overflow: %v", err)
	}
	if _, _, err := QuantizeBias(b, in, ws[:2]); err == nil {
		t.Error("mismatched scales accepted")
	}
	if _, _, err := QuantizeBias(b, 0, ws); err == nil {
		t.Error("zero input scale accepted")
	}
}

func TestRangeObserver(t *testing.T) {
	var r RangeObserver
	if _, err := r.ParamsInt8(); err == nil {
		t.Error("no values: no error")
	}
	r.Observe(0.5, 2, 1)
	r.Observe(0.25)
	if r.Min != 0.25 || r.Max != 2 || r.N != 4 {
		t.Fatalf("%+v", r)
	}
	p, err := r.ParamsInt8()
	if err != nil || p.ZeroPoint != -128 || p.Scale != float32(2.0/255) {
		t.Fatalf("%+v %v", p, err)
	}
}
