package runtime

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Defaults of SelectOptions.
const (
	// DefaultTolerance is how many quantization steps a delegate's outputs
	// may differ from the pure-Go kernels' and still agree: Arm NN
	// requantizes in floating point where TFLM uses fixed point, so off-by-
	// one (and, through a deep network, a few) steps are expected.
	DefaultTolerance = 3
	// DefaultFloatTolerance is the largest absolute difference of float32
	// outputs (SSD boxes and scores, dequantized results) that agrees.
	DefaultFloatTolerance = 0.02
	// DefaultTrials is how many timed invocations auto makes per backend.
	DefaultTrials = 5
	// DefaultBudget bounds the time auto spends timing one backend: a slow
	// backend on a large model stops after this, having run at least once.
	DefaultBudget = 2 * time.Second
)

// SelectOptions configure OpenBackend.
type SelectOptions struct {
	// Backend is auto (or ""), int8 or armnn.
	Backend string
	// Tolerance in quantization steps (integer outputs); 0 means
	// DefaultTolerance, negative means exact.
	Tolerance int
	// FloatTolerance for float32 outputs; 0 means DefaultFloatTolerance.
	FloatTolerance float64
	// Trials timed invocations per backend (DefaultTrials) within Budget
	// (DefaultBudget) each.
	Trials int
	Budget time.Duration
	// Seed of the random inputs auto measures with.
	Seed uint64
	// Interpreter configures the pure-Go interpreter.
	Interpreter *Options
}

// Selection is the backend OpenBackend chose and why.
type Selection struct {
	// Backend runs the model; the caller closes it.
	Backend Backend
	// Requested is what was asked for: auto, int8 or armnn.
	Requested string
	// Delegate is the delegate's backend name as it ran ("armnn/CpuRef")
	// when one took the model.
	Delegate string
	// Fallback says why the delegate does not run the model, when it
	// could not take it.
	Fallback string
	// Measured says auto timed and compared both backends: Trials timed
	// invocations each, the medians Int8Time and DelegateTime, and the
	// largest output differences (MaxSteps in quantization steps for
	// integer outputs, MaxFloatDiff for float32 outputs) over every
	// invocation, Agrees when both are within tolerance.
	Measured     bool
	Trials       int
	Int8Time     time.Duration
	DelegateTime time.Duration
	MaxSteps     int64
	MaxFloatDiff float64
	Agrees       bool
	Tolerance    int
	// Reason is one sentence on the decision, for logs.
	Reason string
}

