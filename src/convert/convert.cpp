#include "aero/convert/convert.h"

#include <cctype>
#include <functional>
#include <map>

#include "aero/error.h"
#include "aero/format/aero_model.h"
#include "aero/format/model_source.h"
#include "aero/format/safetensors.h"
#include "aero/parallel.h"
#include "convert/out_tensor.h"

namespace aero::convert {

using format::ModelSource;
using format::SourceFormat;

OutputKind output_kind(const std::filesystem::path& out, const std::string& to) {
  if (to == "aero") return OutputKind::Aero;
  if (to == "aeroset") return OutputKind::AeroSet;
  if (to == "gguf") return OutputKind::Gguf;
  if (to == "safetensors") return OutputKind::Safetensors;
  if (!to.empty()) fail("unknown output format '{}' (expected aero, aeroset, gguf or safetensors)", to);
  std::error_code ec;
  if (out.extension() == ".aero") return OutputKind::Aero;
  if (out.extension() == ".gguf") return OutputKind::Gguf;
  if (out.extension() == ".safetensors") return OutputKind::Safetensors;
  if (out.filename() == "model.aeroset.json" || std::filesystem::is_directory(out, ec) || out.extension().empty())
    return OutputKind::AeroSet;
  fail("{}: cannot tell the output format from its name; use --to aero|aeroset|gguf|safetensors", out.string());
}

namespace {

// Tensor data is streamed through MappedFile::stream: converting a 100 GB model needs no
// more resident memory than a 1 GB one.
format::WriteSummary write_aero_kind(const std::filesystem::path& out, OutputKind kind,
                                     const format::ModelDescription& model,
                                     const std::vector<format::TensorWrite>& tensors, const ConvertOptions& options) {
  if (kind == OutputKind::Aero) return format::write_aero(out, model, tensors, options.write);
  auto dir = out.filename() == "model.aeroset.json" ? out.parent_path() : out;
  return format::write_aeroset(dir, model, tensors, options.write, options.part_shards);
}

std::vector<OutTensor> as_is(const ModelSource& src) {
  std::vector<OutTensor> out;
  for (const auto& t : src.tensors())
    out.push_back({t.name, t.dtype, t.ggml_type, t.shape, t.data.size(),
                   [data = t.data](const auto& emit) { MappedFile::stream(data, emit); }});
  return out;
}

// The block format one tensor gets under a recipe (llama.cpp's llama_tensor_get_type for the
// llama family: output head; attn_v and ffn_down by layer; the rest the base type).
quant::GgmlType tensor_quant_type(const QuantRecipe& recipe, const std::string& name, int layer, int n_layers,
                                  bool tied_embeddings) {
  if (!recipe.k_mix) return recipe.base;
  auto ends = [&](std::string_view a, std::string_view b) { return name.ends_with(a) || name.ends_with(b); };
  auto more_bits = [&] { return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2; };
  if (name == "output.weight" || name == "lm_head.weight") return quant::GgmlType::Q6_K;
  if (tied_embeddings && (name == "token_embd.weight" || name == "model.embed_tokens.weight")) return quant::GgmlType::Q6_K;
  if (layer >= 0 && (ends("attn_v.weight", "v_proj.weight") || ends("ffn_down.weight", "down_proj.weight")) && more_bits())
    return quant::GgmlType::Q6_K;
  return recipe.base;
}

// Layer index from "blk.N." (GGUF) or "layers.N." (HF); -1 for tensors outside the layers.
int layer_of(const std::string& name) {
  for (std::string_view prefix : {"blk.", "layers."}) {
    auto at = name.find(prefix);
    if (at == std::string::npos) continue;
    int layer = 0, digits = 0;
    for (std::size_t i = at + prefix.size(); i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])); ++i, ++digits)
      layer = layer * 10 + (name[i] - '0');
    if (digits > 0 && digits < 7) return layer;
  }
  return -1;
}

// llama.cpp's fallback when rows are not whole 256-element blocks.
quant::GgmlType fallback_for(quant::GgmlType type) {
  switch (type) {
    case quant::GgmlType::Q2_K:
    case quant::GgmlType::Q3_K:
    case quant::GgmlType::IQ4_XS: return quant::GgmlType::IQ4_NL;
    case quant::GgmlType::Q4_K: return quant::GgmlType::Q5_0;
    case quant::GgmlType::Q5_K: return quant::GgmlType::Q5_1;
    case quant::GgmlType::Q6_K: return quant::GgmlType::Q8_0;
    default: return type;
  }
}

