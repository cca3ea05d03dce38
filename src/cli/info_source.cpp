#include "cli/info_source.h"

#include <map>

#include "aero/error.h"
#include "aero/format/model_source.h"
#include "aero/model/spec.h"
#include "aero/quant/types.h"
#include "aero/tokenizer/vocab.h"
#include "cli/display.h"

namespace aero::cli {

namespace {
std::string type_text(const format::SourceTensor& t) {
  if (t.dtype != format::DType::Packed) return std::string(format::dtype_name(t.dtype));
  if (auto traits = quant::type_traits(static_cast<std::uint32_t>(t.ggml_type))) return std::string(traits->name);
  return fmt::format("ggml#{}", t.ggml_type);
}
}  // namespace

void print_source_info(const std::string& path, bool list_tensors, bool json) {
  auto src = format::ModelSource::open(path);
  std::map<std::string, std::pair<std::size_t, std::uint64_t>> types;
  std::uint64_t total = 0;
  for (const auto& t : src->tensors()) {
    auto& [count, bytes] = types[type_text(t)];
    ++count;
    bytes += t.data.size();
    total += t.data.size();
  }
  // What the engine and tokenizer would make of it; a model they cannot read is still described.
  std::optional<model::ModelSpec> spec;
  std::string spec_error, tokenizer_text = "none";
  try {
    spec = model::read_spec(*src);
  } catch (const Error& e) {
    spec_error = e.what();
  }
  std::optional<tokenizer::Vocab> vocab;
  try {
    vocab = tokenizer::vocab_from_metadata(src->metadata());
    if (vocab)
      tokenizer_text = fmt::format("{} ({} tokens{})", vocab->algorithm == tokenizer::Algorithm::Spm ? "SentencePiece" : "byte-level BPE",
                                   vocab->tokens.size(), vocab->chat_template.empty() ? "" : ", chat template");
  } catch (const Error& e) {
    tokenizer_text = std::string("unreadable: ") + e.what();
  }

  if (json) {
    Json j = {{"path", path},
              {"container", std::string(format::source_format_name(src->format()))},
              {"model_name", src->metadata().name},
              {"architecture", src->metadata().architecture},
              {"tensor_count", src->tensors().size()},
              {"tensor_bytes", total},
              {"tokenizer", tokenizer_text}};
    Json by_type = Json::object();
    for (const auto& [name, ct] : types) by_type[name] = Json{{"tensors", ct.first}, {"bytes", ct.second}};
    j["types"] = by_type;
    if (spec)
      j["hyper_parameters"] = Json{{"family", std::string(model::family_name(spec->family))}, {"layers", spec->layers},
                                   {"hidden", spec->hidden}, {"heads", spec->heads}, {"kv_heads", spec->kv_heads},
                                   {"head_dim", spec->head_dim}, {"ffn", spec->ffn}, {"vocab", spec->vocab},
                                   {"context", spec->context}, {"rope_theta", spec->rope_theta}};
    if (spec && spec->moe())
      j["hyper_parameters"]["experts"] = Json{{"count", spec->experts}, {"per_token", spec->experts_used}, {"ffn", spec->expert_ffn}};
    if (list_tensors) {
      Json list = Json::array();
      for (const auto& t : src->tensors())
        list.push_back(Json{{"name", t.name}, {"type", type_text(t)}, {"shape", t.shape}, {"bytes", t.data.size()}});
      j["tensors"] = std::move(list);
    }
    fmt::print("{}\n", to_pretty_json(j));
    return;
  }
  fmt::print("file:          {}\n", path);
  fmt::print("container:     {}\n", format::source_format_name(src->format()));
  fmt::print("model:         {}\n", src->metadata().name.empty() ? "(unnamed)" : src->metadata().name);
  fmt::print("architecture:  {}\n", src->metadata().architecture.empty() ? "(unknown)" : src->metadata().architecture);
  fmt::print("tensors:       {} ({})\n", src->tensors().size(), human_bytes(total));
  for (const auto& [name, ct] : types) fmt::print("  {:<12} {:>6} tensors  {:>12}\n", name, ct.first, human_bytes(ct.second));
  if (spec) {
    fmt::print("shape:         {} layers, hidden {}, {} heads ({} key/value, head size {}), ffn {}, vocabulary {}, context {}\n",
               spec->layers, spec->hidden, spec->heads, spec->kv_heads, spec->head_dim, spec->ffn, spec->vocab, spec->context);
    if (spec->moe())
      fmt::print("experts:       {} per layer, {} per token, each {} wide{}\n", spec->experts, spec->experts_used,
                 spec->expert_ffn, spec->normalize_routing ? " (weights renormalized)" : "");
  } else
    fmt::print("shape:         not runnable by aero: {}\n", spec_error);
  fmt::print("tokenizer:     {}\n", tokenizer_text);
  if (list_tensors) {
    fmt::print("tensors:\n");
    for (const auto& t : src->tensors())
      fmt::print("  {:<48} {:<7} {:<20} {}\n", t.name, type_text(t), shape_text(t.shape), human_bytes(t.data.size()));
  }
}

}  // namespace aero::cli