// OpenBackend opens the model on the backend opts ask for:
//
//   - int8: the pure-Go interpreter.
//   - armnn: Arm NN when it can take the model; when it cannot (an operator
//     it lacks, ...) the pure-Go interpreter, with the reason in Fallback.
//     In a build without Arm NN, ErrArmNNNotBuilt.
//   - auto: in a build without delegates, int8. Otherwise both backends run
//     the model on the same seeded random inputs (one warm-up, then up to
//     Trials timed invocations each); the delegate is kept only if its
//     outputs agree with the pure-Go kernels' within tolerance on every
//     invocation and its median is faster. The other is closed.
//
// An error means the model cannot run at all.
func OpenBackend(m *Model, opts SelectOptions) (*Selection, error) {
	req := opts.Backend
	if req == "" {
		req = BackendAuto
	}
	if err := CheckBackendName(req); err != nil {
		return nil, err
	}
	sel := &Selection{Requested: req, Tolerance: opts.Tolerance}
	if sel.Tolerance == 0 {
		sel.Tolerance = DefaultTolerance
	} else if sel.Tolerance < 0 {
		sel.Tolerance = 0
	}
	if req == BackendInt8 {
		it, err := NewInterpreter(m, opts.Interpreter)
		if err != nil {
			return nil, err
		}
		sel.Backend, sel.Reason = it, "int8 requested"
		return sel, nil
	}
	name := req
	if req == BackendAuto {
		name = BackendArmNN
	}
	d, haveDelegate := LookupDelegate(name)
	if req != BackendAuto {
		b, err := d.Open(m)
		if err == nil {
			sel.Backend, sel.Delegate = b, b.Name()
			sel.Reason = name + " requested: " + b.Name()
			return sel, nil
		}
		sel.Fallback = err.Error()
		it, ierr := NewInterpreter(m, opts.Interpreter)
		if ierr != nil {
			return nil, fmt.Errorf("%s cannot run the model (%v), nor can the pure-Go kernels: %w", name, err, ierr)
		}
		sel.Backend = it
		sel.Reason = fmt.Sprintf("%s requested, but it cannot run this model; falling back to int8: %v", name, err)
		return sel, nil
	}

	it, err := NewInterpreter(m, opts.Interpreter)
	if err != nil {
		return nil, err
	}
	sel.Backend = it
	if !haveDelegate {
		sel.Reason = "auto: int8 (no delegate in this build)"
		return sel, nil
	}
	b, err := d.Open(m)
	if err != nil {
		sel.Fallback = err.Error()
		sel.Reason = fmt.Sprintf("auto: int8 (%s cannot run this model: %v)", name, err)
		return sel, nil
	}
	sel.Delegate = b.Name()
	if err := measure(it, b, opts, sel); err != nil {
		b.Close()
		sel.Fallback = err.Error()
		sel.Reason = fmt.Sprintf("auto: int8 (%s failed while being measured: %v)", b.Name(), err)
		return sel, nil
	}
	switch {
	case !sel.Agrees:
		b.Close()
		sel.Reason = fmt.Sprintf("auto: int8 (%s disagrees with the pure-Go kernels: up to %d steps, %.3g on float outputs; tolerance %d)",
			b.Name(), sel.MaxSteps, sel.MaxFloatDiff, sel.Tolerance)
	case sel.DelegateTime < sel.Int8Time:
		sel.Backend = b
		sel.Reason = fmt.Sprintf("auto: %s (agrees within %d steps and is faster: %v against %v for int8)",
			b.Name(), sel.MaxSteps, sel.DelegateTime.Round(time.Microsecond), sel.Int8Time.Round(time.Microsecond))
	default:
		b.Close()
		sel.Reason = fmt.Sprintf("auto: int8 (%s agrees within %d steps but is slower: %v against %v for int8)",
			b.Name(), sel.MaxSteps, sel.DelegateTime.Round(time.Microsecond), sel.Int8Time.Round(time.Microsecond))
	}
	return sel, nil
}

