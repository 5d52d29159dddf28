package runtime

import (
	"math"
	"math/big"
)

// A port of the parts of KISS FFT v1.3.0 (Mark Borgerding) that TFLM's
// SignalRfft runs, with TFLM's patch (third_party/kissfft/kissfft.patch:
// HALF_OF in float multiplies by a float 0.5). TFLM builds it three times:
// FIXED_POINT=16 (int16 samples, Q15 twiddles, int32 products), FIXED_POINT=32
// (int32 samples, Q31 twiddles, int64 products) and float. The arithmetic is
// reproduced operation by operation, including where C truncates a wider
// intermediate into the sample type (which Go's wrapping conversions match),
// the pre-scaling of every butterfly input by 1/radix in fixed point
// (C_FIXDIV: a multiply by SAMP_MAX/radix, rounded), and the order of float
// operations (every float product is rounded to float32 before it is added,
// as the x86 build without FMA contraction does).
//
// Only forward transforms exist here: TFLM's RFFT allocates its state with
// inverse_fft = 0.

// kissCpx is kiss_fft_cpx; its layout (r, i) is TFLM's Complex<T>.
type kissCpx[T int16 | int32 | float32] struct{ r, i T }

// kissFactors is kf_factor: radix-4 stages first, then 2, then odd factors;
// what remains once a candidate exceeds the square root of the original
// length is taken whole. The result is p1, m1, p2, m2, ... with p_i*m_i =
// m_(i-1) and m0 = n.
func kissFactors(n int) []int {
	var f []int
	p := 4
	floorSqrt := math.Floor(math.Sqrt(float64(n)))
	for {
		for n%p != 0 {
			switch p {
			case 4:
				p = 2
			case 2:
				p = 3
			default:
				p += 2
			}
			if float64(p) > floorSqrt {
				p = n
			}
		}
		n /= p
		f = append(f, p, n)
		if n <= 1 {
			return f
		}
	}
}

// maxRadix is the largest radix among the factors, for the scratch of
// kf_bfly_generic.
func maxRadix(factors []int) int {
	r := 0
	for i := 0; i < len(factors); i += 2 {
		r = max(r, factors[i])
	}
	return r
}

// kissPhase is the twiddle angle of kiss_fft_alloc: -2*pi*i/nfft in double.
func kissPhase(i, n int) float64 {
	return -2 * math.Pi * float64(i) / float64(n)
}

// kissSuperPhase is the angle of kiss_fftr_alloc's split twiddles:
// -pi*((i+1)/ncfft + 0.5) in double.
func kissSuperPhase(i, ncfft int) float64 {
	return -math.Pi * (float64(i+1)/float64(ncfft) + 0.5)
}

// Twiddles are cos and sin of a double phase, quantized: to fixed point by
// floor(0.5 + SAMP_MAX*v) (KISS_FFT_COS/KISS_FFT_SIN), or to float32. TFLM's
// build takes cos and sin from glibc, which rounds correctly in nearly all
// cases; Go's math.Cos and math.Sin are within 2 ulp of it, and their last
// bits vary with the architecture (FMA contraction). So the quantized value
// is taken from math.Cos/math.Sin only where every value within a few ulp
// of it quantizes alike; otherwise (exact ties such as cos(pi/3) = 0.5,
// values near zero, rare near-halfway cases) from a correctly rounded
// cos/sin computed with math/big.

// kissTwiddleUlps is how far (in ulp) from math.Cos/math.Sin the libm
// result may be.
const kissTwiddleUlps = 4

// kissQuantize quantizes v = f(phase) computed by math, falling back to a
// correctly rounded f(phase) where the result depends on v's last bits.
func kissQuantize[R comparable](v float64, phase float64, sin bool, q func(float64) R) R {
	r := q(v)
	if math.Abs(v) < 1e-6 {
		return q(kissExactCosSin(phase, sin))
	}
	lo, hi := v, v
	for range kissTwiddleUlps {
		lo, hi = math.Nextafter(lo, math.Inf(-1)), math.Nextafter(hi, math.Inf(1))
		if q(lo) != r || q(hi) != r {
			return q(kissExactCosSin(phase, sin))
		}
	}
	return r
}

