package armnn

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/edged/edged/internal/runtime"
	"github.com/edged/edged/internal/runtime/tflite"
)

// parserOps are the builtin operators Arm NN 20.08's TfLite parser reads
// (its m_ParserFunctions table); anything else it throws on.
var parserOps = map[tflite.BuiltinOperator]bool{
	tflite.BuiltinOperatorADD:                     true,
	tflite.BuiltinOperatorAVERAGE_POOL_2D:         true,
	tflite.BuiltinOperatorBATCH_TO_SPACE_ND:       true,
	tflite.BuiltinOperatorCONCATENATION:           true,
	tflite.BuiltinOperatorCONV_2D:                 true,
	tflite.BuiltinOperatorDEPTHWISE_CONV_2D:       true,
	tflite.BuiltinOperatorDEQUANTIZE:              true,
	tflite.BuiltinOperatorDIV:                     true,
	tflite.BuiltinOperatorEXP:                     true,
	tflite.BuiltinOperatorFULLY_CONNECTED:         true,
	tflite.BuiltinOperatorHARD_SWISH:              true,
	tflite.BuiltinOperatorL2_NORMALIZATION:        true,
	tflite.BuiltinOperatorLEAKY_RELU:              true,
	tflite.BuiltinOperatorLOGISTIC:                true,
	tflite.BuiltinOperatorMAX_POOL_2D:             true,
	tflite.BuiltinOperatorMAXIMUM:                 true,
	tflite.BuiltinOperatorMEAN:                    true,
	tflite.BuiltinOperatorMINIMUM:                 true,
	tflite.BuiltinOperatorMUL:                     true,
	tflite.BuiltinOperatorNEG:                     true,
	tflite.BuiltinOperatorPACK:                    true,
	tflite.BuiltinOperatorPAD:                     true,
	tflite.BuiltinOperatorQUANTIZE:                true,
	tflite.BuiltinOperatorRELU:                    true,
	tflite.BuiltinOperatorRELU6:                   true,
	tflite.BuiltinOperatorRESHAPE:                 true,
	tflite.BuiltinOperatorRESIZE_BILINEAR:         true,
	tflite.BuiltinOperatorRESIZE_NEAREST_NEIGHBOR: true,
	tflite.BuiltinOperatorSLICE:                   true,
	tflite.BuiltinOperatorSOFTMAX:                 true,
	tflite.BuiltinOperatorSPACE_TO_BATCH_ND:       true,
	tflite.BuiltinOperatorSPLIT:                   true,
	tflite.BuiltinOperatorSPLIT_V:                 true,
	tflite.BuiltinOperatorSQUEEZE:                 true,
	tflite.BuiltinOperatorSTRIDED_SLICE:           true,
	tflite.BuiltinOperatorSUB:                     true,
	tflite.BuiltinOperatorTANH:                    true,
	tflite.BuiltinOperatorTRANSPOSE:               true,
	tflite.BuiltinOperatorTRANSPOSE_CONV:          true,
	tflite.BuiltinOperatorUNPACK:                  true,
}

// parserOptions are the builtin options Arm NN 20.08's parser reads for an
// operator without checking they are there: a model whose operator lacks
// them (TFLite's converter always writes them; hand-built models may not)
// would crash it.
var parserOptions = map[tflite.BuiltinOperator]tflite.BuiltinOptions{
	tflite.BuiltinOperatorADD:                     tflite.BuiltinOptionsAddOptions,
	tflite.BuiltinOperatorAVERAGE_POOL_2D:         tflite.BuiltinOptionsPool2DOptions,
	tflite.BuiltinOperatorCONCATENATION:           tflite.BuiltinOptionsConcatenationOptions,
	tflite.BuiltinOperatorCONV_2D:                 tflite.BuiltinOptionsConv2DOptions,
	tflite.BuiltinOperatorDEPTHWISE_CONV_2D:       tflite.BuiltinOptionsDepthwiseConv2DOptions,
	tflite.BuiltinOperatorDIV:                     tflite.BuiltinOptionsDivOptions,
	tflite.BuiltinOperatorFULLY_CONNECTED:         tflite.BuiltinOptionsFullyConnectedOptions,
	tflite.BuiltinOperatorL2_NORMALIZATION:        tflite.BuiltinOptionsL2NormOptions,
	tflite.BuiltinOperatorLEAKY_RELU:              tflite.BuiltinOptionsLeakyReluOptions,
	tflite.BuiltinOperatorMAX_POOL_2D:             tflite.BuiltinOptionsPool2DOptions,
	tflite.BuiltinOperatorMEAN:                    tflite.BuiltinOptionsReducerOptions,
	tflite.BuiltinOperatorMUL:                     tflite.BuiltinOptionsMulOptions,
	tflite.BuiltinOperatorPACK:                    tflite.BuiltinOptionsPackOptions,
	tflite.BuiltinOperatorRESIZE_BILINEAR:         tflite.BuiltinOptionsResizeBilinearOptions,
	tflite.BuiltinOperatorRESIZE_NEAREST_NEIGHBOR: tflite.BuiltinOptionsResizeNearestNeighborOptions,
	tflite.BuiltinOperatorSOFTMAX:                 tflite.BuiltinOptionsSoftmaxOptions,
	tflite.BuiltinOperatorSPLIT:                   tflite.BuiltinOptionsSplitOptions,
	tflite.BuiltinOperatorSPLIT_V:                 tflite.BuiltinOptionsSplitVOptions,
	tflite.BuiltinOperatorSQUEEZE:                 tflite.BuiltinOptionsSqueezeOptions,
	tflite.BuiltinOperatorSTRIDED_SLICE:           tflite.BuiltinOptionsStridedSliceOptions,
	tflite.BuiltinOperatorSUB:                     tflite.BuiltinOptionsSubOptions,
	tflite.BuiltinOperatorTRANSPOSE_CONV:          tflite.BuiltinOptionsTransposeConvOptions,
	tflite.BuiltinOperatorUNPACK:                  tflite.BuiltinOptionsUnpackOptions,
}

