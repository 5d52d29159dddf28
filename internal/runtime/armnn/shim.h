//go:build armnn

// A plain C interface to Arm NN for edged's cgo code: opaque handles, data
// copied in and out (Arm NN never holds memory it was handed), and every
// C++ exception caught at this boundary. Each function returns
// EDGED_ARMNN_OK or an error code; with an error, *err points at a message
// from malloc that the caller frees.

#ifndef EDGED_ARMNN_SHIM_H
#define EDGED_ARMNN_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
	EDGED_ARMNN_OK = 0,
	EDGED_ARMNN_E_ARG = 1,        // a bad argument (index out of range, size mismatch)
	EDGED_ARMNN_E_NO_BACKEND = 2, // none of the wanted compute backends is available
	EDGED_ARMNN_E_PARSE = 3,      // the TfLite parser refused the model
	EDGED_ARMNN_E_OPTIMIZE = 4,   // no backend supports some layer
	EDGED_ARMNN_E_LOAD = 5,       // the runtime could not load the network
	EDGED_ARMNN_E_RUN = 6,        // EnqueueWorkload failed
	EDGED_ARMNN_E_EXCEPTION = 7   // any other exception
};

typedef struct edged_armnn_runtime edged_armnn_runtime;
typedef struct edged_armnn_model edged_armnn_model;

#define EDGED_ARMNN_MAX_RANK 8

typedef struct {
	int32_t dtype; // armnn::DataType
	uint32_t rank;
	uint32_t dims[EDGED_ARMNN_MAX_RANK];
	uint64_t bytes;
	float scale;
	int32_t offset;
	uint32_t num_scales; // > 1: per-axis quantization
} edged_armnn_tensor_info;

// edged_armnn_version is the Arm NN library version ("22.0.0").
const char* edged_armnn_version(void);

// edged_armnn_runtime_new silences Arm NN's logging, creates a runtime
// (dynamic backends from backend_path when it is not empty) and lists the
// compute backends it found, comma separated, in *backends (malloc'd). A
// runtime that found none is an error: a wrong backend path leaves none.
int edged_armnn_runtime_new(const char* backend_path, edged_armnn_runtime** out, char** backends, char** err);
void edged_armnn_runtime_free(edged_armnn_runtime* rt);

// edged_armnn_model_new parses a .tflite flatbuffer (copied), optimizes it
// for the preferred backends (comma separated; those the runtime lacks are
// skipped) and loads it. Inputs and outputs are bound by tensor index in
// subgraph 0 (binding id = index << 8, as Arm NN's TfLite parser makes
// them); their infos come from the loaded network. *used (malloc'd) names
// the backends the network's layers were assigned to.
int edged_armnn_model_new(edged_armnn_runtime* rt, const uint8_t* data, size_t len, const char* prefs,
	const int32_t* inputs, size_t n_inputs, const int32_t* outputs, size_t n_outputs,
	edged_armnn_model** out, char** used, char** err);
void edged_armnn_model_free(edged_armnn_model* m);

// edged_armnn_model_info describes input (output = 0) or output i.
int edged_armnn_model_info(edged_armnn_model* m, int output, size_t i, edged_armnn_tensor_info* info, char** err);

// edged_armnn_set_input copies len bytes into input i; len must be its size.
int edged_armnn_set_input(edged_armnn_model* m, size_t i, const void* data, size_t len, char** err);

// edged_armnn_invoke runs the network on the inputs set.
int edged_armnn_invoke(edged_armnn_model* m, char** err);

// edged_armnn_get_output copies output i (len bytes, its size) into data.
int edged_armnn_get_output(edged_armnn_model* m, size_t i, void* data, size_t len, char** err);

#ifdef __cplusplus
}
#endif

#endif
