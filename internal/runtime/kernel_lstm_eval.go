package runtime

import (
	"math"

	"github.com/edged/edged/internal/quantize"
)

// The reference arithmetic of UNIDIRECTIONAL_SEQUENCE_LSTM, step by step as
// TFLM's lstm_eval.h runs it (EvalLstm, LstmStep, CalculateLstmGate,
// UpdateLstmCell, UpdateLstmHidden).
//
// Time major inputs ([time, batch, input]) run every batch row of a time
// step together; batch major inputs ([batch, time, input]) run one batch row
// through all its time steps, then the next, each with its own rows of the
// hidden and cell state. The four scratch buffers hold, in turn: the forget
// gate (then tanh of the cell state), the input gate (then input × cell
// gate, then the output gate), the cell gate, and the recurrent FC's output.

// lstmEvalQuantized runs the integer LSTM on int8 or int16 activations.
func lstmEvalQuantized[T int8 | int16](k *lstm, in, hidden []T, cell []int16, out []T, bufs *[4][]int16) {
	if k.timeMajor {
		rows := k.batches
		for t := range k.steps {
			inOff, outOff := t*rows*k.inputs, t*rows*k.cells
			lstmStepQuantized(k, in[inOff:inOff+rows*k.inputs], hidden, cell, out[outOff:outOff+rows*k.cells], rows, bufs)
		}
		return
	}
	for b := range k.batches {
		h := hidden[b*k.cells : (b+1)*k.cells]
		c := cell[b*k.cells : (b+1)*k.cells]
		for t := range k.steps {
			row := b*k.steps + t
			lstmStepQuantized(k, in[row*k.inputs:(row+1)*k.inputs], h, c, out[row*k.cells:(row+1)*k.cells], 1, bufs)
		}
	}
}

// lstmStepQuantized is one time step (LstmStep) over rows batch rows: in
// holds rows × inputs activations, hidden, cell and out rows × cells.
func lstmStepQuantized[T int8 | int16](k *lstm, in, hidden []T, cell []int16, out []T, rows int, bufs *[4][]int16) {
	n := rows * k.cells
	hidden, cell, out = hidden[:n], cell[:n], out[:n]
	forget, inputGate, cellGate, scratch := bufs[0][:n], bufs[1][:n], bufs[2][:n], bufs[3][:n]

	lstmGateQuantized(k, &k.gates[lstmGateForget], in, hidden, rows, forget, scratch, false)
	lstmGateQuantized(k, &k.gates[lstmGateInput], in, hidden, rows, inputGate, scratch, false)
	lstmGateQuantized(k, &k.gates[lstmGateCell], in, hidden, rows, cellGate, scratch, true)

	// Cell state: c = f*c + i*g, saturated to int16, then clipped.
	lstmMulInt16(&k.forgetMul, forget, cell, cell)
	lstmMulInt16(&k.inputMul, inputGate, cellGate, inputGate)
	for i := range cell {
		cell[i] = lstmSaturatingAdd16(cell[i], inputGate[i])
	}
	if k.cellClip > 0 {
		clip := k.quantizedCellClip
		for i, v := range cell {
			// std::max(std::min(clip, v), -clip)
			if clip < v {
				v = clip
			}
			if v < -clip {
				v = -clip
			}
			cell[i] = v
		}
	}

	// Hidden state: h = o * tanh(c), requantized to the hidden state's
	// scale and zero point; the step's output is a copy of it.
	outputGate := inputGate
	lstmGateQuantized(k, &k.gates[lstmGateOutput], in, hidden, rows, outputGate, scratch, false)
	tanhCell := forget
	quantize.TanhInt16(cell, tanhCell, k.cellTanhMult, k.cellTanhShift)
	m := &k.hidMul
	for i := range hidden {
		v := m.outputOffset + m.mult.Apply(int32(tanhCell[i])*int32(outputGate[i]))
		hidden[i] = T(clampInt32(v, m.min, m.max))
	}
	copy(out, hidden)
}