// measure times ref (the pure-Go interpreter) and cand on the same random
// inputs and records how far their outputs differ.
func measure(ref, cand Backend, opts SelectOptions, sel *Selection) error {
	trials, budget := opts.Trials, opts.Budget
	if trials <= 0 {
		trials = DefaultTrials
	}
	if budget <= 0 {
		budget = DefaultBudget
	}
	ftol := opts.FloatTolerance
	if ftol == 0 {
		ftol = DefaultFloatTolerance
	}
	if len(ref.Inputs()) != len(cand.Inputs()) || len(ref.Outputs()) != len(cand.Outputs()) {
		return fmt.Errorf("%d inputs and %d outputs, the model has %d and %d", len(cand.Inputs()), len(cand.Outputs()), len(ref.Inputs()), len(ref.Outputs()))
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x5e1ec7))
	var refTimes, candTimes []time.Duration
	var refSpent, candSpent time.Duration
	for i := 0; i <= trials; i++ { // i == 0 warms up
		for j, t := range ref.Inputs() {
			FillRandom(rng, t)
			copy(cand.Inputs()[j].Bytes(), t.Bytes())
		}
		start := time.Now()
		if err := ref.Invoke(); err != nil {
			return fmt.Errorf("int8 on random inputs: %w", err)
		}
		dr := time.Since(start)
		start = time.Now()
		if err := cand.Invoke(); err != nil {
			return err
		}
		dc := time.Since(start)
		steps, fdiff, err := DiffOutputs(ref.Outputs(), cand.Outputs())
		if err != nil {
			return err
		}
		sel.MaxSteps = max(sel.MaxSteps, steps)
		sel.MaxFloatDiff = max(sel.MaxFloatDiff, fdiff)
		if i == 0 {
			continue
		}
		refTimes, candTimes = append(refTimes, dr), append(candTimes, dc)
		refSpent += dr
		candSpent += dc
		if refSpent > budget || candSpent > budget {
			break
		}
	}
	ref.Reset()
	cand.Reset()
	sel.Measured = true
	sel.Trials = len(refTimes)
	sel.Int8Time, sel.DelegateTime = median(refTimes), median(candTimes)
	sel.Agrees = sel.MaxSteps <= int64(sel.Tolerance) && sel.MaxFloatDiff <= ftol
	return nil
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// DiffOutputs compares two backends' outputs element by element: the
// largest difference of integer elements (int8, uint8, int16, int32, int64,
// bool: for quantized tensors, quantization steps) and of float32 elements
// (absolute; NaN against anything but NaN counts as infinite). Tensors must
// have the same types and sizes.
func DiffOutputs(a, b []*Tensor) (steps int64, floatDiff float64, err error) {
	if len(a) != len(b) {
		return 0, 0, fmt.Errorf("%d outputs against %d", len(a), len(b))
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Type != y.Type || len(x.Bytes()) != len(y.Bytes()) {
			return 0, 0, fmt.Errorf("output %d: %s of %d bytes against %s of %d bytes", i, x.Type, len(x.Bytes()), y.Type, len(y.Bytes()))
		}
		xb, yb := x.Bytes(), y.Bytes()
		switch x.Type {
		case Int8:
			for j := range xb {
				steps = max(steps, absDiff(int64(int8(xb[j])), int64(int8(yb[j]))))
			}
		case Uint8, Bool:
			for j := range xb {
				steps = max(steps, absDiff(int64(xb[j]), int64(yb[j])))
			}
		case Int16:
			for j := 0; j+2 <= len(xb); j += 2 {
				steps = max(steps, absDiff(int64(int16(binary.LittleEndian.Uint16(xb[j:]))), int64(int16(binary.LittleEndian.Uint16(yb[j:])))))
			}
		case Int32:
			for j := 0; j+4 <= len(xb); j += 4 {
				steps = max(steps, absDiff(int64(int32(binary.LittleEndian.Uint32(xb[j:]))), int64(int32(binary.LittleEndian.Uint32(yb[j:])))))
			}
		case Int64:
			for j := 0; j+8 <= len(xb); j += 8 {
				steps = max(steps, absDiff(int64(binary.LittleEndian.Uint64(xb[j:])), int64(binary.LittleEndian.Uint64(yb[j:]))))
			}
		case Float32:
			for j := 0; j+4 <= len(xb); j += 4 {
				u := float64(math.Float32frombits(binary.LittleEndian.Uint32(xb[j:])))
				v := float64(math.Float32frombits(binary.LittleEndian.Uint32(yb[j:])))
				d := math.Abs(u - v)
				if math.IsNaN(u) || math.IsNaN(v) {
					d = math.Inf(1)
					if math.IsNaN(u) && math.IsNaN(v) {
						d = 0
					}
				}
				floatDiff = max(floatDiff, d)
			}
		default:
			return 0, 0, fmt.Errorf("output %d: type %s cannot be compared", i, x.Type)
		}
	}
	return steps, floatDiff, nil
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

// FillRandom fills a tensor with uniformly random values over its type's
// range (float32 in [-1, 1), bool 0 or 1).
func FillRandom(rng *rand.Rand, t *Tensor) {
	b := t.Bytes()
	switch t.Type {
	case Float32:
		for i := 0; i+4 <= len(b); i += 4 {
			binary.LittleEndian.PutUint32(b[i:], math.Float32bits(float32(2*rng.Float64()-1)))
		}
	case Bool:
		for i := range b {
			b[i] = byte(rng.IntN(2))
		}
	default:
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
	}
}
