package runtime

import (
	"fmt"
	"math"

	"github.com/edged/edged/internal/quantize"
	"github.com/edged/edged/internal/runtime/tflite"
)

// UNIDIRECTIONAL_SEQUENCE_LSTM as TFLM runs it (micro/kernels/
// unidirectional_sequence_lstm.cc, lstm_eval*.cc): the standard LSTM of the
// Keras layer, without CIFG, peephole, projection or layer normalization.
// Types: float32; int8 activations with int8 weights, int32 biases and an
// int16 cell state; int16 activations with int8 weights, int64 biases and an
// int16 cell state ("16x8").
//
// Per time step, for each gate g in forget, input, cell, output:
//
//	g = act_g(W_g·x + b_g + R_g·h)    act: sigmoid; tanh (the fused activation) for the cell gate
//	c = f*c + i*cellgate              (then clipped to ±cell_clip when cell_clip > 0)
//	h = o*tanh(c)                     (h is also the step's output)
//
// The integer path quantizes every gate's pre-activation to Q3.12 (scale
// 2^-12), gate outputs to Q0.15 (scale 2^-15), and uses the int16
// table-driven logistic and tanh (quantize.LogisticInt16/TanhInt16). The
// hidden state (input 18) and cell state (input 19) are variable tensors:
// they carry over from one Invoke to the next until Interpreter.Reset. The
// output receives copies of the hidden state's bytes, so its quantization
// should be the hidden state's; like TFLM, Prepare does not check that.

func init() {
	Register(Registration{Builtin: tflite.BuiltinOperatorUNIDIRECTIONAL_SEQUENCE_LSTM, MaxVersion: 4, New: func() Kernel { return &lstm{} }})
}

// Input slots of the operator (lstm_shared.h).
const (
	lstmInput = 0
	// 1-4: input-to-{input,forget,cell,output} weights [cells, inputs];
	// 5-8: recurrent-to-{input,forget,cell,output} weights [cells, cells].
	lstmInputToInputWeights     = 1
	lstmRecurrentToInputWeights = 5
	// 9-11: peephole (cell-to-gate) weights.
	lstmCellToInputWeights  = 9
	lstmCellToOutputWeights = 11
	// 12-15: {input,forget,cell,output} gate biases [cells].
	lstmInputGateBias = 12
	// 16, 17: projection weights and bias.
	lstmProjectionWeights = 16
	lstmProjectionBias    = 17
	lstmHiddenState       = 18
	lstmCellState         = 19
	// 20-23: layer normalization coefficients of the four gates.
	lstmInputLayerNorm  = 20
	lstmOutputLayerNorm = 23
	lstmNumInputs       = 24
)

// Gate order of the weight and bias slots: input, forget, cell, output.
const (
	lstmGateInput = iota
	lstmGateForget
	lstmGateCell
	lstmGateOutput
)

var lstmGateNames = [4]string{"input", "forget", "cell", "output"}

// Fixed-point formats of TFLM's integer LSTM.
const (
	// lstmGateInputScale is the scale of every gate's pre-activation
	// (Q3.12), the output scale of the gates' fully connected parts.
	lstmGateInputScale float32 = 1.0 / 4096
	// lstmGateOutputScale is the scale of the gates' outputs (Q0.15).
	lstmGateOutputScale float32 = 1.0 / 32768
)

// lstmFC holds the requantization of one fully connected part of a gate:
// int8 or int16 activations times int8 weights into the gate's Q3.12 int16
// pre-activation.
type lstmFC struct {
	inputOffset, filterOffset int32
	mult                      quantize.Multiplier
}

type lstmGate struct {
	inputWeights, recurrentWeights, bias *Tensor
	inputFC, recurrentFC                 lstmFC
	// The optimized int8 gate matmuls' packed filters and requantization
	// (nil: reference).
	fastIn, fastRec *packedFilter
	rqIn, rqRec     *requantParams
}