// lstmGateQuantized is CalculateLstmGate: both fully connected parts into
// Q3.12, their saturating sum, then the int16 sigmoid (tanh for the cell
// gate) into Q0.15.
func lstmGateQuantized[T int8 | int16](k *lstm, g *lstmGate, in, hidden []T, rows int, out, scratch []int16, useTanh bool) {
	if k.fast != nil {
		k.fast.gate(g, lstmBytes(in), lstmBytes(hidden), rows, out, scratch)
	} else if k.input.Type == Int16 {
		w, rw := g.inputWeights.Int8s(), g.recurrentWeights.Int8s()
		bias := g.bias.Int64s()
		lstmFullyConnected64(&g.inputFC, in, w, bias, out, rows, k.inputs, k.cells)
		lstmFullyConnected64(&g.recurrentFC, hidden, rw, nil, scratch, rows, k.cells, k.cells)
	} else {
		w, rw := g.inputWeights.Int8s(), g.recurrentWeights.Int8s()
		bias := g.bias.Int32s()
		lstmFullyConnected32(&g.inputFC, in, w, bias, out, rows, k.inputs, k.cells)
		lstmFullyConnected32(&g.recurrentFC, hidden, rw, nil, scratch, rows, k.cells, k.cells)
	}
	for i := range out {
		out[i] = lstmSaturatingAdd16(out[i], scratch[i])
	}
	if useTanh {
		// Tanh with cell_state_scale_power -12: the input is Q3.12.
		quantize.TanhInt16(out, out, 0, 0)
	} else {
		quantize.LogisticInt16(out, out, 0, 0)
	}
}

// lstmFullyConnected32 is reference_integer_ops::FullyConnected for int8
// activations: an int32 accumulator and bias, TFLite's double-rounding
// requantization, clamped to int16 (the output zero point is 0).
func lstmFullyConnected32[T int8 | int16](fc *lstmFC, in []T, w []int8, bias []int32, out []int16, rows, depth, units int) {
	for b := range rows {
		x := in[b*depth : (b+1)*depth]
		for o := range units {
			wr := w[o*depth : (o+1)*depth]
			var acc int32
			for d, v := range x {
				acc += (int32(wr[d]) + fc.filterOffset) * (int32(v) + fc.inputOffset)
			}
			if bias != nil {
				acc += bias[o]
			}
			out[b*units+o] = int16(clampInt32(fc.mult.Apply(acc), math.MinInt16, math.MaxInt16))
		}
	}
}

// lstmFullyConnected64 is reference_integer_ops::FullyConnected for int16
// activations: an int64 accumulator and bias and the 64-bit
// requantization, clamped to int16.
func lstmFullyConnected64[T int8 | int16](fc *lstmFC, in []T, w []int8, bias []int64, out []int16, rows, depth, units int) {
	for b := range rows {
		x := in[b*depth : (b+1)*depth]
		for o := range units {
			wr := w[o*depth : (o+1)*depth]
			var acc int64
			for d, v := range x {
				acc += int64((int32(wr[d]) + fc.filterOffset) * (int32(v) + fc.inputOffset))
			}
			if bias != nil {
				acc += bias[o]
			}
			r := quantize.MultiplyByQuantizedMultiplier64(acc, fc.mult.Significand, fc.mult.Shift)
			out[b*units+o] = int16(clampInt32(r, math.MinInt16, math.MaxInt16))
		}
	}
}

// lstmMulInt16 is reference_integer_ops::MulElementwise on int16 inputs of
// zero point 0 into int16. out may alias either input.
func lstmMulInt16(m *lstmMul, a, b, out []int16) {
	for i := range out {
		v := m.outputOffset + m.mult.Apply(int32(a[i])*int32(b[i]))
		out[i] = int16(clampInt32(v, m.min, m.max))
	}
}

func lstmSaturatingAdd16(a, b int16) int16 {
	return int16(clampInt32(int32(a)+int32(b), math.MinInt16, math.MaxInt16))
}

