// Package quantize holds the integer arithmetic that TensorFlow Lite's
// quantized kernels are defined by, and that edged's kernels and on-device
// fine-tuning share: quantized multipliers (a Q31 significand and a power of
// two), gemmlowp's rounding fixed-point operations and its exp, logistic and
// tanh, and the scalar quantize / dequantize rules.
//
// Every function here reproduces the arithmetic of TensorFlow Lite Micro's
// reference kernels bit for bit (tensorflow/lite/kernels/internal/common.h,
// quantization_util.cc and gemmlowp's fixedpoint.h, built without
// TFLITE_SINGLE_ROUNDING, as TFLM builds them). Where C++ relies on two's
// complement wrap-around, Go's defined wrap-around gives the same bits.
package quantize
