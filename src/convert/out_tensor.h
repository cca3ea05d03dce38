// A tensor on its way out of a conversion: what it is, and how its bytes are produced (in
// pieces, so that no whole model is ever held in memory).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "aero/format/aero.h"
#include "aero/format/gguf.h"
#include "aero/format/model_source.h"
#include "aero/model/spec.h"

namespace aero::convert {

using ByteEmitter = std::function<void(std::span<const std::uint8_t>)>;

struct OutTensor {
  std::string name;
  format::DType dtype;
  int ggml_type;
  std::vector<std::uint64_t> shape;  // row-major
  std::uint64_t size;
  std::function<void(const ByteEmitter&)> produce;
};

// GGUF's architecture name for a family, and its hyper-parameter keys ({arch}.block_count,
// ...; bos/eos ids) for `spec`, as llama.cpp's converter writes them.
std::string gguf_architecture(const model::ModelSpec& spec);
// A mixture of experts' router (HF's block_sparse_moe.gate / mlp.gate, GGUF's ffn_gate_inp):
// kept in its float type by quantization, as llama-quantize keeps it (it picks the experts).
bool is_router_tensor(const std::string& name);
void put_gguf_hyper_parameters(const model::ModelSpec& spec, const std::string& name, format::GgufMetadata& metadata);

// A Hugging Face model's tensors as llama.cpp names and lays them out (llama-family Q/K rows
// permuted for its interleaved rotary pairs), and `metadata` filled with the GGUF keys of
// its hyper-parameters. Throws for tensors that have no GGUF name.
std::vector<OutTensor> hf_to_gguf(const format::ModelSource& src, const std::vector<OutTensor>& tensors,
                                  format::GgufMetadata& metadata);

}  // namespace aero::convert
