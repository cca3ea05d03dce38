// GGUF v2/v3 (llama.cpp and ollama model files): reading with every count, length and
// offset checked against the file before use, and streaming writing. Metadata values keep
// their GGUF types, so a GGUF -> AERO -> GGUF round trip gives back identical key/values.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "aero/json.h"
#include "aero/mapped_file.h"
#include "aero/quant/types.h"

namespace aero::format {

enum class GgufType : std::uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7, String = 8, Array = 9,
  U64 = 10, I64 = 11, F64 = 12,
};

// One metadata entry. `value` holds a number, bool or string; for arrays, a JSON array of
// them with `element_type` saying what GGUF stores (nested arrays nest likewise).
struct GgufKv {
  std::string key;
  GgufType type = GgufType::U32;
  GgufType element_type = GgufType::U8;  // arrays only
  Json value;
};

class GgufMetadata {
 public:
  std::vector<GgufKv> entries;

  const GgufKv* find(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<std::int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  void set(GgufKv kv);  // replaces an entry of the same key, else appends

  // The typed form aero stores inside .aero files (chunk MKVS), and back.
  Json to_json() const;
  static GgufMetadata from_json(const Json& j, std::string_view where);
};

struct GgufTensor {
  std::string name;
  quant::GgmlType type = quant::GgmlType::F32;
  std::vector<std::uint64_t> ne;  // GGUF order, fastest dimension first
  std::uint64_t offset = 0;       // inside the data section
  std::uint64_t size = 0;         // bytes the type and shape need
};

class GgufFile {
 public:
  static GgufFile open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return map_.path(); }
  std::uint32_t version() const { return version_; }
  std::uint32_t alignment() const { return alignment_; }
  const GgufMetadata& metadata() const { return metadata_; }
  const std::vector<GgufTensor>& tensors() const { return tensors_; }  // in file order
  const GgufTensor* find(std::string_view name) const;
  std::span<const std::uint8_t> data(const GgufTensor& tensor) const;
  const MappedFile& mapped() const { return map_; }

 private:
  MappedFile map_;
  std::uint32_t version_ = 0;
  std::uint32_t alignment_ = 32;
  std::uint64_t data_start_ = 0;
  GgufMetadata metadata_;
  std::vector<GgufTensor> tensors_;
};

struct GgufTensorWrite {
  std::string name;
  quant::GgmlType type;
  std::vector<std::uint64_t> ne;  // GGUF order
  std::uint64_t size = 0;
  std::function<void(std::function<void(std::span<const std::uint8_t>)>)> write_data;
};

// Streams a GGUF v3 file atomically: key/values (general.alignment honoured), tensor infos,
// then each tensor's data padded to the alignment, as llama.cpp writes them.
std::uint64_t write_gguf(const std::filesystem::path& out, const GgufMetadata& metadata,
                         const std::vector<GgufTensorWrite>& tensors);

}  // namespace aero::format