// kissExactCosSin is cos(x) (or sin(x)) correctly rounded to float64, by
// the Taylor series in 192-bit arithmetic; |x| is at most a few pi.
func kissExactCosSin(x float64, sin bool) float64 {
	const prec = 192
	bx := new(big.Float).SetPrec(prec).SetFloat64(x)
	x2 := new(big.Float).SetPrec(prec).Mul(bx, bx)
	term := new(big.Float).SetPrec(prec).SetInt64(1)
	k := int64(0) // term = ±x^k/k!
	if sin {
		term.Set(bx)
		k = 1
	}
	sum := new(big.Float).SetPrec(prec).Set(term)
	div := new(big.Float).SetPrec(prec)
	for term.Sign() != 0 && term.MantExp(nil)-sum.MantExp(nil) > -prec {
		term.Mul(term, x2)
		term.Quo(term, div.SetInt64((k+1)*(k+2)))
		term.Neg(term)
		sum.Add(sum, term)
		k += 2
	}
	f, _ := sum.Float64()
	return f
}

// kissFixedTwiddle is a twiddle in fixed point.
func kissFixedTwiddle[T int16 | int32](sampMax int64, phase float64) kissCpx[T] {
	q := func(v float64) T { return T(math.Floor(0.5 + float64(float64(sampMax)*v))) }
	return kissCpx[T]{kissQuantize(math.Cos(phase), phase, false, q), kissQuantize(math.Sin(phase), phase, true, q)}
}

// kissFloatTwiddle is a twiddle in float32: (float)cos(phase).
func kissFloatTwiddle(phase float64) kissCpx[float32] {
	q := func(v float64) float32 { return float32(v) }
	return kissCpx[float32]{kissQuantize(math.Cos(phase), phase, false, q), kissQuantize(math.Sin(phase), phase, true, q)}
}

// ---- Fixed point (FIXED_POINT=16 and 32) ----

// kissFixed is a complex FFT state (kiss_fft_state) in fixed point.
type kissFixed[T int16 | int32] struct {
	n        int
	factors  []int
	tw       []kissCpx[T]
	scratch  []kissCpx[T] // kf_bfly_generic's temporary
	fracBits uint         // FRACBITS: 15 or 31
	sampMax  int64        // SAMP_MAX: 32767 or 2147483647
	// wideHalf: HALF_OF(a+b) in kiss_fftr adds in C int. For int16 samples
	// that sum does not wrap before the shift; for int32 it wraps.
	wideHalf bool
}

func newKissFixed[T int16 | int32](n int) *kissFixed[T] {
	s := &kissFixed[T]{n: n, factors: kissFactors(n)}
	var zero T
	switch any(zero).(type) {
	case int16:
		s.fracBits, s.sampMax, s.wideHalf = 15, math.MaxInt16, true
	default:
		s.fracBits, s.sampMax = 31, math.MaxInt32
	}
	s.tw = make([]kissCpx[T], n)
	for i := range s.tw {
		s.tw[i] = kissFixedTwiddle[T](s.sampMax, kissPhase(i, n))
	}
	s.scratch = make([]kissCpx[T], maxRadix(s.factors))
	return s
}

// sround rounds a product with FRACBITS fraction bits back to a sample.
func (s *kissFixed[T]) sround(x int64) T {
	return T((x + 1<<(s.fracBits-1)) >> s.fracBits)
}

// mul is C_MUL.
func (s *kissFixed[T]) mul(a, b kissCpx[T]) kissCpx[T] {
	return kissCpx[T]{
		s.sround(int64(a.r)*int64(b.r) - int64(a.i)*int64(b.i)),
		s.sround(int64(a.r)*int64(b.i) + int64(a.i)*int64(b.r)),
	}
}

// scale is S_MUL / C_MULBYSCALAR's per-component product.
func (s *kissFixed[T]) scale(a, b T) T { return s.sround(int64(a) * int64(b)) }

// fixdiv is C_FIXDIV: c *= 1/div as a multiply by SAMP_MAX/div.
func (s *kissFixed[T]) fixdiv(c *kissCpx[T], div int) {
	d := s.sampMax / int64(div)
	c.r = s.sround(int64(c.r) * d)
	c.i = s.sround(int64(c.i) * d)
}

// transform is kiss_fft (out of place): in and out hold n values.
func (s *kissFixed[T]) transform(in, out []kissCpx[T]) {
	s.work(out, in, 1, s.factors)
}

