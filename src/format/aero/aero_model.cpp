#include "aero/format/aero_model.h"

#include <cstring>
#include <fstream>

#include "aero/error.h"
#include "common/bytes.h"

namespace aero::format {
namespace {

constexpr std::uint64_t kMaxSetManifestBytes = 64ull << 20;
constexpr const char* kSetManifestName = "model.aeroset.json";

// Part paths come from a file we did not write: keep them inside the set's folder.
std::filesystem::path set_member(const std::filesystem::path& dir, const Json& entry, const std::string& where) {
  auto p = entry.find("path");
  if (p == entry.end() || !p->is_string()) fail("{}: entry without a 'path'", where);
  std::filesystem::path rel(p->get<std::string>());
  if (rel.empty() || rel.is_absolute()) fail("{}: part path '{}' must be relative", where, rel.string());
  for (const auto& part : rel)
    if (part == "..") fail("{}: part path '{}' leaves the set's folder", where, rel.string());
  return dir / rel;
}

}  // namespace

bool looks_like_aero(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return std::filesystem::exists(path / kSetManifestName, ec);
  if (path.filename() == kSetManifestName || path.extension() == ".aero") return true;
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::memcmp(magic, "AERO", 4) == 0;
}

AeroModel AeroModel::open(const std::filesystem::path& path) {
  AeroModel model;
  model.path_ = path;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    model.open_set(path / kSetManifestName);
  } else if (path.filename() == kSetManifestName || path.extension() == ".json") {
    model.open_set(path);
  } else {
    model.files_.push_back(std::make_unique<AeroFile>(AeroFile::open(path)));
    const AeroFile& file = *model.files_.front();
    for (std::uint32_t id : file.shard_ids())
      model.shards_.push_back({id, 0, file.shard_chunk(id)->toc_index});
  }
  model.check_tensor_ranges();
  return model;
}

void AeroModel::open_set(const std::filesystem::path& manifest_path) {
  const std::string where = manifest_path.string();
  const auto dir = manifest_path.parent_path();
  Json set = parse_json(read_small_file(manifest_path, kMaxSetManifestBytes), where);
  if (!set.is_object()) fail("{}: not a JSON object", where);
  auto format = set.find("format");
  if (format == set.end() || !format->is_object() || format->value("name", "") != "AEROSET")
    fail("{}: not an AEROSET manifest (format.name is not \"AEROSET\")", where);
  auto version = format->find("version");
  if (version == format->end() || !version->is_array() || version->size() != 2 ||
      !(*version)[0].is_number_integer() || !(*version)[1].is_number_integer() || (*version)[0] != 0 ||
      ((*version)[1] != 1 && (*version)[1] != 2))
    fail("{}: unsupported AEROSET version (this reader handles 0.1 and 0.2)", where);

  auto checksum = [&](const Json& entry, const std::filesystem::path& file) {
    SetFile f{file, entry.value("sha256", ""), 0};
    auto size = entry.find("size_bytes");
    if (size != entry.end() && size->is_number_unsigned()) f.size_bytes = size->get<std::uint64_t>();
    std::error_code ec;
    auto actual = std::filesystem::file_size(file, ec);
    if (ec) fail("{}: cannot open set member {}: {}", where, file.string(), ec.message());
    if (size != entry.end() && actual != f.size_bytes)
      fail("{}: {} is {} bytes, the set says {}", where, file.string(), actual, f.size_bytes);
    return f;
  };

  auto index = set.find("global_tidx");
  if (index == set.end() || !index->is_object()) fail("{}: no 'global_tidx'", where);
  auto index_path = set_member(dir, *index, where + ": global_tidx");
  set_files_.push_back(checksum(*index, index_path));
  files_.push_back(std::make_unique<AeroFile>(AeroFile::open(index_path)));

  auto parts = set.find("parts");
  if (parts == set.end() || !parts->is_array()) fail("{}: no 'parts' array", where);
  for (std::size_t i = 0; i < parts->size(); ++i) {
    const Json& part = (*parts)[i];
    std::string at = fmt::format("{}: part {}", where, i);
    if (!part.is_object()) fail("{}: not an object", at);
    auto part_path = set_member(dir, part, at);
    set_files_.push_back(checksum(part, part_path));
    files_.push_back(std::make_unique<AeroFile>(AeroFile::open(part_path)));
    const AeroFile& file = *files_.back();
    // A part names its shards by their global ids in its own manifest; the set's list of
    // shard ids, in WTSH order, says the same for parts without one.
    std::vector<std::uint32_t> local = file.shard_ids();
    auto listed = part.find("shards");
    if (listed == part.end() || !listed->is_array()) fail("{}: no 'shards' list", at);
    if (listed->size() != local.size())
      fail("{}: the set lists {} shards, {} holds {}", at, listed->size(), part_path.string(), local.size());
    for (std::size_t s = 0; s < listed->size(); ++s) {
      const Json& id = (*listed)[s];
      if (!id.is_number_unsigned() || id.get<std::uint64_t>() > UINT32_MAX) fail("{}: bad shard id", at);
      std::uint32_t global = id.get<std::uint32_t>();
      if (shard(global).file) fail("{}: shard {} is held by two parts", where, global);
      const Chunk* chunk = file.shard_chunk(local[s]);
      shards_.push_back({global, files_.size() - 1, chunk->toc_index});
    }
  }
  set_manifest_ = std::move(set);
}

void AeroModel::check_tensor_ranges() const {
  for (const auto& t : tensors()) {
    ShardLocation loc = shard(t.shard_id);
    if (!loc.file) fail("{}: tensor '{}' lives in shard {}, which no file holds", path_.string(), t.name, t.shard_id);
    if (!range_inside(t.data_off, t.data_len, loc.chunk->length))
      fail("{}: tensor '{}' range [{}, +{}) lies outside shard {} ({} bytes)", path_.string(), t.name, t.data_off,
           t.data_len, t.shard_id, loc.chunk->length);
  }
}

AeroModel::ShardLocation AeroModel::shard(std::uint32_t shard_id) const {
  for (const auto& s : shards_)
    if (s.shard_id == shard_id) return {files_[s.file].get(), &files_[s.file]->chunks()[s.chunk]};
  return {};
}

std::span<const std::uint8_t> AeroModel::tensor_data(const Tensor& tensor) const {
  ShardLocation loc = shard(tensor.shard_id);
  return loc.file->stored_bytes(*loc.chunk).subspan(tensor.data_off, tensor.data_len);
}

std::vector<const AeroFile*> AeroModel::files() const {
  std::vector<const AeroFile*> out;
  for (const auto& f : files_) out.push_back(f.get());
  return out;
}

std::vector<std::string> AeroModel::warnings() const {
  std::vector<std::string> out;
  for (const auto& f : files_)
    for (const auto& w : f->warnings()) out.push_back(fmt::format("{}: {}", f->path().filename().string(), w));
  return out;
}

}  // namespace aero::format