// Float matrices become blocks, one row decoded and re-encoded at a time.
std::vector<OutTensor> quantized(const ModelSource& src, const QuantRecipe& recipe) {
  auto base = quant::type_traits(static_cast<std::uint32_t>(recipe.base));
  if (!base || !base->encode) fail("no quantizer for {} yet (available: {})", base ? base->name : "this type", kQuantRecipeNames);
  int n_layers = 0;
  bool has_output = false;
  for (const auto& t : src.tensors()) {
    n_layers = std::max(n_layers, layer_of(t.name) + 1);
    has_output = has_output || t.name == "output.weight" || t.name == "lm_head.weight";
  }
  std::vector<OutTensor> out = as_is(src);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto& t = src.tensors()[i];
    const bool is_float = t.dtype == format::DType::F32 || t.dtype == format::DType::F16 || t.dtype == format::DType::BF16;
    if (!is_float || t.shape.size() < 2 || t.shape.back() == 0 || is_router_tensor(t.name)) continue;
    const std::uint64_t cols = t.shape.back(), rows = t.data.size() / (cols * format::dtype_size(t.dtype));
    auto type = tensor_quant_type(recipe, t.name, layer_of(t.name), n_layers, !has_output);
    if (cols % quant::type_traits(static_cast<std::uint32_t>(type))->block_elements != 0) type = fallback_for(type);
    const auto traits = quant::type_traits(static_cast<std::uint32_t>(type));
    if (!traits || !traits->encode || cols % traits->block_elements != 0) continue;
    const std::uint64_t row_out = *quant::row_bytes(*traits, cols);
    const auto source_type = *format::ggml_type_of(t.dtype, -1);
    out[i].dtype = format::DType::Packed;
    out[i].ggml_type = static_cast<int>(type);
    out[i].size = rows * row_out;
    out[i].produce = [data = t.data, cols, rows, row_out, source_type, type](const auto& emit) {
      const std::size_t row_in = data.size() / rows;
      const unsigned threads = default_thread_count();
      std::vector<std::uint8_t> blocks;
      // Source rows in 8 MiB pieces, released after use: constant memory for any model size.
      // Each piece's rows are quantized on every core, then written in order.
      const std::uint64_t rows_per_piece = std::max<std::uint64_t>(1, (8u << 20) / row_in);
      MappedFile::stream(data, [&](std::span<const std::uint8_t> piece) {
        const std::size_t n = piece.size() / row_in;
        blocks.resize(n * row_out);
        const std::size_t per_job = (n + threads - 1) / threads;
        parallel_for(threads, threads, [&](std::size_t job) {
          std::vector<float> f32(cols);
          for (std::size_t r = job * per_job; r < std::min(n, (job + 1) * per_job); ++r) {
            quant::decode_to_f32(source_type, piece.subspan(r * row_in, row_in), f32);
            quant::encode_from_f32(type, f32, std::span(blocks).subspan(r * row_out, row_out));
          }
        });
        emit(std::span<const std::uint8_t>(blocks));
      }, rows_per_piece * row_in);
    };
  }
  return out;
}

std::uint64_t total_bytes(const std::vector<OutTensor>& tensors) {
  std::uint64_t n = 0;
  for (const auto& t : tensors) n += t.size;
  return n;
}