// lstmMul is an element-wise multiplication of two int16 tensors into a
// tensor of scale product / output scale (reference_integer_ops::MulElementwise
// with symmetric inputs).
type lstmMul struct {
	mult         quantize.Multiplier
	outputOffset int32
	min, max     int32
}

type lstm struct {
	input, output, hidden, cell *Tensor
	gates                       [4]lstmGate

	timeMajor                     bool
	batches, steps, inputs, cells int

	// buffers are TFLM's four scratch buffers of batches × cells cell
	// state elements.
	buffers [4]*Scratch

	// cellClip is the cell_clip option: the cell state is clipped to
	// ±cellClip after every update when it is positive.
	cellClip float32

	// Integer path.
	quantizedCellClip int16 // cellClip in cell state steps
	// cellTanhMult and cellTanhShift scale the cell state into tanh's
	// Q3.12 input (quantize.TanhInt16's multiplier and shift).
	cellTanhMult                int32
	cellTanhShift               int
	forgetMul, inputMul, hidMul lstmMul

	fast *lstmFast // the optimized int8 gate matmuls' buffers (nil: reference)
}

func (k *lstm) Prepare(c *PrepareContext) error {
	if err := c.ExpectIO(1, lstmNumInputs, 1); err != nil {
		return err
	}
	if n := c.NumInputs(); n != lstmNumInputs {
		return fmt.Errorf("has %d inputs, want %d", n, lstmNumInputs)
	}
	var opts tflite.UnidirectionalSequenceLSTMOptions
	if err := c.Options(tflite.BuiltinOptionsUnidirectionalSequenceLSTMOptions, &opts); err != nil {
		return err
	}
	if err := lstmCheckVariant(c); err != nil {
		return err
	}
	if opts.DiagonalRecurrentTensors() {
		return fmt.Errorf("diagonal recurrent weights are not supported (TFLM's LSTM takes full recurrent matrices)")
	}
	// TFLM's gates take sigmoid or tanh; the schema can only name tanh.
	if act := opts.FusedActivationFunction(); act != tflite.ActivationFunctionTypeTANH {
		return fmt.Errorf("cell gate activation %s is not supported (TFLM's LSTM takes TANH)", activationName(act))
	}

	k.input, k.output = c.Input(lstmInput), c.Output(0)
	k.hidden, k.cell = c.Input(lstmHiddenState), c.Input(lstmCellState)
	for g := range k.gates {
		k.gates[g] = lstmGate{
			inputWeights:     c.Input(lstmInputToInputWeights + g),
			recurrentWeights: c.Input(lstmRecurrentToInputWeights + g),
			bias:             c.Input(lstmInputGateBias + g),
		}
	}
	if err := k.prepareShapes(c, opts.TimeMajor()); err != nil {
		return err
	}

	in := k.input
	cellSize := 4
	switch in.Type {
	case Float32:
		if err := k.prepareFloat(opts.CellClip()); err != nil {
			return err
		}
	case Int8, Int16:
		if err := k.prepareQuantized(opts.CellClip()); err != nil {
			return err
		}
		k.prepareFast(c)
		cellSize = 2
	default:
		return UnsupportedTypes("input", in.Type)
	}
	for i := range k.buffers {
		k.buffers[i] = c.RequestScratch(k.batches * k.cells * cellSize)
	}
	return nil
}

