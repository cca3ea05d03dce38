#include <unordered_map>

#include "aero/error.h"
#include "aero/format/aero_writer.h"
#include "aero/output_file.h"

namespace aero::format {

WriteSummary write_aeroset(const std::filesystem::path& dir, const ModelDescription& model,
                           const std::vector<TensorWrite>& tensors, const WriteOptions& options,
                           std::size_t max_part_shards) {
  if (max_part_shards == 0) fail("shards per part must be positive");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail("cannot create {}: {}", dir.string(), ec.message());

  const ShardPlan plan = plan_shards(tensors, options.max_shard_bytes, options.tensor_alignment);
  std::vector<std::filesystem::path> written;
  auto remove_written = [&] {
    for (const auto& p : written) std::filesystem::remove(p, ec);
  };
  try {
    Json parts = Json::array();
    WriteSummary total;
    for (std::size_t first = 0, part = 0; first < plan.shards.size(); first += max_part_shards, ++part) {
      const std::size_t last = std::min(plan.shards.size(), first + max_part_shards);
      // Re-planning exactly the tensors of shards [first, last) reproduces their boundaries,
      // because the planner is greedy and every shard starts afresh.
      std::vector<TensorWrite> subset;
      Json ids = Json::array();
      for (std::size_t s = first; s < last; ++s) {
        ids.push_back(s);
        for (std::size_t ti : plan.shards[s]) subset.push_back(tensors[ti]);
      }
      auto name = fmt::format("part-{:03}.aero", part);
      WriteOptions part_options = options;
      part_options.uuid.reset();
      auto summary = write_aero(dir / name, model, subset, part_options);
      written.push_back(dir / name);
      if (summary.shards != last - first) fail("internal error: part {} re-planned into {} shards", part, summary.shards);
      total.file_bytes += summary.file_bytes;
      total.shards += summary.shards;
      parts.push_back(Json{{"path", name},
                           {"sha256", sha256_file_hex(dir / name)},
                           {"size_bytes", summary.file_bytes},
                           {"shards", std::move(ids)}});
    }
    // The index lists every tensor with the hash its part computed while writing it.
    std::vector<TensorWrite> indexed = tensors;
    if (options.tensor_hash) {
      std::unordered_map<std::string, std::string> hashes;
      for (const auto& part : written) {
        const AeroFile file = AeroFile::open(part);
        for (const auto& t : file.tensors()) hashes[t.name] = t.hash_b3;
      }
      for (auto& w : indexed) w.hash_b3 = hashes[w.name];
    }
    WriteOptions index_options = options;
    index_options.index_only = true;
    index_options.integrity = false;
    auto index = write_aero(dir / "index.aero", model, indexed, index_options);
    written.push_back(dir / "index.aero");
    total.file_bytes += index.file_bytes;

    Json set = Json::object();
    set["format"] = Json{{"name", "AEROSET"}, {"version", {0, 1}}};
    set["model"] = Json{{"name", model.name}, {"architecture", model.architecture}};
    set["parts"] = std::move(parts);
    set["global_tidx"] =
        Json{{"path", "index.aero"}, {"sha256", sha256_file_hex(dir / "index.aero")}, {"size_bytes", index.file_bytes}};
    OutputFile out(dir / "model.aeroset.json");
    out.write(set.dump(2) + "\n");
    out.commit();
    return total;
  } catch (...) {
    remove_written();
    throw;
  }
}

}  // namespace aero::format
