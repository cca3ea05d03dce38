// Where a tokenizer comes from: a model's metadata (GGUF keys win, as llama.cpp reads them;
// else the Hugging Face files), or a tokenizer.json / folder given directly.
#include <filesystem>

#include "aero/error.h"
#include "aero/mapped_file.h"
#include "aero/tokenizer/tokenizer.h"

namespace aero::tokenizer {

namespace {
constexpr std::uint64_t kMaxTokenizerJson = 256ull << 20;

std::string file_or_empty(const format::ModelMetadata& m, const char* name) {
  auto it = m.hf_files.find(name);
  return it == m.hf_files.end() ? std::string() : it->second;
}
}  // namespace

std::optional<Vocab> vocab_from_metadata(const format::ModelMetadata& m) {
  if (m.gguf && m.gguf->find("tokenizer.ggml.model")) return vocab_from_gguf(*m.gguf);
  if (!m.hf_files.count("tokenizer.json")) return std::nullopt;
  Vocab v = vocab_from_hf(m.hf_files.at("tokenizer.json"), file_or_empty(m, "tokenizer_config.json"));
  if (auto jinja = file_or_empty(m, "chat_template.jinja"); !jinja.empty()) v.chat_template = jinja;
  return v;
}

Tokenizer Tokenizer::from_metadata(const format::ModelMetadata& m) {
  if (auto v = vocab_from_metadata(m)) return Tokenizer(std::move(*v));
  fail("the model carries no tokenizer (no GGUF tokenizer.* keys, no tokenizer.json); give one with --tokenizer");
}

Tokenizer Tokenizer::load(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path json_path;
  if (fs::is_directory(path, ec) && fs::exists(path / "tokenizer.json", ec)) json_path = path / "tokenizer.json";
  else if (path.filename() == "tokenizer.json" || path.extension() == ".json") json_path = path;
  if (!json_path.empty()) {
    format::ModelMetadata m;
    for (const char* name : {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja"}) {
      fs::path p = name == std::string("tokenizer.json") ? json_path : json_path.parent_path() / name;
      if (fs::exists(p, ec)) m.hf_files[name] = read_small_file(p, kMaxTokenizerJson);
    }
    return from_metadata(m);
  }
  return from_metadata(format::ModelSource::open(path)->metadata());
}

}  // namespace aero::tokenizer