// AERO out from any source: GGUF-ordered shapes and quant descriptors for GGUF origins, as the
// reference converter writes them; metadata in optional chunks so the file is self-contained.
ConvertSummary to_aero(const ModelSource& src, const std::vector<OutTensor>& out_tensors,
                       const std::filesystem::path& out, OutputKind kind, const ConvertOptions& options) {
  const auto& meta = src.metadata();
  format::ModelDescription model;
  model.name = meta.name.empty() ? "converted" : meta.name;
  model.architecture = meta.architecture.empty() ? "unknown" : meta.architecture;
  const bool gguf_order = src.native_order() == format::ShapeOrder::Gguf;
  model.meta["source_format"] = gguf_order ? "gguf" : "safetensors";

  std::map<int, int> quant_ids;  // ggml type -> descriptor id, in order of first use
  Json descriptors = Json::array();
  std::vector<format::TensorWrite> tensors;
  for (const auto& t : out_tensors) {
    format::TensorWrite w;
    w.name = t.name;
    w.dtype = t.dtype;
    w.ggml_type = t.ggml_type;
    w.shape = t.shape;
    if (gguf_order) std::reverse(w.shape.begin(), w.shape.end());
    w.data_len = t.size;
    w.write_data = [&t](format::ByteSink& sink) { t.produce([&](auto piece) { sink.write(piece); }); };
    if (t.dtype == format::DType::Packed) {
      auto [it, added] = quant_ids.emplace(t.ggml_type, static_cast<int>(quant_ids.size()));
      if (added)
        descriptors.push_back(Json{{"codec", "ggml"},
                                   {"id", it->second},
                                   {"params", Json{{"ggml_type", t.ggml_type}}},
                                   {"quant_name", quant::type_traits(static_cast<std::uint32_t>(t.ggml_type))->name}});
      w.quant_id = it->second;
    }
    tensors.push_back(std::move(w));
  }
  if (!descriptors.empty()) model.meta["quant_descriptors"] = std::move(descriptors);
  if (meta.gguf)
    model.extra_chunks.push_back({format::kGgufMetadataFourcc, format::kGgufMetadataChunk, "gguf_metadata",
                                  to_msgpack(meta.gguf->to_json()), true});
  for (const auto& [name, text] : meta.hf_files)
    model.extra_chunks.push_back({format::kHfFileFourcc, format::kHfFilePrefix + name, "hf_file", text, true});
  if (!options.model_name.empty()) model.name = options.model_name;
  if (!options.architecture.empty()) model.architecture = options.architecture;
  auto summary = write_aero_kind(out, kind, model, tensors, options);
  return {summary.file_bytes, tensors.size()};
}

// `file_type`: llama.cpp's general.file_type for quantized output (-1: keep the source's).
ConvertSummary to_gguf(const ModelSource& src, const std::vector<OutTensor>& out_tensors,
                       const std::filesystem::path& out, const ConvertOptions& options, int file_type = -1) {
  std::vector<OutTensor> renamed;
  format::GgufMetadata metadata;
  if (src.metadata().gguf) {
    metadata = *src.metadata().gguf;
  } else if (src.metadata().hf_files.contains("config.json")) {
    renamed = hf_to_gguf(src, out_tensors, metadata);  // names, hyper-parameters, rotary layout
  } else {
    fail("GGUF output needs the model's hyper-parameters: the source has neither GGUF metadata nor a config.json "
         "(name a GGUF or HF folder with --config)");
  }
  const std::vector<OutTensor>& gguf_tensors = renamed.empty() ? out_tensors : renamed;
  if (file_type >= 0) {
    metadata.set({"general.file_type", format::GgufType::U32, {}, file_type});
    metadata.set({"general.quantization_version", format::GgufType::U32, {}, 2});
  }
  if (!options.model_name.empty()) metadata.set({"general.name", format::GgufType::String, {}, options.model_name});
  std::vector<format::GgufTensorWrite> tensors;
  for (const auto& t : gguf_tensors) {
    auto type = format::ggml_type_of(t.dtype, t.ggml_type);
    if (!type) fail("tensor '{}': GGUF has no type for {}", t.name, format::dtype_name(t.dtype));
    tensors.push_back({t.name, *type, {t.shape.rbegin(), t.shape.rend()}, t.size, [&t, &options](auto emit) {
                         t.produce([&](auto piece) {
                           emit(piece);
                           if (options.on_progress) options.on_progress(piece.size());
                         });
                       }});
  }
  return {format::write_gguf(out, metadata, tensors), tensors.size()};
}

ConvertSummary to_safetensors(const ModelSource& src, const std::filesystem::path& out,
                              const ConvertOptions& options) {
  std::vector<format::SafetensorsTensorWrite> tensors;
  for (const auto& t : src.tensors()) tensors.push_back({t.name, t.dtype, t.shape, t.data});
  return {format::write_safetensors(out, tensors, Json{{"format", "pt"}}, options.on_progress), tensors.size()};
}

std::unique_ptr<ModelSource> open_with_sidecar(const std::filesystem::path& in, const ConvertOptions& options) {
  auto src = ModelSource::open(in);
  if (!options.config.empty()) {
    auto sidecar = ModelSource::open(options.config);
    if (sidecar->metadata().empty())
      fail("{}: carries no metadata to borrow (expected an HF folder or a GGUF file)", options.config.string());
    src->adopt_metadata(sidecar->metadata());
  }
  return src;
}

}  // namespace

