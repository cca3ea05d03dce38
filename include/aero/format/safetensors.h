// safetensors files (single or sharded with model.safetensors.index.json), mapped. Like the
// reference implementation, the reader's first duty is to refuse malformed input: bounded
// header, known dtypes, offsets inside the data region that agree with shape and dtype, and
// no two tensors sharing bytes.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "aero/format/aero.h"
#include "aero/json.h"
#include "aero/mapped_file.h"

namespace aero::format {

inline constexpr std::uint64_t kMaxSafetensorsHeader = 100ull << 20;

struct SafetensorsTensor {
  std::string name;
  std::string dtype;  // as written: "F32", "BF16", ...
  DType aero_dtype = DType::F32;
  std::vector<std::uint64_t> shape;  // row-major
  std::uint64_t begin = 0, end = 0;  // inside the file's data region
  std::size_t file = 0;              // which shard file
};

class SafetensorsModel {
 public:
  // PATH: a .safetensors file, a model.safetensors.index.json, or a folder holding either.
  static SafetensorsModel open(const std::filesystem::path& path);

  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }  // sorted by name
  const SafetensorsTensor* find(std::string_view name) const;
  std::span<const std::uint8_t> data(const SafetensorsTensor& tensor) const;
  const Json& metadata() const { return metadata_; }  // __metadata__ of the first file
  std::vector<std::filesystem::path> files() const;
  std::vector<const MappedFile*> mapped_files() const;

 private:
  void add_file(const std::filesystem::path& path);

  struct File {
    MappedFile map;
    std::uint64_t data_start = 0;
  };
  std::vector<std::unique_ptr<File>> files_;
  std::vector<SafetensorsTensor> tensors_;
  Json metadata_ = Json::object();
};

std::optional<DType> safetensors_dtype(std::string_view name);

}  // namespace aero::format

namespace aero::format {

struct SafetensorsTensorWrite {
  std::string name;
  DType dtype;
  std::vector<std::uint64_t> shape;
  std::span<const std::uint8_t> data;
};

// Writes one safetensors file atomically (header padded to 8 bytes with spaces, tensors in
// the given order). `progress` is told of every piece of tensor data written.
std::uint64_t write_safetensors(const std::filesystem::path& out, const std::vector<SafetensorsTensorWrite>& tensors,
                                const Json& metadata, const std::function<void(std::uint64_t)>& progress = {});

}  // namespace aero::format
