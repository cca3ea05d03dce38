#include <algorithm>
#include <fstream>
#include <set>

#include "aero/error.h"
#include "aero/format/safetensors.h"
#include "common/bytes.h"

namespace aero::format {

std::optional<DType> safetensors_dtype(std::string_view name) {
  static constexpr std::pair<std::string_view, DType> kMap[] = {
      {"F16", DType::F16}, {"F32", DType::F32}, {"BF16", DType::BF16}, {"F64", DType::F64},
      {"I8", DType::I8},   {"U8", DType::U8},   {"I16", DType::I16},   {"U16", DType::U16},
      {"I32", DType::I32}, {"U32", DType::U32}, {"I64", DType::I64},   {"U64", DType::U64},
      {"BOOL", DType::Bool},
  };
  for (auto [n, d] : kMap)
    if (n == name) return d;
  return std::nullopt;
}

SafetensorsModel SafetensorsModel::open(const std::filesystem::path& path) {
  SafetensorsModel model;
  std::error_code ec;
  std::filesystem::path target = path;
  if (std::filesystem::is_directory(path, ec)) {
    if (std::filesystem::exists(path / "model.safetensors.index.json", ec))
      target = path / "model.safetensors.index.json";
    else if (std::filesystem::exists(path / "model.safetensors", ec))
      target = path / "model.safetensors";
    else
      fail("{}: no model.safetensors or model.safetensors.index.json", path.string());
  }
  if (target.extension() == ".json") {
    Json index = parse_json(read_small_file(target, kMaxSafetensorsHeader), target.string());
    auto map = index.find("weight_map");
    if (!index.is_object() || map == index.end() || !map->is_object())
      fail("{}: no weight_map object", target.string());
    std::set<std::string> shard_names;
    for (const auto& [name, file] : map->items()) {
      if (!file.is_string()) fail("{}: weight_map entry '{}' is not a file name", target.string(), name);
      std::filesystem::path rel(file.get<std::string>());
      if (rel.is_absolute() || rel.empty() || std::find(rel.begin(), rel.end(), "..") != rel.end())
        fail("{}: shard path '{}' leaves the model folder", target.string(), rel.string());
      shard_names.insert(file.get<std::string>());
    }
    for (const auto& name : shard_names) model.add_file(target.parent_path() / name);
  } else {
    model.add_file(target);
  }
  std::sort(model.tensors_.begin(), model.tensors_.end(), [](auto& a, auto& b) { return a.name < b.name; });
  for (std::size_t i = 1; i < model.tensors_.size(); ++i)
    if (model.tensors_[i].name == model.tensors_[i - 1].name)
      fail("{}: tensor '{}' appears twice", path.string(), model.tensors_[i].name);
  return model;
}

void SafetensorsModel::add_file(const std::filesystem::path& path) {
  const std::string where = path.string();
  auto file = std::make_unique<File>();
  file->map = MappedFile::open(path);
  const auto bytes = file->map.bytes();
  if (bytes.size() < 8) fail("{}: truncated: too short for a safetensors header", where);
  const std::uint64_t header_len = load_le<std::uint64_t>(bytes.data());
  if (header_len > kMaxSafetensorsHeader)
    fail("{}: header of {} bytes exceeds the {}-byte cap", where, header_len, kMaxSafetensorsHeader);
  if (!range_inside(8, header_len, bytes.size())) fail("{}: truncated: header runs past the end of the file", where);
  file->data_start = 8 + header_len;
  const std::uint64_t data_size = bytes.size() - file->data_start;
  Json header = parse_json({reinterpret_cast<const char*>(bytes.data() + 8), header_len}, where + ": header");
  if (!header.is_object()) fail("{}: header is not a JSON object", where);

  const std::size_t file_index = files_.size();
  std::vector<SafetensorsTensor> found;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (file_index == 0 && entry.is_object()) metadata_ = entry;
      continue;
    }
    const std::string at = fmt::format("{}: tensor '{}'", where, name);
    if (!entry.is_object()) fail("{}: entry is not an object", at);
    SafetensorsTensor t;
    t.name = name;
    t.file = file_index;
    auto dtype = entry.find("dtype");
    if (dtype == entry.end() || !dtype->is_string()) fail("{}: missing dtype", at);
    t.dtype = dtype->get<std::string>();
    auto parsed = safetensors_dtype(t.dtype);
    if (!parsed) fail("{}: unsupported dtype '{}'", at, t.dtype);
    t.aero_dtype = *parsed;
    auto shape = entry.find("shape");
    if (shape == entry.end() || !shape->is_array()) fail("{}: missing shape", at);
    std::uint64_t bytes_needed = dtype_size(t.aero_dtype);
    for (const auto& d : *shape) {
      if (!d.is_number_unsigned()) fail("{}: shape holds a value that is not a non-negative integer", at);
      t.shape.push_back(d.get<std::uint64_t>());
      if (!checked_mul(bytes_needed, t.shape.back(), bytes_needed)) fail("{}: shape overflows", at);
    }
    auto offsets = entry.find("data_offsets");
    if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
        !(*offsets)[1].is_number_unsigned())
      fail("{}: data_offsets is not a pair of non-negative integers", at);
    t.begin = (*offsets)[0].get<std::uint64_t>();
    t.end = (*offsets)[1].get<std::uint64_t>();
    if (t.end < t.begin || t.end > data_size)
      fail("{}: data_offsets [{}, {}) lie outside the {}-byte data region", at, t.begin, t.end, data_size);
    if (t.end - t.begin != bytes_needed)
      fail("{}: holds {} bytes, its shape and dtype need {}", at, t.end - t.begin, bytes_needed);
    found.push_back(std::move(t));
  }
  std::sort(found.begin(), found.end(), [](auto& a, auto& b) { return a.begin < b.begin; });
  for (std::size_t i = 1; i < found.size(); ++i)
    if (found[i].begin < found[i - 1].end)
      fail("{}: tensors '{}' and '{}' overlap", where, found[i - 1].name, found[i].name);
  files_.push_back(std::move(file));
  tensors_.insert(tensors_.end(), std::make_move_iterator(found.begin()), std::make_move_iterator(found.end()));
}

const SafetensorsTensor* SafetensorsModel::find(std::string_view name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name, [](auto& t, std::string_view n) { return t.name < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

std::span<const std::uint8_t> SafetensorsModel::data(const SafetensorsTensor& t) const {
  const File& f = *files_[t.file];
  return f.map.bytes().subspan(f.data_start + t.begin, t.end - t.begin);
}

std::vector<const MappedFile*> SafetensorsModel::mapped_files() const {
  std::vector<const MappedFile*> out;
  for (const auto& f : files_) out.push_back(&f->map);
  return out;
}

std::vector<std::filesystem::path> SafetensorsModel::files() const {
  std::vector<std::filesystem::path> out;
  for (const auto& f : files_) out.push_back(f->map.path());
  return out;
}

}  // namespace aero::format