// lstmCheckVariant rejects the LSTM variants TFLM does not implement, naming
// the feature the model uses.
func lstmCheckVariant(c *PrepareContext) error {
	if c.Input(lstmInputToInputWeights) == nil || c.Input(lstmRecurrentToInputWeights) == nil || c.Input(lstmInputGateBias) == nil {
		return fmt.Errorf("CIFG (coupled input and forget gate: no input gate weights or bias) is not supported by TFLM's LSTM")
	}
	for i := lstmCellToInputWeights; i <= lstmCellToOutputWeights; i++ {
		if c.Input(i) != nil {
			return fmt.Errorf("peephole weights (input %d) are not supported by TFLM's LSTM", i)
		}
	}
	if c.Input(lstmProjectionWeights) != nil {
		return fmt.Errorf("projection weights (input %d) are not supported by TFLM's LSTM", lstmProjectionWeights)
	}
	if c.Input(lstmProjectionBias) != nil {
		return fmt.Errorf("projection bias (input %d) is not supported by TFLM's LSTM", lstmProjectionBias)
	}
	for i := lstmInputLayerNorm; i <= lstmOutputLayerNorm; i++ {
		if c.Input(i) != nil {
			return fmt.Errorf("layer normalization coefficients (input %d) are not supported by TFLM's LSTM", i)
		}
	}
	for i := 0; i < lstmNumInputs; i++ {
		if i >= lstmCellToInputWeights && i <= lstmCellToOutputWeights || i == lstmProjectionWeights || i == lstmProjectionBias || i >= lstmInputLayerNorm {
			continue
		}
		if c.Input(i) == nil {
			return fmt.Errorf("required input %d is omitted", i)
		}
	}
	return nil
}

// prepareShapes derives batches, time steps, input and cell sizes and
// checks every tensor against them (CreateLstmSizeInfo and
// ValidateTensorSize).
func (k *lstm) prepareShapes(c *PrepareContext, timeMajor bool) error {
	in, hidden, cell := k.input, k.hidden, k.cell
	if len(in.Shape) != 3 {
		return fmt.Errorf("input %s must have rank 3 ([batch, time, input], or [time, batch, input] when time major)", in)
	}
	if len(hidden.Shape) != 2 {
		return fmt.Errorf("hidden state %s must have rank 2 [batch, cells]", hidden)
	}
	k.timeMajor = timeMajor
	if timeMajor {
		k.steps, k.batches = in.Shape[0], in.Shape[1]
	} else {
		k.batches, k.steps = in.Shape[0], in.Shape[1]
	}
	k.inputs, k.cells = in.Shape[2], hidden.Shape[1]
	for g, gt := range k.gates {
		if w := gt.inputWeights; len(w.Shape) != 2 || w.Shape[0] != k.cells || w.Shape[1] != k.inputs {
			return fmt.Errorf("input-to-%s weights %s must have shape [%d,%d] (cells, inputs)", lstmGateNames[g], w, k.cells, k.inputs)
		}
		if w := gt.recurrentWeights; len(w.Shape) != 2 || w.Shape[0] != k.cells || w.Shape[1] != k.cells {
			return fmt.Errorf("recurrent-to-%s weights %s must have shape [%d,%d] (cells, cells)", lstmGateNames[g], w, k.cells, k.cells)
		}
		if b := gt.bias; len(b.Shape) != 1 || b.Shape[0] != k.cells {
			return fmt.Errorf("%s gate bias %s must have shape [%d]", lstmGateNames[g], b, k.cells)
		}
	}
	if n := hidden.NumElements(); n != k.batches*k.cells {
		return fmt.Errorf("hidden state %s has %d elements, want batches × cells = %d", hidden, n, k.batches*k.cells)
	}
	if n := cell.NumElements(); n != k.batches*k.cells {
		return fmt.Errorf("cell state %s has %d elements, want batches × cells = %d", cell, n, k.batches*k.cells)
	}
	if !hidden.Variable {
		return fmt.Errorf("hidden state %s must be a variable tensor", hidden)
	}
	if !cell.Variable {
		return fmt.Errorf("cell state %s must be a variable tensor", cell)
	}
	return c.SetOutputShape(0, []int{in.Shape[0], in.Shape[1], k.cells})
}

