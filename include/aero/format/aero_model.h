// An AERO model as a user names it: one .aero file, or an AEROSET folder (its
// model.aeroset.json, index.aero and part files). Either way: one tensor index, and
// tensor bytes served as views into whichever file holds their shard.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "aero/format/aero.h"

namespace aero::format {

class AeroModel {
 public:
  // PATH is a .aero file, a model.aeroset.json, or a folder holding model.aeroset.json.
  static AeroModel open(const std::filesystem::path& path);

  bool is_set() const { return set_manifest_.has_value(); }
  const std::filesystem::path& path() const { return path_; }
  // The file that holds MJSN/MMSG/TIDX (the file itself, or the set's index.aero).
  const AeroFile& index() const { return *files_.front(); }
  const std::vector<Tensor>& tensors() const { return index().tensors(); }
  const Tensor* find_tensor(std::string_view name) const { return index().find_tensor(name); }
  // Every file of the model, index first.
  std::vector<const AeroFile*> files() const;
  const Json* set_manifest() const { return set_manifest_ ? &*set_manifest_ : nullptr; }
  std::vector<std::string> warnings() const;

  struct ShardLocation {
    const AeroFile* file = nullptr;
    const Chunk* chunk = nullptr;
  };
  ShardLocation shard(std::uint32_t shard_id) const;
  std::span<const std::uint8_t> tensor_data(const Tensor& tensor) const;

  struct SetFile {
    std::filesystem::path path;
    std::string sha256;
    std::uint64_t size_bytes = 0;
  };
  // The files an AEROSET manifest lists with their checksums (index first); empty otherwise.
  const std::vector<SetFile>& set_files() const { return set_files_; }

 private:
  void open_set(const std::filesystem::path& manifest_path);
  void check_tensor_ranges() const;

  std::filesystem::path path_;
  std::vector<std::unique_ptr<AeroFile>> files_;
  std::optional<Json> set_manifest_;
  std::vector<SetFile> set_files_;
  struct ShardRef {
    std::uint32_t shard_id;
    std::size_t file;
    std::size_t chunk;
  };
  std::vector<ShardRef> shards_;
};

// True when PATH looks like an AERO model (by name or magic), for dispatch in the CLI.
bool looks_like_aero(const std::filesystem::path& path);

}  // namespace aero::format
