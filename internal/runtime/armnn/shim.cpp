//go:build armnn

// The C++ side of edged's Arm NN backend; see shim.h.

#include "shim.h"

#include <armnn/ArmNN.hpp>
#include <armnn/Exceptions.hpp>
#include <armnn/Utils.hpp>
#include <armnnTfLiteParser/ITfLiteParser.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <set>
#include <sstream>
#include <string>
#include <vector>

struct edged_armnn_runtime {
	armnn::IRuntimePtr rt;
	std::vector<armnn::BackendId> available;
	edged_armnn_runtime() : rt(nullptr, &armnn::IRuntime::Destroy) {}
};

struct edged_armnn_model {
	edged_armnn_runtime* rt = nullptr;
	armnn::NetworkId id = 0;
	bool loaded = false;
	std::vector<armnn::TensorInfo> in_info, out_info;
	std::vector<std::vector<uint8_t>> in_buf, out_buf;
	armnn::InputTensors in_tensors;
	armnn::OutputTensors out_tensors;
};

namespace {

char* dup_string(const std::string& s) {
	char* p = static_cast<char*>(std::malloc(s.size() + 1));
	if (p != nullptr) {
		std::memcpy(p, s.c_str(), s.size() + 1);
	}
	return p;
}

int fail(char** err, int code, const std::string& msg) {
	if (err != nullptr) {
		*err = dup_string(msg);
	}
	return code;
}

// guard runs f, turning every exception into an error code and message.
template <typename F>
int guard(char** err, int code, const char* what, F f) {
	try {
		return f();
	} catch (const armnn::Exception& e) {
		return fail(err, code, std::string(what) + ": " + e.what());
	} catch (const std::exception& e) {
		return fail(err, code, std::string(what) + ": " + e.what());
	} catch (...) {
		return fail(err, code, std::string(what) + ": unknown C++ exception");
	}
}

std::vector<std::string> split(const char* csv) {
	std::vector<std::string> out;
	if (csv == nullptr) {
		return out;
	}
	std::stringstream ss(csv);
	std::string item;
	while (std::getline(ss, item, ',')) {
		if (!item.empty()) {
			out.push_back(item);
		}
	}
	return out;
}

std::string join(const std::vector<std::string>& v) {
	std::string s;
	for (size_t i = 0; i < v.size(); i++) {
		if (i > 0) {
			s += ",";
		}
		s += v[i];
	}
	return s;
}

// Arm NN's TfLite parser names a tensor's binding point after its index in
// the subgraph and the subgraph's index.
armnn::LayerBindingId binding_id(int32_t tensor) {
	return static_cast<armnn::LayerBindingId>((tensor << 8) + 0);
}

// backends_in_dot lists the BackendID fields of an optimized network's dot
// rendering: the backends its layers were assigned to.
std::vector<std::string> backends_in_dot(const std::string& dot) {
	std::set<std::string> seen;
	const std::string key = "BackendID";
	size_t pos = 0;
	while ((pos = dot.find(key, pos)) != std::string::npos) {
		pos += key.size();
		while (pos < dot.size() && (dot[pos] == ' ' || dot[pos] == ':' || dot[pos] == '=' || dot[pos] == '"' || dot[pos] == '\\')) {
			pos++;
		}
		size_t end = pos;
		while (end < dot.size() && (std::isalnum(static_cast<unsigned char>(dot[end])) || dot[end] == '_')) {
			end++;
		}
		if (end > pos) {
			seen.insert(dot.substr(pos, end - pos));
		}
	}
	return std::vector<std::string>(seen.begin(), seen.end());
}

} // namespace