func (k *lstm) prepareFloat(cellClip float32) error {
	for _, t := range []*Tensor{k.hidden, k.cell, k.output} {
		if t.Type != Float32 {
			return UnsupportedTypes("float input with hidden state, cell state, output", k.hidden.Type, k.cell.Type, k.output.Type)
		}
	}
	for g, gt := range k.gates {
		if gt.inputWeights.Type != Float32 || gt.recurrentWeights.Type != Float32 {
			if gt.inputWeights.Type == Int8 || gt.recurrentWeights.Type == Int8 {
				return fmt.Errorf("%s gate: hybrid LSTM (float input with int8 weights) is not supported by TFLM", lstmGateNames[g])
			}
			return UnsupportedTypes(lstmGateNames[g]+" gate float input with weights", gt.inputWeights.Type, gt.recurrentWeights.Type)
		}
		if gt.bias.Type != Float32 {
			return UnsupportedTypes(lstmGateNames[g]+" gate float input with bias", gt.bias.Type)
		}
	}
	k.cellClip = cellClip
	return nil
}

func (k *lstm) prepareQuantized(cellClip float32) error {
	in, hidden, cell, out := k.input, k.hidden, k.cell, k.output
	biasType := Int32
	if in.Type == Int16 {
		biasType = Int64
	}
	if hidden.Type != in.Type || out.Type != in.Type || cell.Type != Int16 {
		return UnsupportedTypes("input, hidden state, cell state, output (want the input's type for hidden state and output, int16 cell state)", in.Type, hidden.Type, cell.Type, out.Type)
	}
	for g, gt := range k.gates {
		if gt.inputWeights.Type != Int8 || gt.recurrentWeights.Type != Int8 || gt.bias.Type != biasType {
			return UnsupportedTypes(fmt.Sprintf("%s gate with %s input: input weights, recurrent weights, bias (want int8, int8, %s)", lstmGateNames[g], in.Type, biasType),
				gt.inputWeights.Type, gt.recurrentWeights.Type, gt.bias.Type)
		}
	}
	for _, t := range []*Tensor{in, hidden, cell} {
		if err := requireQuantized("tensor", t); err != nil {
			return err
		}
		if err := checkZeroPointRange("tensor", t); err != nil {
			return err
		}
	}

	// Gate pre-activations: FC outputs of scale 2^-12, zero point 0.
	for g := range k.gates {
		gt := &k.gates[g]
		var err error
		if gt.inputFC, err = lstmPrepareFC(in, gt.inputWeights); err != nil {
			return fmt.Errorf("%s gate: %w", lstmGateNames[g], err)
		}
		if gt.recurrentFC, err = lstmPrepareFC(hidden, gt.recurrentWeights); err != nil {
			return fmt.Errorf("%s gate: %w", lstmGateNames[g], err)
		}
	}

	// The cell state's scale is 2^power; tanh reads it through a shift.
	cellScale := cell.Scale()
	power := lstmLog2(cellScale)
	shift := 15 + power - 3
	var mult int32
	if shift < 0 {
		shift, mult = -shift, 3
	}
	if !quantize.Int16ActivationParamsValid(mult, shift) {
		return fmt.Errorf("cell state %s: scale %g (2^%d) is outside the range TFLM's int16 tanh can read", cell, cellScale, power)
	}
	k.cellTanhMult, k.cellTanhShift = mult, shift
	k.cellClip = cellClip
	clip := float64(cellClip) / float64(cellScale)
	if clip < -32768 {
		clip = -32768
	}
	if clip > 32767 {
		clip = 32767
	}
	k.quantizedCellClip = int16(clip) // truncation, as static_cast<int16_t>

	var err error
	if k.forgetMul, err = lstmPrepareMul(lstmGateOutputScale, cellScale, cellScale, Int16, 0); err != nil {
		return fmt.Errorf("forget gate × cell state: %w", err)
	}
	if k.inputMul, err = lstmPrepareMul(lstmGateOutputScale, lstmGateOutputScale, cellScale, Int16, 0); err != nil {
		return fmt.Errorf("input gate × cell gate: %w", err)
	}
	if k.hidMul, err = lstmPrepareMul(lstmGateOutputScale, lstmGateOutputScale, hidden.Scale(), hidden.Type, hidden.ZeroPoint()); err != nil {
		return fmt.Errorf("output gate × tanh(cell state) into hidden state %s: %w", hidden, err)
	}
	return nil
}

