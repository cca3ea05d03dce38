// One view of a model file whatever its container: tensors as (name, element type,
// canonical row-major shape, byte span into the mapped file) and the model's metadata. This
// is the boundary the rest of aero sees; container details stay below it.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "aero/format/aero.h"
#include "aero/format/gguf.h"

namespace aero::format {

enum class SourceFormat { Aero, Gguf, Safetensors, HfFolder };
std::string_view source_format_name(SourceFormat format);

struct SourceTensor {
  std::string name;
  DType dtype = DType::F32;  // Packed for block formats, with ggml_type saying which
  int ggml_type = -1;
  std::vector<std::uint64_t> shape;  // row-major, slowest first
  std::span<const std::uint8_t> data;  // exactly the bytes type and shape need
};

struct ModelMetadata {
  std::string name;
  std::string architecture;
  std::optional<GgufMetadata> gguf;             // GGUF key/values (GGUF sources, or carried in .aero)
  std::map<std::string, std::string> hf_files;  // config.json, tokenizer.json, ... (HF sources)
  // Sampling defaults the model's store gives (Ollama's params layer, its names: temperature,
  // top_k, top_p, min_p, repeat_penalty, repeat_last_n, presence_penalty, frequency_penalty,
  // seed, stop, num_ctx); flags the user gives win.
  Json sampling_defaults = Json::object();
  bool empty() const { return !gguf && hf_files.empty(); }
};

// The element type of a GGUF tensor in AERO terms (floats and integers as dtypes, block
// formats as Packed), and back; nullopt where the other side has no such type.
struct ElementType {
  DType dtype;
  int ggml_type;
};
ElementType element_type_of(quant::GgmlType type);
std::optional<quant::GgmlType> ggml_type_of(DType dtype, int ggml_type);

// Where a tensor's bytes lie on disk: for reading them without the mapping (the disk tier).
struct FileLocation {
  std::filesystem::path path;
  std::uint64_t offset = 0;     // of the tensor's first byte in that file
  std::uint64_t file_size = 0;  // of the file when the source opened it
};

// Digests of the stored tensor bytes page by page (an .aero weight shard's PHSH): page i covers
// file bytes [offset + i·page_size, min(offset + (i+1)·page_size, offset + length)).
struct PageDigests {
  std::filesystem::path path;
  std::string shard;  // its name, for messages
  std::uint64_t offset = 0, length = 0, page_size = 0;
  std::vector<Digest> digests;
};

class ModelSource {
 public:
  // PATH: .aero, AEROSET, .gguf, .safetensors (or sharded index), or a Hugging Face folder;
  // or a model name (hf:ORG/NAME, a bare ORG/NAME that is no path, ollama:NAME[:TAG]) resolved
  // by resolve_model_name (model_name.h) in the store it names.
  static std::unique_ptr<ModelSource> open(const std::filesystem::path& path);
  virtual ~ModelSource() = default;

  SourceFormat format() const { return format_; }
  // How the source itself orders shapes: GGUF files and GGUF-derived .aero files use GGUF order.
  ShapeOrder native_order() const { return native_order_; }
  const std::vector<SourceTensor>& tensors() const { return tensors_; }
  const SourceTensor* find(std::string_view name) const;
  const ModelMetadata& metadata() const { return metadata_; }
  // Takes metadata from another source (a sidecar HF folder or GGUF for files without any).
  void adopt_metadata(const ModelMetadata& other);
  // The file and offset of bytes of a tensor (every source maps its files whole). Throws
  // aero::Error for bytes outside every file (a view into something else).
  FileLocation locate(std::span<const std::uint8_t> bytes) const;
  // Every page digest the files carry (PHSH of uncompressed .aero shards); empty for formats
  // without them. Throws aero::Error for a PHSH that does not parse or fit its shard.
  virtual std::vector<PageDigests> page_digests() const { return {}; }

 protected:
  std::vector<const MappedFile*> mapped_;  // the files tensors are views into
  SourceFormat format_ = SourceFormat::Aero;
  ShapeOrder native_order_ = ShapeOrder::RowMajor;
  std::vector<SourceTensor> tensors_;
  ModelMetadata metadata_;
};

// Where aero keeps self-contained metadata inside .aero files (optional chunks, so the
// reference reader skips them; see docs/format.md).
inline constexpr const char* kGgufMetadataFourcc = "MKVS";
inline constexpr const char* kGgufMetadataChunk = "gguf.metadata";
inline constexpr const char* kHfFileFourcc = "HFJS";
inline constexpr const char* kHfFilePrefix = "hf/";
// The Hugging Face files that travel with a model.
inline constexpr const char* kHfFiles[] = {"config.json",           "generation_config.json",  "tokenizer.json",
                                           "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"};

}  // namespace aero::format
