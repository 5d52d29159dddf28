package runtime

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/edged/edged/internal/runtime/flexbuffers"
	"github.com/edged/edged/internal/runtime/tflite"
)

// TensorFlow Lite Micro's Signal library (signal/micro/kernels): custom
// operators of the audio front end that micro_speech's
// audio_preprocessor_int8.tflite is built of. This file holds SignalWindow and
// the helpers every Signal kernel shares: reading the FlexBuffers options map
// and checking tensors.
//
// TFLM reads the options map by position (its values sorted by key name);
// edged reads them by key, which gives the same values for every map the
// Signal ops' Python wrappers write and a clear error for a missing key.

// signalOptions returns the operator's options map.
func signalOptions(c *PrepareContext) (flexbuffers.Map, error) {
	b := c.CustomOptions()
	if len(b) == 0 {
		return flexbuffers.Map{}, fmt.Errorf("custom options are missing (want a FlexBuffers map)")
	}
	root, err := flexbuffers.Root(b)
	if err != nil {
		return flexbuffers.Map{}, fmt.Errorf("custom options: %w", err)
	}
	m, err := root.Map()
	if err != nil {
		return flexbuffers.Map{}, fmt.Errorf("custom options: %w", err)
	}
	return m, nil
}

// signalIntOption reads an integer option, which must lie in [lo, hi].
func signalIntOption(m flexbuffers.Map, key string, lo, hi int64) (int64, error) {
	v, ok, err := m.Get(key)
	if err != nil {
		return 0, fmt.Errorf("option %q: %w", key, err)
	}
	if !ok {
		return 0, fmt.Errorf("option %q is missing", key)
	}
	switch v.Type() {
	case flexbuffers.TypeInt, flexbuffers.TypeUint, flexbuffers.TypeIndirectInt, flexbuffers.TypeIndirectUint:
	default:
		return 0, fmt.Errorf("option %q has FlexBuffers type %d, want an integer", key, v.Type())
	}
	x, err := v.Int()
	if err != nil {
		return 0, fmt.Errorf("option %q: %w", key, err)
	}
	if (v.Type() == flexbuffers.TypeUint || v.Type() == flexbuffers.TypeIndirectUint) && x < 0 {
		return 0, fmt.Errorf("option %q is %d, want %d to %d", key, uint64(x), lo, hi)
	}
	if x < lo || x > hi {
		return 0, fmt.Errorf("option %q is %d, want %d to %d", key, x, lo, hi)
	}
	return x, nil
}

// signalBoolOption reads a boolean option (a FlexBuffers bool, or an
// integer 0 or 1).
func signalBoolOption(m flexbuffers.Map, key string) (bool, error) {
	v, ok, err := m.Get(key)
	if err != nil {
		return false, fmt.Errorf("option %q: %w", key, err)
	}
	if !ok {
		return false, fmt.Errorf("option %q is missing", key)
	}
	if v.Type() != flexbuffers.TypeBool {
		x, err := signalIntOption(m, key, 0, 1)
		return x != 0, err
	}
	b, err := v.Bool()
	if err != nil {
		return false, fmt.Errorf("option %q: %w", key, err)
	}
	return b, nil
}

// signalCheck checks a tensor's type and rank (rank < 0: any rank of at
// least 1).
func signalCheck(what string, t *Tensor, typ DType, rank int) error {
	if t == nil {
		return fmt.Errorf("%s is missing", what)
	}
	if t.Type != typ {
		return UnsupportedTypes(what, t.Type)
	}
	switch {
	case rank < 0 && len(t.Shape) < 1:
		return fmt.Errorf("%s %s must have rank 1 or more", what, t)
	case rank >= 0 && len(t.Shape) != rank:
		return fmt.Errorf("%s %s must have rank %d", what, t, rank)
	}
	return nil
}

// signalMSB32 is TFLM's MostSignificantBit32 as its GCC/Clang build
// computes it: the 1-based index of the highest set bit, and 32 (not 0) for
// zero.
func signalMSB32(x uint32) uint32 {
	if x == 0 {
		return 32
	}
	return uint32(bits.Len32(x))
}

// signalMSB64 is MostSignificantBit64 (64 for zero).
func signalMSB64(x uint64) uint32 {
	if x == 0 {
		return 64
	}
	return uint32(bits.Len64(x))
}

// SignalWindow: out = saturate_int16((x * w) >> shift), the weights applied
// to every consecutive run of len(w) input elements.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorCUSTOM, Custom: "SignalWindow", MaxVersion: 1, New: func() Kernel { return &signalWindow{} }})
}

type signalWindow struct {
	input, weights, output *Tensor
	shift                  uint
}

func (k *signalWindow) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(2, 2, 1); err != nil {
		return err
	}
	m, err := signalOptions(c)
	if err != nil {
		return err
	}
	shift, err := signalIntOption(m, "shift", 0, 31)
	if err != nil {
		return err
	}
	k.shift = uint(shift)
	k.input, k.weights, k.output = c.Input(0), c.Input(1), c.Output(0)
	if err := signalCheck("input", k.input, Int16, -1); err != nil {
		return err
	}
	if err := signalCheck("weights", k.weights, Int16, 1); err != nil {
		return err
	}
	if err := signalCheck("output", k.output, Int16, len(k.input.Shape)); err != nil {
		return err
	}
	n := k.weights.Dim(0)
	if n == 0 || k.input.NumElements()%n != 0 {
		return fmt.Errorf("input %s is not a whole number of windows of the %d weights %s", k.input, n, k.weights)
	}
	return c.SetOutputShape(0, k.input.Shape)
}

func (k *signalWindow) Eval() error {
	in, w, out := k.input.Int16s(), k.weights.Int16s(), k.output.Int16s()
	for i := 0; i+len(w) <= len(in); i += len(w) {
		signalApplyWindow(in[i:i+len(w)], w, k.shift, out[i:i+len(w)])
	}
	return nil
}

// signalApplyWindow is the reference kernel (tflm_signal::ApplyWindow).
func signalApplyWindow(in, w []int16, shift uint, out []int16) {
	for i, x := range in {
		raw := (int32(x) * int32(w[i])) >> shift
		switch {
		case raw < math.MinInt16:
			out[i] = math.MinInt16
		case raw > math.MaxInt16:
			out[i] = math.MaxInt16
		default:
			out[i] = int16(raw)
		}
	}
}