ConvertSummary convert(const std::filesystem::path& in, const std::filesystem::path& out, OutputKind kind,
                       const ConvertOptions& options) {
  ConvertOptions opts = options;
  opts.write.progress = options.on_progress;
  const bool to_container = kind == OutputKind::Aero || kind == OutputKind::AeroSet;

  // .aero to .aero without a sidecar: rewrite everything as it is (meta, extra chunks, layout
  // conventions), which makes the rewrite of an aero file byte-identical.
  if (to_container && options.config.empty() && format::looks_like_aero(in)) {
    auto model = format::AeroModel::open(in);
    auto description = format::describe(model);
    auto tensors = format::tensors_of(model);
    for (auto& t : tensors)
      t.write_data = [inner = t.write_data](format::ByteSink& sink) {
        struct Releasing : format::ByteSink {
          format::ByteSink& next;
          explicit Releasing(format::ByteSink& n) : next(n) {}
          void write(std::span<const std::uint8_t> b) override { MappedFile::stream(b, [&](auto p) { next.write(p); }); }
        } releasing(sink);
        inner(releasing);
      };
    if (!opts.model_name.empty()) description.name = opts.model_name;
    if (!opts.architecture.empty()) description.architecture = opts.architecture;
    std::uint64_t total = 0;
    for (const auto& t : tensors) total += t.data_len;
    if (opts.on_start) opts.on_start(total);
    auto summary = write_aero_kind(out, kind, description, tensors, opts);
    return {summary.file_bytes, tensors.size()};
  }

  auto src = open_with_sidecar(in, options);
  switch (kind) {
    case OutputKind::Aero:
    case OutputKind::AeroSet:
    case OutputKind::Gguf: {
      auto tensors = as_is(*src);
      if (opts.on_start) opts.on_start(total_bytes(tensors));
      return kind == OutputKind::Gguf ? to_gguf(*src, tensors, out, opts) : to_aero(*src, tensors, out, kind, opts);
    }
    case OutputKind::Safetensors:
      if (opts.on_start) opts.on_start(total_bytes(as_is(*src)));
      return to_safetensors(*src, out, opts);
  }
  return {};
}

namespace {
// llama.cpp's llama_ftype numbers, which GGUF readers show as the file's type.
int llama_file_type(const QuantRecipe& r) {
  using T = quant::GgmlType;
  switch (r.base) {
    case T::Q4_0: return 2;
    case T::Q4_1: return 3;
    case T::Q8_0: return 7;
    case T::Q5_0: return 8;
    case T::Q5_1: return 9;
    case T::Q2_K: return 10;
    case T::Q3_K: return 11;                  // Q3_K_S: all Q3_K
    case T::Q4_K: return r.k_mix ? 15 : 14;  // Q4_K_M : Q4_K_S
    case T::Q5_K: return r.k_mix ? 17 : 16;  // Q5_K_M : Q5_K_S
    case T::Q6_K: return 18;
    case T::IQ4_NL: return 25;
    case T::IQ4_XS: return 30;
    default: return -1;
  }
}
}  // namespace

QuantRecipe quant_recipe(std::string_view name) {
  std::string upper(name);
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (upper == "Q4_K_M") return {quant::GgmlType::Q4_K, true};
  if (upper == "Q5_K_M") return {quant::GgmlType::Q5_K, true};
  auto traits = quant::type_traits_by_name(upper);
  if (!traits || !traits->quantized || !traits->encode || traits->type == quant::GgmlType::Q8_K)
    fail("unknown or unsupported quantization type '{}' (available: {})", name, kQuantRecipeNames);
  return {traits->type};
}

ConvertSummary quantize(const std::filesystem::path& in, const std::filesystem::path& out, OutputKind kind,
                        const QuantRecipe& recipe, const ConvertOptions& options) {
  ConvertOptions opts = options;
  opts.write.progress = options.on_progress;
  auto src = open_with_sidecar(in, options);
  auto tensors = quantized(*src, recipe);
  if (opts.on_start) opts.on_start(total_bytes(tensors));
  switch (kind) {
    case OutputKind::Aero:
    case OutputKind::AeroSet: return to_aero(*src, tensors, out, kind, opts);
    case OutputKind::Gguf: return to_gguf(*src, tensors, out, opts, llama_file_type(recipe));
    case OutputKind::Safetensors: fail("safetensors has no type for block-quantized data: write .aero or .gguf");
  }
  return {};
}

}  // namespace aero::convert
