// Writes AERO 0.1 files that the reference aerotensor tools read, streaming one tensor at a
// time: the layout is planned from tensor sizes alone, bytes flow from each tensor's producer
// straight to disk while every hash (shard, page, tensor) is computed on the way, and the
// control plane is written last. Output is atomic and deterministic: the same input gives the
// same bytes, with a UUID derived from the content.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "aero/format/aero.h"
#include "aero/json.h"

namespace aero::format {

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual void write(std::span<const std::uint8_t> bytes) = 0;
};

struct TensorWrite {
  std::string name;
  DType dtype = DType::F32;
  int ggml_type = -1;  // block format when dtype == Packed
  std::optional<std::int64_t> quant_id;
  std::vector<std::uint64_t> shape;  // as stored in TIDX: row-major, or GGUF order for GGUF sources
  std::uint64_t data_len = 0;
  // Called once, in file order; must write exactly data_len bytes (in any number of pieces).
  std::function<void(ByteSink&)> write_data;
  std::string hash_b3;  // known BLAKE3 (hex), used by index-only writes instead of re-reading
};

// A chunk beyond the reference set (e.g. aero's self-contained model metadata). Always
// flagged optional, so readers that do not know its fourcc skip it.
struct ExtraChunk {
  std::string fourcc;
  std::string name;
  std::string role;
  std::string payload;
  bool compress = true;
};

struct ModelDescription {
  std::string name;
  std::string architecture;
  Json meta = Json::object();  // merged into meta.json (e.g. source_format)
  std::vector<ExtraChunk> extra_chunks;
};

struct WriteOptions {
  std::uint64_t max_shard_bytes = kDefaultMaxShardBytes;
  bool integrity = false;  // IHSH + a PHSH after every weight shard
  std::uint64_t page_size = kDefaultPhshPageSize;
  bool tensor_hash = false;  // hash_b3 in every TIDX entry
  int zstd_level = 6;
  // Tensors start on this boundary inside a shard, and shards on it in the file, so that
  // mapped weights are cache-line aligned for the kernels. Must be a multiple of 16.
  std::uint64_t tensor_alignment = 64;
  std::optional<std::array<std::uint8_t, 16>> uuid;  // default: derived from the content
  // AEROSET index: a TIDX that places every tensor in its shard, but no weight chunks.
  bool index_only = false;
  // Told of every piece of tensor data written (progress bars).
  std::function<void(std::uint64_t)> progress;
};

struct WriteSummary {
  std::uint64_t file_bytes = 0;
  std::size_t shards = 0;
};

WriteSummary write_aero(const std::filesystem::path& out, const ModelDescription& model,
                        const std::vector<TensorWrite>& tensors, const WriteOptions& options = {});

// Writes an AEROSET folder: part-NNN.aero files of at most `max_part_shards` shards each,
// index.aero (meta, manifest, TIDX with global shard ids) and model.aeroset.json, last, so
// that an interrupted write leaves no set behind.
WriteSummary write_aeroset(const std::filesystem::path& dir, const ModelDescription& model,
                           const std::vector<TensorWrite>& tensors, const WriteOptions& options,
                           std::size_t max_part_shards);

// Shard assignment shared by both writers: a new shard starts when the next tensor (placed at
// the alignment) would pass max_shard_bytes; an empty shard takes any tensor.
struct ShardPlan {
  struct Placement {
    std::uint32_t shard_id;
    std::uint64_t data_off;
  };
  std::vector<Placement> tensors;                  // parallel to the input
  std::vector<std::vector<std::size_t>> shards;    // tensor indices of each shard
  std::vector<std::uint64_t> shard_bytes;
};
ShardPlan plan_shards(const std::vector<TensorWrite>& tensors, std::uint64_t max_shard_bytes, std::uint64_t alignment);

class AeroModel;
// What a rewrite of an existing model needs: its meta.json, extra chunks and tensors as
// producers reading from the mapped source.
ModelDescription describe(const AeroModel& model);
std::vector<TensorWrite> tensors_of(const AeroModel& model);

}  // namespace aero::format