// lstmPrepareFC computes a gate's fully connected requantization into the
// Q3.12 pre-activation (CalculateOpDataFullyConnected with a per-tensor
// filter: the scales multiplied in float, divided in double).
// activationName names a fused activation, also one the schema does not
// know.
func activationName(act tflite.ActivationFunctionType) string {
	if n, ok := tflite.EnumNamesActivationFunctionType[act]; ok {
		return n
	}
	return fmt.Sprintf("%d", int(act))
}

func lstmPrepareFC(in, w *Tensor) (lstmFC, error) {
	if err := requireQuantized("weights", w); err != nil {
		return lstmFC{}, err
	}
	if w.Quant.PerChannel() {
		// TFLM's LSTM reads a single multiplier per weight tensor.
		return lstmFC{}, fmt.Errorf("weights %s are quantized per channel (%d scales); TFLM's LSTM takes per-tensor weights", w, len(w.Quant.Scale))
	}
	if err := checkZeroPointRange("weights", w); err != nil {
		return lstmFC{}, err
	}
	m, err := quantize.CheckedMultiplier(float64(in.Scale()*w.Scale()) / float64(lstmGateInputScale))
	if err != nil {
		return lstmFC{}, fmt.Errorf("weights %s: %w", w, err)
	}
	if in.Type == Int16 && m.Shift > 7 {
		// The 64-bit requantization is defined for shifts below 8.
		return lstmFC{}, fmt.Errorf("weights %s: requantization factor too large for int16 activations (shift %d > 7)", w, m.Shift)
	}
	return lstmFC{inputOffset: -in.ZeroPoint(), filterOffset: -w.ZeroPoint(), mult: m}, nil
}

// lstmPrepareMul is CreateInterGateMulParams: the scales multiplied and
// divided in double.
func lstmPrepareMul(scale1, scale2, outScale float32, outType DType, outZeroPoint int32) (lstmMul, error) {
	m, err := quantize.CheckedMultiplier(float64(scale1) * float64(scale2) / float64(outScale))
	if err != nil {
		return lstmMul{}, err
	}
	lo, hi, _ := typeRange(outType)
	return lstmMul{mult: m, outputOffset: outZeroPoint, min: lo, max: hi}, nil
}

// lstmLog2 is CheckedLog2 as CreateLstmCellStateInfo uses it: log2 of x in
// float through the natural logarithm, rounded half away from zero (TFLM
// does not look at whether x was a power of two).
func lstmLog2(x float32) int {
	invLn2 := 1 / float32(math.Log(2))
	l := float32(math.Log(float64(x))) * invLn2
	return int(math.Round(float64(l)))
}

func (k *lstm) MACs() int64 {
	return int64(k.steps) * int64(k.batches) * 4 * int64(k.cells) * int64(k.inputs+k.cells)
}

func (k *lstm) Eval() error {
	switch k.input.Type {
	case Float32:
		var bufs [4][]float32
		for i, b := range k.buffers {
			bufs[i] = view[float32](b.Bytes)
		}
		lstmEvalFloat(k, k.input.Float32s(), k.hidden.Float32s(), k.cell.Float32s(), k.output.Float32s(), &bufs)
	case Int8:
		bufs := k.int16Buffers()
		lstmEvalQuantized(k, k.input.Int8s(), k.hidden.Int8s(), k.cell.Int16s(), k.output.Int8s(), &bufs)
	case Int16:
		bufs := k.int16Buffers()
		lstmEvalQuantized(k, k.input.Int16s(), k.hidden.Int16s(), k.cell.Int16s(), k.output.Int16s(), &bufs)
	}
	return nil
}

func (k *lstm) int16Buffers() (bufs [4][]int16) {
	for i, b := range k.buffers {
		bufs[i] = view[int16](b.Bytes)
	}
	return bufs
}
