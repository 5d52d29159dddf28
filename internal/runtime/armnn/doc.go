// Package armnn runs TensorFlow Lite models through Arm NN (Debian's
// libarmnn 20.08 packages): CpuAcc, the NEON backend, on 64-bit ARM, and
// CpuRef, the portable reference backend, everywhere. It is a delegate for
// edged's runtime: built only with -tags armnn (cgo, a small C++ shim with a
// plain C API), it registers itself as the "armnn" backend that
// runtime.OpenBackend can choose. Without the tag only the model checks
// (Check, Prepare) are compiled, so they are tested in every build.
//
// Before a model reaches Arm NN, edged's own reader has validated it
// (runtime.LoadModel: Arm NN's parser throws on malformed input), Check has
// refused what Arm NN 20.08 cannot run (operators its TfLite parser lacks,
// several subgraphs, variable tensors), and Prepare has patched known
// incompatibilities in a copy of the file. Whatever Arm NN still refuses is
// caught at the C boundary and becomes an error; the runtime then falls
// back to the pure-Go kernels.
//
// Environment: EDGED_ARMNN_BACKENDS is the comma-separated preference list
// of compute backends (default CpuAcc,CpuRef; those not installed are
// skipped); EDGED_ARMNN_BACKEND_PATH overrides where Arm NN looks for its
// dynamic backends (default: where Debian installs them).
package armnn
