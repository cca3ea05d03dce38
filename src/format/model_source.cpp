#include "aero/format/model_source.h"

#include <fstream>

#include <fmt/format.h>

#include "aero/error.h"
#include "aero/hash.h"
#include "aero/format/aero_model.h"
#include "aero/format/model_name.h"
#include "aero/format/safetensors.h"
#include "format/aero/integrity.h"

namespace aero::format {

std::string_view source_format_name(SourceFormat format) {
  switch (format) {
    case SourceFormat::Aero: return "aero";
    case SourceFormat::Gguf: return "gguf";
    case SourceFormat::Safetensors: return "safetensors";
    case SourceFormat::HfFolder: return "hf";
  }
  return "?";
}

ElementType element_type_of(quant::GgmlType type) {
  using G = quant::GgmlType;
  switch (type) {
    case G::F32: return {DType::F32, -1};
    case G::F16: return {DType::F16, -1};
    case G::BF16: return {DType::BF16, -1};
    case G::F64: return {DType::F64, -1};
    case G::I8: return {DType::I8, -1};
    case G::I16: return {DType::I16, -1};
    case G::I32: return {DType::I32, -1};
    case G::I64: return {DType::I64, -1};
    default: return {DType::Packed, static_cast<int>(type)};
  }
}

std::optional<quant::GgmlType> ggml_type_of(DType dtype, int ggml_type) {
  using G = quant::GgmlType;
  switch (dtype) {
    case DType::F32: return G::F32;
    case DType::F16: return G::F16;
    case DType::BF16: return G::BF16;
    case DType::F64: return G::F64;
    case DType::I8: return G::I8;
    case DType::I16: return G::I16;
    case DType::I32: return G::I32;
    case DType::I64: return G::I64;
    case DType::Packed:
      if (auto t = quant::type_traits(static_cast<std::uint32_t>(ggml_type))) return t->type;
      return std::nullopt;
    default: return std::nullopt;
  }
}

const SourceTensor* ModelSource::find(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

void ModelSource::adopt_metadata(const ModelMetadata& other) {
  if (other.gguf) metadata_.gguf = other.gguf;
  for (const auto& [k, v] : other.hf_files) metadata_.hf_files[k] = v;
  for (const auto& [k, v] : other.sampling_defaults.items()) metadata_.sampling_defaults[k] = v;
  if (!other.architecture.empty()) metadata_.architecture = other.architecture;
  if (!other.name.empty() && (metadata_.name.empty() || metadata_.name == "converted")) metadata_.name = other.name;
}

FileLocation ModelSource::locate(std::span<const std::uint8_t> bytes) const {
  for (const MappedFile* m : mapped_) {
    const auto file = m->bytes();
    if (bytes.data() >= file.data() && bytes.data() + bytes.size() <= file.data() + file.size())
      return {m->path(), static_cast<std::uint64_t>(bytes.data() - file.data()), file.size()};
  }
  fail("{} bytes of tensor data lie in none of the model's files", bytes.size());
}

namespace {

constexpr std::uint64_t kMaxHfFileBytes = 256ull << 20;

// Name and architecture as GGUF and HF metadata state them.
void fill_identity(ModelMetadata& m) {
  if (m.gguf) {
    if (auto a = m.gguf->get_string("general.architecture")) m.architecture = *a;
    if (auto n = m.gguf->get_string("general.name")) m.name = *n;
  }
  if (auto it = m.hf_files.find("config.json"); it != m.hf_files.end() && m.architecture.empty()) {
    Json config = parse_json(it->second, "config.json");
    if (config.is_object() && config.contains("model_type") && config["model_type"].is_string())
      m.architecture = config["model_type"].get<std::string>();
  }
}

class GgufSource : public ModelSource {
 public:
  explicit GgufSource(const std::filesystem::path& path) : file_(GgufFile::open(path)) {
    format_ = SourceFormat::Gguf;
    native_order_ = ShapeOrder::Gguf;
    for (const auto& t : file_.tensors()) {
      auto et = element_type_of(t.type);
      tensors_.push_back({t.name, et.dtype, et.ggml_type, {t.ne.rbegin(), t.ne.rend()}, file_.data(t)});
    }
    metadata_.gguf = file_.metadata();
    fill_identity(metadata_);
    mapped_ = {&file_.mapped()};
  }

 private:
  GgufFile file_;
};

class SafetensorsSource : public ModelSource {
 public:
  SafetensorsSource(const std::filesystem::path& path, bool hf_folder)
      : st_(SafetensorsModel::open(path)) {
    format_ = hf_folder ? SourceFormat::HfFolder : SourceFormat::Safetensors;
    for (const auto& t : st_.tensors()) tensors_.push_back({t.name, t.aero_dtype, -1, t.shape, st_.data(t)});
    mapped_ = st_.mapped_files();
    if (hf_folder) {
      for (const char* name : kHfFiles) {
        std::error_code ec;
        if (std::filesystem::exists(path / name, ec)) metadata_.hf_files[name] = read_small_file(path / name, kMaxHfFileBytes);
      }
      metadata_.name = std::filesystem::absolute(path).lexically_normal().parent_path().filename().string();
      if (path.filename() != "") metadata_.name = path.filename().string();
      fill_identity(metadata_);
    }
  }

 private:
  SafetensorsModel st_;
};

class AeroSource : public ModelSource {
 public:
  explicit AeroSource(const std::filesystem::path& path) : model_(AeroModel::open(path)) {
    format_ = SourceFormat::Aero;
    const AeroFile& index = model_.index();
    native_order_ = index.shape_order();
    for (const AeroFile* f : model_.files()) mapped_.push_back(&f->mapped());
    for (const auto& t : model_.tensors()) {
      // Reference GGUF conversions record alignment padding in data_len: serve exact bytes.
      std::uint64_t exact = t.data_len;
      if (t.dtype == DType::Packed) {
        auto traits = quant::type_traits(static_cast<std::uint32_t>(t.ggml_type));
        std::uint64_t rows = 1;
        for (std::size_t d = 0; d + 1 < t.shape.size(); ++d) rows *= t.shape[d];
        exact = *quant::row_bytes(*traits, t.shape.empty() ? 1 : t.shape.back()) * rows;
      } else {
        exact = dtype_size(t.dtype);
        for (auto d : t.shape) exact *= d;
      }
      tensors_.push_back({t.name, t.dtype, t.ggml_type, t.shape, model_.tensor_data(t).first(exact)});
    }
    metadata_.name = index.model_name();
    metadata_.architecture = index.architecture();
    for (const auto& c : index.chunks()) {
      if (c.fourcc == kGgufMetadataFourcc && c.name == kGgufMetadataChunk) {
        auto payload = index.payload(c);
        if (blake3(payload) != c.blake3) fail("{}: {} fails its BLAKE3 check", path.string(), c.name);
        metadata_.gguf = GgufMetadata::from_json(parse_msgpack(payload, c.name), path.string() + ": " + c.name);
      } else if (c.fourcc == kHfFileFourcc && c.name.rfind(kHfFilePrefix, 0) == 0) {
        auto payload = index.payload(c);
        if (blake3(payload) != c.blake3) fail("{}: {} fails its BLAKE3 check", path.string(), c.name);
        metadata_.hf_files[c.name.substr(std::string_view(kHfFilePrefix).size())] =
            std::string(payload.begin(), payload.end());
      }
    }
  }

  std::vector<PageDigests> page_digests() const override {
    std::vector<PageDigests> out;
    for (const AeroFile* f : model_.files())
      for (const Chunk& c : f->chunks()) {
        if (c.fourcc != "WTSH" || c.compressed()) continue;
        const Chunk* phsh = f->find_chunk("PHSH", c.name + ".phsh");
        if (!phsh) continue;
        const std::string where = fmt::format("{}: {}", f->path().string(), phsh->name);
        auto payload = f->payload(*phsh);
        if (blake3(payload) != phsh->blake3) fail("{} fails its BLAKE3 check", where);
        auto pages = integrity::parse_phsh(payload, where);
        if (pages.digests.size() != integrity::page_count(c.length, pages.page_size))
          fail("{}: {} page digests for a {}-byte shard of {}-byte pages", where, pages.digests.size(), c.length,
               pages.page_size);
        out.push_back({f->path(), c.name, c.offset, c.length, pages.page_size, std::move(pages.digests)});
      }
    return out;
  }

 private:
  AeroModel model_;
};

bool has_magic(const std::filesystem::path& path, const char* magic) {
  std::ifstream in(path, std::ios::binary);
  char head[4] = {};
  return in.read(head, 4) && std::memcmp(head, magic, 4) == 0;
}

}  // namespace

namespace {

std::unique_ptr<ModelSource> open_path(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail("{}: no such file or folder", path.string());
  if (looks_like_aero(path)) return std::make_unique<AeroSource>(path);
  if (std::filesystem::is_directory(path, ec)) {
    if (std::filesystem::exists(path / "config.json", ec) || std::filesystem::exists(path / "model.safetensors", ec) ||
        std::filesystem::exists(path / "model.safetensors.index.json", ec))
      return std::make_unique<SafetensorsSource>(path, true);
    fail("{}: a folder with neither model.aeroset.json nor config.json and safetensors weights", path.string());
  }
  if (path.extension() == ".gguf" || has_magic(path, "GGUF")) return std::make_unique<GgufSource>(path);
  if (path.extension() == ".safetensors" || path.filename() == "model.safetensors.index.json")
    return std::make_unique<SafetensorsSource>(path, false);
  fail("{}: unrecognised model format (expected .aero, AEROSET, GGUF, safetensors or a Hugging Face folder)",
       path.string());
}

}  // namespace

std::unique_ptr<ModelSource> ModelSource::open(const std::filesystem::path& path) {
  auto resolved = resolve_model_name(path.native());
  if (!resolved) return open_path(path);
  auto source = open_path(resolved->path);
  ModelMetadata& m = source->metadata_;
  // A snapshot folder is named by its commit hash: the model's name is the repository's.
  if (m.name.empty() || source->format() == SourceFormat::HfFolder) m.name = resolved->name;
  // The store's template serves only a GGUF that carries none of its own.
  if (!resolved->chat_template.empty() && m.gguf && !m.gguf->find("tokenizer.chat_template"))
    m.gguf->set({.key = "tokenizer.chat_template", .type = GgufType::String, .value = resolved->chat_template});
  m.sampling_defaults = resolved->params;
  return source;
}

}  // namespace aero::format