// work is kf_work: the decimation-in-time recursion.
func (s *kissFixed[T]) work(out, in []kissCpx[T], fstride int, factors []int) {
	p, m := factors[0], factors[1]
	if m == 1 {
		for j := range p {
			out[j] = in[j*fstride]
		}
	} else {
		for j := range p {
			s.work(out[j*m:(j+1)*m], in[j*fstride:], fstride*p, factors[2:])
		}
	}
	switch p {
	case 2:
		s.bfly2(out, fstride, m)
	case 3:
		s.bfly3(out, fstride, m)
	case 4:
		s.bfly4(out, fstride, m)
	case 5:
		s.bfly5(out, fstride, m)
	default:
		s.bflyGeneric(out, fstride, m, p)
	}
}

func (s *kissFixed[T]) bfly2(f []kissCpx[T], fstride, m int) {
	for k := range m {
		a, b := &f[k], &f[k+m]
		s.fixdiv(a, 2)
		s.fixdiv(b, 2)
		t := s.mul(*b, s.tw[k*fstride])
		b.r, b.i = a.r-t.r, a.i-t.i
		a.r += t.r
		a.i += t.i
	}
}

func (s *kissFixed[T]) bfly3(f []kissCpx[T], fstride, m int) {
	epi3 := s.tw[fstride*m]
	for k := range m {
		f0, f1, f2 := &f[k], &f[k+m], &f[k+2*m]
		s.fixdiv(f0, 3)
		s.fixdiv(f1, 3)
		s.fixdiv(f2, 3)
		s1 := s.mul(*f1, s.tw[k*fstride])
		s2 := s.mul(*f2, s.tw[2*k*fstride])
		s3 := kissCpx[T]{s1.r + s2.r, s1.i + s2.i}
		s0 := kissCpx[T]{s1.r - s2.r, s1.i - s2.i}
		f1.r = f0.r - s3.r>>1
		f1.i = f0.i - s3.i>>1
		s0.r = s.scale(s0.r, epi3.i)
		s0.i = s.scale(s0.i, epi3.i)
		f0.r += s3.r
		f0.i += s3.i
		f2.r = f1.r + s0.i
		f2.i = f1.i - s0.r
		f1.r -= s0.i
		f1.i += s0.r
	}
}

func (s *kissFixed[T]) bfly4(f []kissCpx[T], fstride, m int) {
	for k := range m {
		f0, f1, f2, f3 := &f[k], &f[k+m], &f[k+2*m], &f[k+3*m]
		s.fixdiv(f0, 4)
		s.fixdiv(f1, 4)
		s.fixdiv(f2, 4)
		s.fixdiv(f3, 4)
		s0 := s.mul(*f1, s.tw[k*fstride])
		s1 := s.mul(*f2, s.tw[2*k*fstride])
		s2 := s.mul(*f3, s.tw[3*k*fstride])
		s5 := kissCpx[T]{f0.r - s1.r, f0.i - s1.i}
		f0.r += s1.r
		f0.i += s1.i
		s3 := kissCpx[T]{s0.r + s2.r, s0.i + s2.i}
		s4 := kissCpx[T]{s0.r - s2.r, s0.i - s2.i}
		f2.r, f2.i = f0.r-s3.r, f0.i-s3.i
		f0.r += s3.r
		f0.i += s3.i
		f1.r, f1.i = s5.r+s4.i, s5.i-s4.r
		f3.r, f3.i = s5.r-s4.i, s5.i+s4.r
	}
}

func (s *kissFixed[T]) bfly5(f []kissCpx[T], fstride, m int) {
	ya, yb := s.tw[fstride*m], s.tw[2*fstride*m]
	for u := range m {
		f0, f1, f2, f3, f4 := &f[u], &f[u+m], &f[u+2*m], &f[u+3*m], &f[u+4*m]
		s.fixdiv(f0, 5)
		s.fixdiv(f1, 5)
		s.fixdiv(f2, 5)
		s.fixdiv(f3, 5)
		s.fixdiv(f4, 5)
		s0 := *f0
		s1 := s.mul(*f1, s.tw[u*fstride])
		s2 := s.mul(*f2, s.tw[2*u*fstride])
		s3 := s.mul(*f3, s.tw[3*u*fstride])
		s4 := s.mul(*f4, s.tw[4*u*fstride])
		s7 := kissCpx[T]{s1.r + s4.r, s1.i + s4.i}
		s10 := kissCpx[T]{s1.r - s4.r, s1.i - s4.i}
		s8 := kissCpx[T]{s2.r + s3.r, s2.i + s3.i}
		s9 := kissCpx[T]{s2.r - s3.r, s2.i - s3.i}
		f0.r += s7.r + s8.r
		f0.i += s7.i + s8.i
		s5 := kissCpx[T]{
			s0.r + s.scale(s7.r, ya.r) + s.scale(s8.r, yb.r),
			s0.i + s.scale(s7.i, ya.r) + s.scale(s8.i, yb.r),
		}
		s6 := kissCpx[T]{
			s.scale(s10.i, ya.i) + s.scale(s9.i, yb.i),
			-s.scale(s10.r, ya.i) - s.scale(s9.r, yb.i),
		}
		f1.r, f1.i = s5.r-s6.r, s5.i-s6.i
		f4.r, f4.i = s5.r+s6.r, s5.i+s6.i
		s11 := kissCpx[T]{
			s0.r + s.scale(s7.r, yb.r) + s.scale(s8.r, ya.r),
			s0.i + s.scale(s7.i, yb.r) + s.scale(s8.i, ya.r),
		}
		s12 := kissCpx[T]{
			-s.scale(s10.i, yb.i) + s.scale(s9.i, ya.i),
			s.scale(s10.r, yb.i) - s.scale(s9.r, ya.i),
		}
		f2.r, f2.i = s11.r+s12.r, s11.i+s12.i
		f3.r, f3.i = s11.r-s12.r, s11.i-s12.i
	}
}

