package runtime

import (
	"fmt"
	"math"

	"github.com/edged/edged/internal/runtime/tflite"
)

// SAME / VALID window geometry shared by the convolution and pooling
// kernels (and any other windowed op): TensorFlow Lite's ComputeOutSize and
// ComputePaddingHeightWidth (tensorflow/lite/kernels/padding.h), matching
// TensorFlow's GetWindowedOutputSize.

// paddingValues is TfLitePaddingValues: the padding before the first row
// and column, and the extra padding (0 or 1) after the last, which SAME
// padding adds when the total padding is odd.
type paddingValues struct {
	height, width             int
	heightOffset, widthOffset int
}

// windowGeometry describes one spatial dimension of a windowed op.
type windowGeometry struct {
	in, filter, stride, dilation int
}

// effectiveFilterSize is the extent of a dilated filter.
func effectiveFilterSize(filter, dilation int) int64 {
	return (int64(filter)-1)*int64(dilation) + 1
}

// computeOutSize is the output extent of a windowed op along one dimension
// (ComputeOutSizeChecked): ceil(in/stride) for SAME, ceil((in -
// effective_filter + 1)/stride) for VALID. Invalid arguments are errors where
// TensorFlow Lite silently yields 0.
func computeOutSize(padding tflite.Padding, g windowGeometry) (int, error) {
	if g.in < 0 || g.filter <= 0 || g.stride <= 0 || g.dilation <= 0 {
		return 0, fmt.Errorf("invalid window: input size %d, filter size %d, stride %d, dilation %d (filter, stride and dilation must be positive)", g.in, g.filter, g.stride, g.dilation)
	}
	var v int64
	switch padding {
	case tflite.PaddingSAME:
		v = (int64(g.in) + int64(g.stride) - 1) / int64(g.stride)
	case tflite.PaddingVALID:
		v = (int64(g.in) + int64(g.stride) - effectiveFilterSize(g.filter, g.dilation)) / int64(g.stride)
	default:
		return 0, fmt.Errorf("padding %s is not supported (want SAME or VALID)", padding)
	}
	if v < 0 {
		v = 0 // the filter is larger than the input: TFLite rejects, we report below
	}
	if v > math.MaxInt32 {
		return 0, fmt.Errorf("output size %d is too large", v)
	}
	return int(v), nil
}

// computePaddingWithOffset is the padding before the window along one
// dimension and the odd extra after it (ComputePaddingWithOffsetChecked).
func computePaddingWithOffset(g windowGeometry, out int) (pad, offset int) {
	total := (int64(out)-1)*int64(g.stride) + effectiveFilterSize(g.filter, g.dilation) - int64(g.in)
	if total < 0 {
		total = 0
	}
	return int(total / 2), int(total % 2)
}

// computePaddingHeightWidth computes the output height and width of a
// windowed op over an NHWC input and its padding, as
// ComputePaddingHeightWidth does. A VALID window larger than the input (no
// output rows or columns) is an error: TensorFlow Lite would produce an
// empty tensor the rest of the graph cannot use.
func computePaddingHeightWidth(padding tflite.Padding, h, w windowGeometry) (outH, outW int, pad paddingValues, err error) {
	if outW, err = computeOutSize(padding, w); err != nil {
		return 0, 0, pad, fmt.Errorf("width: %w", err)
	}
	if outH, err = computeOutSize(padding, h); err != nil {
		return 0, 0, pad, fmt.Errorf("height: %w", err)
	}
	if (outH == 0 && h.in > 0) || (outW == 0 && w.in > 0) {
		return 0, 0, pad, fmt.Errorf("%s window %d×%d (dilation %d×%d) does not fit the %d×%d input", padding, h.filter, w.filter, h.dilation, w.dilation, h.in, w.in)
	}
	pad.height, pad.heightOffset = computePaddingWithOffset(h, outH)
	pad.width, pad.widthOffset = computePaddingWithOffset(w, outW)
	return outH, outW, pad, nil
}
