// The AERO 0.1 container (see docs/format.md): reading, with every limit of the spec
// enforced before anything is trusted, and zero-copy views of tensor data.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "aero/hash.h"
#include "aero/json.h"
#include "aero/mapped_file.h"

namespace aero::format {

// ---- constants of the format -------------------------------------------------------
inline constexpr std::uint32_t kHeaderSize = 96;
inline constexpr std::uint32_t kTocHeaderSize = 16;
inline constexpr std::uint32_t kTocEntrySize = 80;
inline constexpr std::uint16_t kVersionMajor = 0;
inline constexpr std::uint16_t kVersionMinor = 1;
inline constexpr std::uint64_t kMaxEntryCount = 1'000'000;
inline constexpr std::uint64_t kMaxStringTable = 512ull << 20;
inline constexpr std::uint64_t kMaxMetadataChunk = 2ull << 30;
inline constexpr std::uint64_t kDefaultMaxShardBytes = 2ull << 30;
inline constexpr std::uint64_t kDefaultPhshPageSize = 4ull << 20;

namespace chunk_flag {
inline constexpr std::uint32_t kZstd = 0x1;
inline constexpr std::uint32_t kMmapCritical = 0x2;
inline constexpr std::uint32_t kIndex = 0x4;
inline constexpr std::uint32_t kOptional = 0x8;
}  // namespace chunk_flag

// Element types of TIDX entries. Packed means block-quantized; the block format is the
// ggml type number carried in quant_params.
enum class DType : std::uint32_t {
  F16 = 0, F32 = 1, BF16 = 2, F64 = 3, I8 = 4, U8 = 5, I16 = 6, U16 = 7,
  I32 = 8, U32 = 9, I64 = 10, U64 = 11, Bool = 12, Packed = 0x8000,
};
std::optional<DType> dtype_from_code(std::int64_t code);
std::string_view dtype_name(DType dtype);
// Bytes per element; 0 for Packed.
std::size_t dtype_size(DType dtype);

// The order in which `shape` lists dimensions in the file: safetensors-derived files are
// row-major (slowest first), GGUF-derived ones keep GGUF's order (fastest first).
enum class ShapeOrder { RowMajor, Gguf };

struct FileHeader {
  std::uint16_t version_major = 0;
  std::uint16_t version_minor = 0;
  std::uint32_t header_size = 0;
  std::uint64_t toc_offset = 0;
  std::uint64_t toc_length = 0;
  std::uint64_t string_table_offset = 0;
  std::uint64_t string_table_length = 0;
  std::uint64_t file_flags = 0;
  std::array<std::uint8_t, 16> uuid{};
};

struct Chunk {
  std::size_t toc_index = 0;
  std::string fourcc;
  std::uint32_t flags = 0;
  std::uint64_t offset = 0;  // absolute, in the file
  std::uint64_t length = 0;  // stored bytes
  std::uint64_t ulen = 0;    // uncompressed bytes
  std::string name;
  Digest blake3{};  // of the uncompressed payload

  bool compressed() const { return flags & chunk_flag::kZstd; }
};

struct Tensor {
  std::string name;
  DType dtype = DType::F32;
  int ggml_type = -1;                       // block format when dtype == Packed
  std::optional<std::int64_t> quant_id;     // reference converter's per-type counter
  std::vector<std::uint64_t> stored_shape;  // as written in TIDX
  std::vector<std::uint64_t> shape;         // canonical: row-major, slowest dimension first
  std::uint32_t shard_id = 0;
  std::uint64_t data_off = 0;  // inside the shard's payload
  std::uint64_t data_len = 0;
  std::string hash_b3;  // hex BLAKE3 of the tensor bytes, when the writer stored one
};

// One .aero file, mapped. Construction parses and bounds-checks header, TOC, string table,
// MJSN, MMSG and TIDX (decompressing with size caps and checking their BLAKE3), so that
// every later access is known to lie inside the file.
class AeroFile {
 public:
  static AeroFile open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return file_.path(); }
  const MappedFile& mapped() const { return file_; }
  const FileHeader& header() const { return header_; }
  const std::vector<Chunk>& chunks() const { return chunks_; }
  const std::vector<Tensor>& tensors() const { return tensors_; }
  const Json& meta() const { return meta_; }          // MJSN (empty object if absent)
  const Json& manifest() const { return manifest_; }  // MMSG (empty object if absent)
  ShapeOrder shape_order() const { return shape_order_; }
  // From meta.json, else the manifest's model entry (AEROSET index files carry no meta.json).
  std::string model_name() const;
  std::string architecture() const;
  // Non-fatal findings while opening (e.g. the reference writer's all-zero MJSN hash).
  const std::vector<std::string>& warnings() const { return warnings_; }

  // End of the control plane: header, TOC and string table, padded to 16.
  std::uint64_t payload_start() const;

  const Chunk* find_chunk(std::string_view fourcc, std::string_view name) const;
  const Tensor* find_tensor(std::string_view name) const;
  // The WTSH chunk of a shard in this file, or nullptr (e.g. an AEROSET index file).
  const Chunk* shard_chunk(std::uint32_t shard_id) const;
  std::vector<std::uint32_t> shard_ids() const;

  std::span<const std::uint8_t> stored_bytes(const Chunk& chunk) const;
  // Decompressed payload (size-capped, checked against ulen); hash is not checked here.
  std::vector<std::uint8_t> payload(const Chunk& chunk) const;

 private:
  void parse_control_plane();
  void parse_metadata();
  void parse_tensor_index(const Json& tidx);
  void map_shards();

  MappedFile file_;
  FileHeader header_;
  std::vector<Chunk> chunks_;
  std::vector<Tensor> tensors_;
  Json meta_ = Json::object();
  Json manifest_ = Json::object();
  ShapeOrder shape_order_ = ShapeOrder::RowMajor;
  std::vector<std::string> warnings_;
  std::vector<std::pair<std::uint32_t, std::size_t>> shard_chunks_;  // shard id -> chunk index
};

// Decompresses a zstd frame, refusing output beyond `expected_size` (the chunk's ulen, itself
// capped), so that a small hostile chunk cannot inflate into gigabytes.
std::vector<std::uint8_t> zstd_decompress(std::span<const std::uint8_t> frame, std::uint64_t expected_size,
                                          std::string_view what);

}  // namespace aero::format