func (s *kissFixed[T]) bflyGeneric(f []kissCpx[T], fstride, m, p int) {
	scratch := s.scratch[:p]
	for u := range m {
		for q1, k := 0, u; q1 < p; q1, k = q1+1, k+m {
			scratch[q1] = f[k]
			s.fixdiv(&scratch[q1], p)
		}
		for q1, k := 0, u; q1 < p; q1, k = q1+1, k+m {
			twidx := 0
			f[k] = scratch[0]
			for q := 1; q < p; q++ {
				twidx += fstride * k
				if twidx >= s.n {
					twidx -= s.n
				}
				t := s.mul(scratch[q], s.tw[twidx])
				f[k].r += t.r
				f[k].i += t.i
			}
		}
	}
}

// kissFixedR is a real-input FFT (kiss_fftr_state) in fixed point.
type kissFixedR[T int16 | int32] struct {
	sub   *kissFixed[T] // complex FFT of half the length
	tmp   []kissCpx[T]
	super []kissCpx[T]
}

// newKissFixedR prepares a real FFT of nfft (even, at least 2) samples.
func newKissFixedR[T int16 | int32](nfft int) *kissFixedR[T] {
	ncfft := nfft / 2
	s := &kissFixedR[T]{sub: newKissFixed[T](ncfft), tmp: make([]kissCpx[T], ncfft), super: make([]kissCpx[T], ncfft/2)}
	for i := range s.super {
		s.super[i] = kissFixedTwiddle[T](s.sub.sampMax, kissSuperPhase(i, ncfft))
	}
	return s
}

// halfSum is HALF_OF(a + b): the sum in C int, halved by an arithmetic
// shift, then truncated to a sample.
func (s *kissFixedR[T]) halfSum(a, b T) T {
	if s.sub.wideHalf {
		return T((int32(a) + int32(b)) >> 1)
	}
	return (a + b) >> 1
}

// halfDiff is HALF_OF(a - b).
func (s *kissFixedR[T]) halfDiff(a, b T) T {
	if s.sub.wideHalf {
		return T((int32(a) - int32(b)) >> 1)
	}
	return (a - b) >> 1
}

// transform is kiss_fftr: in holds the nfft real samples as nfft/2 (even,
// odd) pairs, out receives nfft/2+1 bins.
func (s *kissFixedR[T]) transform(in, out []kissCpx[T]) {
	sub := s.sub
	ncfft := sub.n
	sub.transform(in, s.tmp)
	tdc := s.tmp[0]
	sub.fixdiv(&tdc, 2)
	out[0].r = tdc.r + tdc.i
	out[ncfft].r = tdc.r - tdc.i
	out[ncfft].i, out[0].i = 0, 0
	for k := 1; k <= ncfft/2; k++ {
		fpk := s.tmp[k]
		fpnk := kissCpx[T]{s.tmp[ncfft-k].r, -s.tmp[ncfft-k].i}
		sub.fixdiv(&fpk, 2)
		sub.fixdiv(&fpnk, 2)
		f1k := kissCpx[T]{fpk.r + fpnk.r, fpk.i + fpnk.i}
		f2k := kissCpx[T]{fpk.r - fpnk.r, fpk.i - fpnk.i}
		tw := sub.mul(f2k, s.super[k-1])
		out[k].r = s.halfSum(f1k.r, tw.r)
		out[k].i = s.halfSum(f1k.i, tw.i)
		out[ncfft-k].r = s.halfDiff(f1k.r, tw.r)
		out[ncfft-k].i = s.halfDiff(tw.i, f1k.i)
	}
}