// lstmEvalFloat runs the float LSTM.
func lstmEvalFloat(k *lstm, in, hidden, cell, out []float32, bufs *[4][]float32) {
	if k.timeMajor {
		rows := k.batches
		for t := range k.steps {
			inOff, outOff := t*rows*k.inputs, t*rows*k.cells
			lstmStepFloat(k, in[inOff:inOff+rows*k.inputs], hidden, cell, out[outOff:outOff+rows*k.cells], rows, bufs)
		}
		return
	}
	for b := range k.batches {
		h := hidden[b*k.cells : (b+1)*k.cells]
		c := cell[b*k.cells : (b+1)*k.cells]
		for t := range k.steps {
			row := b*k.steps + t
			lstmStepFloat(k, in[row*k.inputs:(row+1)*k.inputs], h, c, out[row*k.cells:(row+1)*k.cells], 1, bufs)
		}
	}
}

// lstmStepFloat is one float time step (LstmStep with float types).
func lstmStepFloat(k *lstm, in, hidden, cell, out []float32, rows int, bufs *[4][]float32) {
	n := rows * k.cells
	hidden, cell, out = hidden[:n], cell[:n], out[:n]
	forget, inputGate, cellGate, scratch := bufs[0][:n], bufs[1][:n], bufs[2][:n], bufs[3][:n]
	const lo, hi = -math.MaxFloat32, math.MaxFloat32

	lstmGateFloat(k, &k.gates[lstmGateForget], in, hidden, rows, forget, scratch, false)
	lstmGateFloat(k, &k.gates[lstmGateInput], in, hidden, rows, inputGate, scratch, false)
	lstmGateFloat(k, &k.gates[lstmGateCell], in, hidden, rows, cellGate, scratch, true)

	for i := range cell {
		cell[i] = clampFloat32(forget[i]*cell[i], lo, hi)
	}
	for i := range inputGate {
		inputGate[i] = clampFloat32(inputGate[i]*cellGate[i], lo, hi)
	}
	for i := range cell {
		cell[i] += inputGate[i]
	}
	if clip := k.cellClip; clip > 0 {
		for i, v := range cell {
			// std::max(std::min(clip, v), -clip)
			if !(v < clip) {
				v = clip
			}
			if v < -clip {
				v = -clip
			}
			cell[i] = v
		}
	}

	outputGate := inputGate
	lstmGateFloat(k, &k.gates[lstmGateOutput], in, hidden, rows, outputGate, scratch, false)
	tanhCell := forget
	tanhFloat(cell, tanhCell)
	for i := range hidden {
		hidden[i] = clampFloat32(tanhCell[i]*outputGate[i], lo, hi)
	}
	copy(out, hidden)
}

// lstmGateFloat is CalculateLstmGate for float: both fully connected parts,
// their sum, then sigmoid (or tanh).
func lstmGateFloat(k *lstm, g *lstmGate, in, hidden []float32, rows int, out, scratch []float32, useTanh bool) {
	lstmFullyConnectedFloat(in, g.inputWeights.Float32s(), g.bias.Float32s(), out, rows, k.inputs, k.cells)
	lstmFullyConnectedFloat(hidden, g.recurrentWeights.Float32s(), nil, scratch, rows, k.cells, k.cells)
	for i := range out {
		out[i] += scratch[i]
	}
	if useTanh {
		tanhFloat(out, out)
	} else {
		logisticFloat(out, out)
	}
}

// lstmFullyConnectedFloat is reference_ops::FullyConnected with no fused
// activation (a clamp to ±FLT_MAX).
func lstmFullyConnectedFloat(in, w, bias, out []float32, rows, depth, units int) {
	for b := range rows {
		x := in[b*depth : (b+1)*depth]
		for o := range units {
			wr := w[o*depth : (o+1)*depth]
			var total float32
			for d, v := range x {
				// The conversion keeps Go from fusing into an FMA.
				total += float32(v * wr[d])
			}
			var bv float32
			if bias != nil {
				bv = bias[o]
			}
			out[b*units+o] = clampFloat32(total+bv, -math.MaxFloat32, math.MaxFloat32)
		}
	}
}