// optionalBias are the operators whose third input (the bias) Arm NN takes
// as omitted.
var optionalBias = map[tflite.BuiltinOperator]bool{}

// parserCustomOps are the custom operators it reads.
var parserCustomOps = map[string]bool{"TFLite_Detection_PostProcess": true}

// UnsupportedError says why Arm NN cannot take a model; the runtime runs
// such a model on the pure-Go kernels.
type UnsupportedError struct{ Reason string }

func (e *UnsupportedError) Error() string { return e.Reason }

// Check reports, as an *UnsupportedError, why Arm NN 20.08 cannot run a
// model edged has read: operators its TfLite parser lacks (all of them
// named), more than one subgraph, variable tensors (Arm NN keeps no state
// between invocations), buffers stored after the flatbuffer.
func Check(m *runtime.Model) error {
	if n := len(m.Subgraphs); n != 1 {
		return &UnsupportedError{fmt.Sprintf("Arm NN's TfLite parser reads models of one subgraph; this one has %d", n)}
	}
	g := m.Subgraphs[0]
	var missing []string
	for i := range g.Operators {
		c := g.Operators[i].Code
		ok := parserOps[c.Builtin]
		if c.Builtin == tflite.BuiltinOperatorCUSTOM {
			ok = parserCustomOps[c.Custom]
		}
		if name := c.Name(); !ok && !slices.Contains(missing, name) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return &UnsupportedError{fmt.Sprintf("Arm NN 20.08 lacks the operator(s) %s", strings.Join(missing, ", "))}
	}
	for i := range g.Operators {
		op := &g.Operators[i]
		if want, ok := parserOptions[op.Code.Builtin]; ok && op.OptionsType() != want {
			return &UnsupportedError{fmt.Sprintf("operator %d (%s) has no %s, which Arm NN 20.08's parser reads unchecked",
				i, op.Code.Name(), tflite.EnumNamesBuiltinOptions[want])}
		}
		if op.Code.Builtin == tflite.BuiltinOperatorCUSTOM && len(op.CustomOptions) == 0 {
			return &UnsupportedError{fmt.Sprintf("operator %d (%s) has no custom options, which Arm NN 20.08's parser reads unchecked", i, op.Code.Name())}
		}
		if op.Code.Builtin == tflite.BuiltinOperatorFULLY_CONNECTED && len(op.Inputs) > 1 && op.Inputs[1] >= 0 {
			// Per-channel weights (what edged finetune writes, as current
			// TFLite converters do) hit an assertion in Arm NN 20.08's
			// layer support check (GetBiasTypeFromWeightsType): the
			// process aborts.
			if q := g.Tensors[op.Inputs[1]].Quant; q != nil && len(q.Scale) > 1 {
				return &UnsupportedError{fmt.Sprintf("operator %d (FULLY_CONNECTED) has per-channel quantized weights, on which Arm NN 20.08 aborts", i)}
			}
		}
		for j, in := range op.Inputs {
			if in < 0 && !(j == 2 && optionalBias[op.Code.Builtin]) {
				return &UnsupportedError{fmt.Sprintf("operator %d (%s) omits input %d, which Arm NN 20.08 cannot take", i, op.Code.Name(), j)}
			}
		}
	}
	for i := range g.Tensors {
		if t := &g.Tensors[i]; t.IsVariable {
			return &UnsupportedError{fmt.Sprintf("tensor %d %q is a variable (state carried between invocations), which Arm NN does not keep", i, t.Name)}
		}
	}
	raw := m.Bytes()
	if uint64(len(raw)) > math.MaxUint32 {
		return &UnsupportedError{"models over 4 GiB are beyond Arm NN's parser"}
	}
	fb := tflite.GetRootAsModel(raw, 0)
	var b tflite.Buffer
	for i := range fb.BuffersLength() {
		fb.Buffers(&b, i)
		if b.Offset() > 1 {
			return &UnsupportedError{fmt.Sprintf("buffer %d is stored after the flatbuffer (offset/size), which Arm NN 20.08 does not read", i)}
		}
	}
	return nil
}

// Prepare returns the model's file as Arm NN should see it: a copy, with
// the incompatibilities Arm NN 20.08 trips over patched, and one note per
// patch. Today that is per-axis quantized vectors (biases) whose
// quantized_dimension is not 0: converters copy the filter's axis onto the
// bias (person_detect's 14 biases say 3); a vector has one axis, TFLM and
// edged's reader take 0, and Arm NN refuses anything else. The model must
// come from runtime.LoadModel, which verified the flatbuffer.
func Prepare(m *runtime.Model) ([]byte, []string) {
	buf := slices.Clone(m.Bytes())
	fb := tflite.GetRootAsModel(buf, 0)
	var notes []string
	var sg tflite.SubGraph
	var t tflite.Tensor
	var q tflite.QuantizationParameters
	for s := range fb.SubgraphsLength() {
		fb.Subgraphs(&sg, s)
		for i := range sg.TensorsLength() {
			sg.Tensors(&t, i)
			if t.ShapeLength() != 1 || t.Quantization(&q) == nil || q.ScaleLength() < 2 {
				continue
			}
			if qd := q.QuantizedDimension(); qd != 0 && q.MutateQuantizedDimension(0) {
				notes = append(notes, fmt.Sprintf("subgraph %d tensor %d %q: quantized_dimension %d set to 0 (a per-axis vector)", s, i, t.Name(), qd))
			}
		}
	}
	return buf, notes
}