extern "C" {

const char* edged_armnn_version(void) { return ARMNN_VERSION; }

int edged_armnn_runtime_new(const char* backend_path, edged_armnn_runtime** out, char** backends, char** err) {
	*out = nullptr;
	*backends = nullptr;
	return guard(err, EDGED_ARMNN_E_EXCEPTION, "creating the Arm NN runtime", [&]() {
		// Arm NN logs to stdout by default; edged's stdout is its output.
		armnn::ConfigureLogging(false, false, armnn::LogSeverity::Fatal);
		armnn::IRuntime::CreationOptions opts;
		if (backend_path != nullptr && backend_path[0] != '\0') {
			opts.m_DynamicBackendsPath = backend_path;
		}
		auto r = new edged_armnn_runtime();
		try {
			r->rt = armnn::IRuntime::Create(opts);
		} catch (...) {
			delete r;
			throw;
		}
		std::vector<std::string> names;
		for (const auto& id : r->rt->GetDeviceSpec().GetSupportedBackends()) {
			r->available.push_back(id);
			names.push_back(id.Get());
		}
		std::sort(names.begin(), names.end());
		if (names.empty()) {
			delete r;
			std::string where = (backend_path != nullptr && backend_path[0] != '\0') ? std::string(backend_path) : std::string("the built-in path");
			return fail(err, EDGED_ARMNN_E_NO_BACKEND, "Arm NN found no compute backends (dynamic backends searched in " + where +
				"); install libarmnn-cpuref-backend22 (and libarmnn-cpuacc-backend22 on arm64) or fix EDGED_ARMNN_BACKEND_PATH");
		}
		*backends = dup_string(join(names));
		*out = r;
		return static_cast<int>(EDGED_ARMNN_OK);
	});
}

void edged_armnn_runtime_free(edged_armnn_runtime* rt) {
	try {
		delete rt;
	} catch (...) {
	}
}

int edged_armnn_model_new(edged_armnn_runtime* rt, const uint8_t* data, size_t len, const char* prefs,
	const int32_t* inputs, size_t n_inputs, const int32_t* outputs, size_t n_outputs,
	edged_armnn_model** out, char** used, char** err) {
	*out = nullptr;
	*used = nullptr;
	if (rt == nullptr || data == nullptr || len == 0) {
		return fail(err, EDGED_ARMNN_E_ARG, "no runtime or no model bytes");
	}
	std::vector<armnn::BackendId> wanted;
	std::vector<std::string> wanted_names;
	for (const auto& name : split(prefs)) {
		armnn::BackendId id(name);
		if (std::find(rt->available.begin(), rt->available.end(), id) != rt->available.end()) {
			wanted.push_back(id);
			wanted_names.push_back(name);
		}
	}
	if (wanted.empty()) {
		return fail(err, EDGED_ARMNN_E_NO_BACKEND, std::string("none of the preferred backends (") + (prefs ? prefs : "") + ") is available");
	}

	armnn::INetworkPtr net(nullptr, &armnn::INetwork::Destroy);
	int rc = guard(err, EDGED_ARMNN_E_PARSE, "Arm NN's TfLite parser", [&]() {
		std::vector<uint8_t> content(data, data + len);
		auto parser = armnnTfLiteParser::ITfLiteParser::Create();
		net = parser->CreateNetworkFromBinary(content);
		if (!net) {
			return fail(err, EDGED_ARMNN_E_PARSE, "Arm NN's TfLite parser returned no network");
		}
		return static_cast<int>(EDGED_ARMNN_OK);
	});
	if (rc != EDGED_ARMNN_OK) {
		return rc;
	}

	armnn::IOptimizedNetworkPtr opt(nullptr, &armnn::IOptimizedNetwork::Destroy);
	std::vector<std::string> messages;
	rc = guard(err, EDGED_ARMNN_E_OPTIMIZE, "Arm NN's optimizer", [&]() {
		opt = armnn::Optimize(*net, wanted, rt->rt->GetDeviceSpec(), armnn::OptimizerOptions(),
			armnn::Optional<std::vector<std::string>&>(messages));
		if (!opt) {
			std::string msg = "Arm NN could not optimize the network for " + join(wanted_names);
			for (const auto& m : messages) {
				msg += "; " + m;
			}
			return fail(err, EDGED_ARMNN_E_OPTIMIZE, msg);
		}
		return static_cast<int>(EDGED_ARMNN_OK);
	});
	if (rc != EDGED_ARMNN_OK) {
		return rc;
	}
	std::string used_names;
	guard(nullptr, EDGED_ARMNN_OK, "", [&]() {
		std::ostringstream dot;
		opt->SerializeToDot(dot);
		used_names = join(backends_in_dot(dot.str()));
		return static_cast<int>(EDGED_ARMNN_OK);
	});

	auto m = new edged_armnn_model();
	m->rt = rt;
	rc = guard(err, EDGED_ARMNN_E_LOAD, "loading the network into Arm NN", [&]() {
		std::string msg;
		if (rt->rt->LoadNetwork(m->id, std::move(opt), msg) != armnn::Status::Success) {
			return fail(err, EDGED_ARMNN_E_LOAD, "Arm NN could not load the network: " + msg);
		}
		m->loaded = true;
		for (size_t i = 0; i < n_inputs; i++) {
			auto bid = binding_id(inputs[i]);
			armnn::TensorInfo info = rt->rt->GetInputTensorInfo(m->id, bid);
			m->in_info.push_back(info);
			m->in_buf.emplace_back(info.GetNumBytes());
		}
		for (size_t i = 0; i < n_outputs; i++) {
			auto bid = binding_id(outputs[i]);
			armnn::TensorInfo info = rt->rt->GetOutputTensorInfo(m->id, bid);
			m->out_info.push_back(info);
			m->out_buf.emplace_back(info.GetNumBytes());
		}
		for (size_t i = 0; i < n_inputs; i++) {
			m->in_tensors.emplace_back(binding_id(inputs[i]), armnn::ConstTensor(m->in_info[i], m->in_buf[i].data()));
		}
		for (size_t i = 0; i < n_outputs; i++) {
			m->out_tensors.emplace_back(binding_id(outputs[i]), armnn::Tensor(m->out_info[i], m->out_buf[i].data()));
		}
		return static_cast<int>(EDGED_ARMNN_OK);
	});
	if (rc != EDGED_ARMNN_OK) {
		edged_armnn_model_free(m);
		return rc;
	}
	*used = dup_string(used_names.empty() ? join(wanted_names) : used_names);
	*out = m;
	return EDGED_ARMNN_OK;
}

void edged_armnn_model_free(edged_armnn_model* m) {
	if (m == nullptr) {
		return;
	}
	try {
		if (m->loaded) {
			m->rt->rt->UnloadNetwork(m->id);
		}
	} catch (...) {
	}
	try {
		delete m;
	} catch (...) {
	}
}

int edged_armnn_model_info(edged_armnn_model* m, int output, size_t i, edged_armnn_tensor_info* info, char** err) {
	return guard(err, EDGED_ARMNN_E_EXCEPTION, "tensor info", [&]() {
		const auto& list = output ? m->out_info : m->in_info;
		if (i >= list.size()) {
			return fail(err, EDGED_ARMNN_E_ARG, "tensor index out of range");
		}
		const armnn::TensorInfo& t = list[i];
		std::memset(info, 0, sizeof(*info));
		info->dtype = static_cast<int32_t>(t.GetDataType());
		const armnn::TensorShape& shape = t.GetShape();
		info->rank = shape.GetNumDimensions();
		if (info->rank > EDGED_ARMNN_MAX_RANK) {
			return fail(err, EDGED_ARMNN_E_ARG, "tensor rank above 8");
		}
		for (uint32_t d = 0; d < info->rank; d++) {
			info->dims[d] = shape[d];
		}
		info->bytes = t.GetNumBytes();
		info->num_scales = static_cast<uint32_t>(t.GetQuantizationScales().size());
		if (t.IsQuantized()) {
			info->scale = t.GetQuantizationScale();
			info->offset = t.GetQuantizationOffset();
		}
		return static_cast<int>(EDGED_ARMNN_OK);
	});
}

int edged_armnn_set_input(edged_armnn_model* m, size_t i, const void* data, size_t len, char** err) {
	if (i >= m->in_buf.size()) {
		return fail(err, EDGED_ARMNN_E_ARG, "input index out of range");
	}
	if (len != m->in_buf[i].size()) {
		return fail(err, EDGED_ARMNN_E_ARG, "input size differs from the network's");
	}
	if (len > 0) {
		std::memcpy(m->in_buf[i].data(), data, len);
	}
	return EDGED_ARMNN_OK;
}

int edged_armnn_invoke(edged_armnn_model* m, char** err) {
	return guard(err, EDGED_ARMNN_E_RUN, "Arm NN inference", [&]() {
		if (m->rt->rt->EnqueueWorkload(m->id, m->in_tensors, m->out_tensors) != armnn::Status::Success) {
			return fail(err, EDGED_ARMNN_E_RUN, "Arm NN's EnqueueWorkload failed");
		}
		return static_cast<int>(EDGED_ARMNN_OK);
	});
}

int edged_armnn_get_output(edged_armnn_model* m, size_t i, void* data, size_t len, char** err) {
	if (i >= m->out_buf.size()) {
		return fail(err, EDGED_ARMNN_E_ARG, "output index out of range");
	}
	if (len != m->out_buf[i].size()) {
		return fail(err, EDGED_ARMNN_E_ARG, "output size differs from the network's");
	}
	if (len > 0) {
		std::memcpy(data, m->out_buf[i].data(), len);
	}
	return EDGED_ARMNN_OK;
}

} // extern "C"