// ---- Float ----

// kissFloat is a complex FFT state in float32.
type kissFloat struct {
	n       int
	factors []int
	tw      []kissCpx[float32]
	scratch []kissCpx[float32]
}

func newKissFloat(n int) *kissFloat {
	s := &kissFloat{n: n, factors: kissFactors(n), tw: make([]kissCpx[float32], n)}
	for i := range s.tw {
		s.tw[i] = kissFloatTwiddle(kissPhase(i, n))
	}
	s.scratch = make([]kissCpx[float32], maxRadix(s.factors))
	return s
}

// kissMulF is C_MUL in float, each product rounded before the sum.
func kissMulF(a, b kissCpx[float32]) kissCpx[float32] {
	return kissCpx[float32]{
		float32(a.r*b.r) - float32(a.i*b.i),
		float32(a.r*b.i) + float32(a.i*b.r),
	}
}

func (s *kissFloat) transform(in, out []kissCpx[float32]) {
	s.work(out, in, 1, s.factors)
}

func (s *kissFloat) work(out, in []kissCpx[float32], fstride int, factors []int) {
	p, m := factors[0], factors[1]
	if m == 1 {
		for j := range p {
			out[j] = in[j*fstride]
		}
	} else {
		for j := range p {
			s.work(out[j*m:(j+1)*m], in[j*fstride:], fstride*p, factors[2:])
		}
	}
	switch p {
	case 2:
		s.bfly2(out, fstride, m)
	case 3:
		s.bfly3(out, fstride, m)
	case 4:
		s.bfly4(out, fstride, m)
	case 5:
		s.bfly5(out, fstride, m)
	default:
		s.bflyGeneric(out, fstride, m, p)
	}
}

func (s *kissFloat) bfly2(f []kissCpx[float32], fstride, m int) {
	for k := range m {
		a, b := &f[k], &f[k+m]
		t := kissMulF(*b, s.tw[k*fstride])
		b.r, b.i = a.r-t.r, a.i-t.i
		a.r += t.r
		a.i += t.i
	}
}

func (s *kissFloat) bfly3(f []kissCpx[float32], fstride, m int) {
	epi3 := s.tw[fstride*m]
	for k := range m {
		f0, f1, f2 := &f[k], &f[k+m], &f[k+2*m]
		s1 := kissMulF(*f1, s.tw[k*fstride])
		s2 := kissMulF(*f2, s.tw[2*k*fstride])
		s3 := kissCpx[float32]{s1.r + s2.r, s1.i + s2.i}
		s0 := kissCpx[float32]{s1.r - s2.r, s1.i - s2.i}
		f1.r = f0.r - float32(s3.r*0.5)
		f1.i = f0.i - float32(s3.i*0.5)
		s0.r *= epi3.i
		s0.i *= epi3.i
		f0.r += s3.r
		f0.i += s3.i
		f2.r = f1.r + s0.i
		f2.i = f1.i - s0.r
		f1.r -= s0.i
		f1.i += s0.r
	}
}

func (s *kissFloat) bfly4(f []kissCpx[float32], fstride, m int) {
	for k := range m {
		f0, f1, f2, f3 := &f[k], &f[k+m], &f[k+2*m], &f[k+3*m]
		s0 := kissMulF(*f1, s.tw[k*fstride])
		s1 := kissMulF(*f2, s.tw[2*k*fstride])
		s2 := kissMulF(*f3, s.tw[3*k*fstride])
		s5 := kissCpx[float32]{f0.r - s1.r, f0.i - s1.i}
		f0.r += s1.r
		f0.i += s1.i
		s3 := kissCpx[float32]{s0.r + s2.r, s0.i + s2.i}
		s4 := kissCpx[float32]{s0.r - s2.r, s0.i - s2.i}
		f2.r, f2.i = f0.r-s3.r, f0.i-s3.i
		f0.r += s3.r
		f0.i += s3.i
		f1.r, f1.i = s5.r+s4.i, s5.i-s4.r
		f3.r, f3.i = s5.r-s4.i, s5.i+s4.r
	}
}

func (s *kissFloat) bfly5(f []kissCpx[float32], fstride, m int) {
	ya, yb := s.tw[fstride*m], s.tw[2*fstride*m]
	for u := range m {
		f0, f1, f2, f3, f4 := &f[u], &f[u+m], &f[u+2*m], &f[u+3*m], &f[u+4*m]
		s0 := *f0
		s1 := kissMulF(*f1, s.tw[u*fstride])
		s2 := kissMulF(*f2, s.tw[2*u*fstride])
		s3 := kissMulF(*f3, s.tw[3*u*fstride])
		s4 := kissMulF(*f4, s.tw[4*u*fstride])
		s7 := kissCpx[float32]{s1.r + s4.r, s1.i + s4.i}
		s10 := kissCpx[float32]{s1.r - s4.r, s1.i - s4.i}
		s8 := kissCpx[float32]{s2.r + s3.r, s2.i + s3.i}
		s9 := kissCpx[float32]{s2.r - s3.r, s2.i - s3.i}
		f0.r += s7.r + s8.r
		f0.i += s7.i + s8.i
		s5 := kissCpx[float32]{
			s0.r + float32(s7.r*ya.r) + float32(s8.r*yb.r),
			s0.i + float32(s7.i*ya.r) + float32(s8.i*yb.r),
		}
		s6 := kissCpx[float32]{
			float32(s10.i*ya.i) + float32(s9.i*yb.i),
			-float32(s10.r*ya.i) - float32(s9.r*yb.i),
		}
		f1.r, f1.i = s5.r-s6.r, s5.i-s6.i
		f4.r, f4.i = s5.r+s6.r, s5.i+s6.i
		s11 := kissCpx[float32]{
			s0.r + float32(s7.r*yb.r) + float32(s8.r*ya.r),
			s0.i + float32(s7.i*yb.r) + float32(s8.i*ya.r),
		}
		s12 := kissCpx[float32]{
			-float32(s10.i*yb.i) + float32(s9.i*ya.i),
			float32(s10.r*yb.i) - float32(s9.r*ya.i),
		}
		f2.r, f2.i = s11.r+s12.r, s11.i+s12.i
		f3.r, f3.i = s11.r-s12.r, s11.i-s12.i
	}
}

func (s *kissFloat) bflyGeneric(f []kissCpx[float32], fstride, m, p int) {
	scratch := s.scratch[:p]
	for u := range m {
		for q1, k := 0, u; q1 < p; q1, k = q1+1, k+m {
			scratch[q1] = f[k]
		}
		for q1, k := 0, u; q1 < p; q1, k = q1+1, k+m {
			twidx := 0
			f[k] = scratch[0]
			for q := 1; q < p; q++ {
				twidx += fstride * k
				if twidx >= s.n {
					twidx -= s.n
				}
				t := kissMulF(scratch[q], s.tw[twidx])
				f[k].r += t.r
				f[k].i += t.i
			}
		}
	}
}

// kissFloatR is a real-input FFT in float32.
type kissFloatR struct {
	sub   *kissFloat
	tmp   []kissCpx[float32]
	super []kissCpx[float32]
}

func newKissFloatR(nfft int) *kissFloatR {
	ncfft := nfft / 2
	s := &kissFloatR{sub: newKissFloat(ncfft), tmp: make([]kissCpx[float32], ncfft), super: make([]kissCpx[float32], ncfft/2)}
	for i := range s.super {
		s.super[i] = kissFloatTwiddle(kissSuperPhase(i, ncfft))
	}
	return s
}

func (s *kissFloatR) transform(in, out []kissCpx[float32]) {
	ncfft := s.sub.n
	s.sub.transform(in, s.tmp)
	tdc := s.tmp[0]
	out[0].r = tdc.r + tdc.i
	out[ncfft].r = tdc.r - tdc.i
	out[ncfft].i, out[0].i = 0, 0
	for k := 1; k <= ncfft/2; k++ {
		fpk := s.tmp[k]
		fpnk := kissCpx[float32]{s.tmp[ncfft-k].r, -s.tmp[ncfft-k].i}
		f1k := kissCpx[float32]{fpk.r + fpnk.r, fpk.i + fpnk.i}
		f2k := kissCpx[float32]{fpk.r - fpnk.r, fpk.i - fpnk.i}
		tw := kissMulF(f2k, s.super[k-1])
		out[k].r = float32(f1k.r+tw.r) * 0.5
		out[k].i = float32(f1k.i+tw.i) * 0.5
		out[ncfft-k].r = float32(f1k.r-tw.r) * 0.5
		out[ncfft-k].i = float32(tw.i-f1k.i) * 0.5
	}
}
