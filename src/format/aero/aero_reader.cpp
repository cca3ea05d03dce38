#include <algorithm>
#include <charconv>

#include "aero/error.h"
#include "aero/format/aero.h"
#include "aero/quant/types.h"
#include "common/bytes.h"

namespace aero::format {
namespace {

std::uint64_t json_uint(const Json& entry, const char* key, const std::string& where) {
  auto it = entry.find(key);
  if (it == entry.end()) fail("{}: missing '{}'", where, key);
  if (!it->is_number_integer() || (it->is_number_integer() && !it->is_number_unsigned() && it->get<std::int64_t>() < 0))
    fail("{}: '{}' is not a non-negative integer", where, key);
  return it->get<std::uint64_t>();
}

std::string chunk_label(const Chunk& c) { return fmt::format("chunk {} ({} '{}')", c.toc_index, c.fourcc, c.name); }

}  // namespace

AeroFile AeroFile::open(const std::filesystem::path& path) {
  AeroFile file;
  file.file_ = MappedFile::open(path);
  file.parse_control_plane();
  file.parse_metadata();
  return file;
}

std::uint64_t AeroFile::payload_start() const {
  return align_up(header_.string_table_offset + header_.string_table_length, 16);
}

void AeroFile::parse_control_plane() {
  const auto bytes = file_.bytes();
  const std::uint64_t size = bytes.size();
  const std::string where = file_.path().string();
  const std::uint8_t* p = bytes.data();

  if (size < kHeaderSize) fail("{}: truncated: {} bytes is shorter than the 96-byte AERO header", where, size);
  if (std::memcmp(p, "AERO", 4) != 0) fail("{}: not an AERO file (bad magic '{}')", where, printable_fourcc(p));
  header_.version_major = load_le<std::uint16_t>(p + 4);
  header_.version_minor = load_le<std::uint16_t>(p + 6);
  header_.header_size = load_le<std::uint32_t>(p + 8);
  header_.toc_offset = load_le<std::uint64_t>(p + 12);
  header_.toc_length = load_le<std::uint64_t>(p + 20);
  header_.string_table_offset = load_le<std::uint64_t>(p + 28);
  header_.string_table_length = load_le<std::uint64_t>(p + 36);
  header_.file_flags = load_le<std::uint64_t>(p + 44);
  std::memcpy(header_.uuid.data(), p + 52, 16);

  if (header_.version_major != kVersionMajor || header_.version_minor != kVersionMinor)
    fail("{}: unsupported AERO version {}.{} (this reader handles 0.1)", where, header_.version_major,
         header_.version_minor);
  if (header_.header_size != kHeaderSize) fail("{}: header_size is {}, expected 96", where, header_.header_size);
  if (header_.toc_offset < kHeaderSize || !range_inside(header_.toc_offset, kTocHeaderSize, size))
    fail("{}: TOC at offset {} lies outside the file ({} bytes)", where, header_.toc_offset, size);

  const std::uint32_t count = load_le<std::uint32_t>(p + header_.toc_offset);
  if (count > kMaxEntryCount) fail("{}: TOC entry count {} exceeds the cap of {}", where, count, kMaxEntryCount);
  const std::uint64_t toc_length = kTocHeaderSize + std::uint64_t{count} * kTocEntrySize;
  if (header_.toc_length != toc_length)
    fail("{}: toc_length {} does not match {} entries ({} bytes)", where, header_.toc_length, count, toc_length);
  if (!range_inside(header_.toc_offset, toc_length, size))
    fail("{}: truncated: TOC of {} entries runs past the end of the file", where, count);
  if (header_.string_table_length > kMaxStringTable)
    fail("{}: string table of {} bytes exceeds the cap of {}", where, header_.string_table_length, kMaxStringTable);
  if (header_.string_table_offset < header_.toc_offset + toc_length ||
      !range_inside(header_.string_table_offset, header_.string_table_length, size))
    fail("{}: string table [{}, +{}) overlaps the TOC or lies outside the file", where,
         header_.string_table_offset, header_.string_table_length);

  const std::uint8_t* strings = p + header_.string_table_offset;
  const std::uint64_t control_end = header_.string_table_offset + header_.string_table_length;
  chunks_.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint8_t* e = p + header_.toc_offset + kTocHeaderSize + std::uint64_t{i} * kTocEntrySize;
    Chunk c;
    c.toc_index = i;
    c.fourcc = printable_fourcc(e);
    c.flags = load_le<std::uint32_t>(e + 4);
    c.offset = load_le<std::uint64_t>(e + 8);
    c.length = load_le<std::uint64_t>(e + 16);
    c.ulen = load_le<std::uint64_t>(e + 24);
    const std::uint32_t name_off = load_le<std::uint32_t>(e + 32);
    const std::uint32_t name_len = load_le<std::uint32_t>(e + 36);
    std::memcpy(c.blake3.data(), e + 48, 32);
    if (!range_inside(name_off, name_len, header_.string_table_length))
      fail("{}: chunk {} name [{}, +{}) lies outside the string table", where, i, name_off, name_len);
    c.name.assign(reinterpret_cast<const char*>(strings + name_off), name_len);
    if (!range_inside(c.offset, c.length, size))
      fail("{}: truncated: {} [{}, +{}) runs past the end of the file ({} bytes)", where, chunk_label(c), c.offset,
           c.length, size);
    if (c.length > 0 && c.offset < control_end)
      fail("{}: {} at offset {} overlaps the header, TOC or string table", where, chunk_label(c), c.offset);
    if (!c.compressed() && c.ulen != c.length)
      fail("{}: {} is uncompressed but its ulen {} differs from its length {}", where, chunk_label(c), c.ulen,
           c.length);
    chunks_.push_back(std::move(c));
  }

  std::vector<const Chunk*> by_offset;
  for (const auto& c : chunks_)
    if (c.length > 0) by_offset.push_back(&c);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (std::size_t i = 1; i < by_offset.size(); ++i) {
    const Chunk& a = *by_offset[i - 1];
    const Chunk& b = *by_offset[i];
    if (a.offset + a.length > b.offset) fail("{}: {} overlaps {}", where, chunk_label(a), chunk_label(b));
  }
}

std::span<const std::uint8_t> AeroFile::stored_bytes(const Chunk& chunk) const {
  return file_.bytes().subspan(chunk.offset, chunk.length);  // bounds proven in parse_control_plane
}

std::vector<std::uint8_t> AeroFile::payload(const Chunk& chunk) const {
  const auto stored = stored_bytes(chunk);
  const std::string what = fmt::format("{}: {}", file_.path().string(), chunk_label(chunk));
  if (chunk.compressed()) return zstd_decompress(stored, chunk.ulen, what);
  if (chunk.length > kMaxMetadataChunk) fail("{}: {} bytes exceeds the metadata cap", what, chunk.length);
  return {stored.begin(), stored.end()};
}

static std::string model_field(const Json& meta, const Json& manifest, const char* meta_key, const char* key) {
  if (auto v = meta.find(meta_key); v != meta.end() && v->is_string()) return v->get<std::string>();
  if (auto m = manifest.find("model"); m != manifest.end() && m->is_object())
    if (auto v = m->find(key); v != m->end() && v->is_string()) return v->get<std::string>();
  return "";
}

std::string AeroFile::model_name() const { return model_field(meta_, manifest_, "model_name", "name"); }
std::string AeroFile::architecture() const { return model_field(meta_, manifest_, "architecture", "architecture"); }

const Chunk* AeroFile::find_chunk(std::string_view fourcc, std::string_view name) const {
  for (const auto& c : chunks_)
    if (c.fourcc == fourcc && (name.empty() || c.name == name)) return &c;
  return nullptr;
}

const Tensor* AeroFile::find_tensor(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

const Chunk* AeroFile::shard_chunk(std::uint32_t shard_id) const {
  for (auto [id, index] : shard_chunks_)
    if (id == shard_id) return &chunks_[index];
  return nullptr;
}

std::vector<std::uint32_t> AeroFile::shard_ids() const {
  std::vector<std::uint32_t> ids;
  for (auto [id, index] : shard_chunks_) ids.push_back(id);
  return ids;
}

void AeroFile::parse_metadata() {
  const std::string where = file_.path().string();
  auto verified_payload = [&](const Chunk& c, bool zero_hash_tolerated) {
    auto data = payload(c);
    if (blake3(data) != c.blake3) {
      if (zero_hash_tolerated && is_zero(c.blake3)) {
        warnings_.push_back(fmt::format(
            "{} has an all-zero BLAKE3 (a known defect of the reference writer); its content is unverified",
            chunk_label(c)));
      } else {
        fail("{}: {} fails its BLAKE3 check (corrupt metadata)", where, chunk_label(c));
      }
    }
    return data;
  };

  if (const Chunk* mjsn = find_chunk("MJSN", "")) {
    auto data = verified_payload(*mjsn, /*zero_hash_tolerated=*/true);
    meta_ = parse_json({reinterpret_cast<const char*>(data.data()), data.size()}, where + ": meta.json");
    if (!meta_.is_object()) fail("{}: meta.json is not a JSON object", where);
    auto source = meta_.find("source_format");
    if (source != meta_.end() && source->is_string() && *source == "gguf") shape_order_ = ShapeOrder::Gguf;
  }
  if (const Chunk* mmsg = find_chunk("MMSG", "")) {
    auto data = verified_payload(*mmsg, false);
    manifest_ = parse_msgpack(data, where + ": manifest");
    if (!manifest_.is_object()) fail("{}: manifest is not a MessagePack map", where);
  }
  map_shards();
  if (const Chunk* tidx = find_chunk("TIDX", "")) {
    auto data = verified_payload(*tidx, false);
    parse_tensor_index(parse_msgpack(data, where + ": tensor index"));
  }
}

void AeroFile::map_shards() {
  const std::string where = file_.path().string();
  // The manifest says which TOC entry holds which shard; files without one name their
  // shards weights.shardN.
  auto shards = manifest_.find("shards");
  if (shards != manifest_.end() && shards->is_array()) {
    for (const auto& s : *shards) {
      if (!s.is_object()) fail("{}: manifest shard entry is not a map", where);
      std::uint64_t id = json_uint(s, "shard_id", where + ": manifest shard");
      std::uint64_t toc = json_uint(s, "toc_index", where + ": manifest shard");
      if (toc >= chunks_.size() || chunks_[toc].fourcc != "WTSH")
        fail("{}: manifest places shard {} at TOC entry {}, which is not a WTSH chunk", where, id, toc);
      if (id > UINT32_MAX) fail("{}: shard id {} out of range", where, id);
      if (shard_chunk(static_cast<std::uint32_t>(id))) fail("{}: shard {} listed twice in the manifest", where, id);
      shard_chunks_.emplace_back(static_cast<std::uint32_t>(id), toc);
    }
    return;
  }
  for (const auto& c : chunks_) {
    if (c.fourcc != "WTSH") continue;
    constexpr std::string_view prefix = "weights.shard";
    if (c.name.rfind(prefix, 0) != 0) fail("{}: WTSH chunk '{}' has no shard number", where, c.name);
    std::uint32_t id = 0;
    auto digits = std::string_view(c.name).substr(prefix.size());
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
    if (ec != std::errc{} || ptr != digits.data() + digits.size())
      fail("{}: WTSH chunk '{}' has no shard number", where, c.name);
    if (shard_chunk(id)) fail("{}: shard {} appears twice", where, id);
    shard_chunks_.emplace_back(id, c.toc_index);
  }
}

void AeroFile::parse_tensor_index(const Json& tidx) {
  const std::string where = file_.path().string() + ": tensor index";
  if (!tidx.is_object()) fail("{}: not a MessagePack map", where);
  auto list = tidx.find("tensors");
  if (list == tidx.end() || !list->is_array()) fail("{}: no 'tensors' array", where);
  tensors_.reserve(list->size());
  for (std::size_t i = 0; i < list->size(); ++i) {
    const Json& e = (*list)[i];
    std::string at = fmt::format("{} entry {}", where, i);
    if (!e.is_object()) fail("{}: not a map", at);
    Tensor t;
    auto name = e.find("name");
    if (name == e.end() || !name->is_string()) fail("{}: missing 'name'", at);
    t.name = name->get<std::string>();
    at = fmt::format("{} tensor '{}'", where, t.name);
    auto dtype = e.find("dtype");
    if (dtype == e.end() || !dtype->is_number_integer()) fail("{}: missing 'dtype'", at);
    auto parsed = dtype_from_code(dtype->get<std::int64_t>());
    if (!parsed) fail("{}: unknown dtype {}", at, dtype->get<std::int64_t>());
    t.dtype = *parsed;
    auto shape = e.find("shape");
    if (shape == e.end() || !shape->is_array()) fail("{}: missing 'shape'", at);
    for (const auto& d : *shape) {
      if (!d.is_number_integer() || (!d.is_number_unsigned() && d.get<std::int64_t>() < 0))
        fail("{}: shape holds a value that is not a non-negative integer", at);
      t.stored_shape.push_back(d.get<std::uint64_t>());
    }
    t.shape = t.stored_shape;
    if (shape_order_ == ShapeOrder::Gguf) std::reverse(t.shape.begin(), t.shape.end());
    std::uint64_t shard = json_uint(e, "shard_id", at);
    if (shard > UINT32_MAX) fail("{}: shard_id {} out of range", at, shard);
    t.shard_id = static_cast<std::uint32_t>(shard);
    t.data_off = json_uint(e, "data_off", at);
    t.data_len = json_uint(e, "data_len", at);
    if (auto h = e.find("hash_b3"); h != e.end() && h->is_string() && !h->get<std::string>().empty()) {
      t.hash_b3 = h->get<std::string>();
      if (!digest_from_hex(t.hash_b3)) fail("{}: hash_b3 is not 64 hex digits", at);
    }
    if (auto q = e.find("quant_id"); q != e.end() && q->is_number_integer()) t.quant_id = q->get<std::int64_t>();
    std::uint64_t needed = 0;
    if (t.dtype == DType::Packed) {
      auto params = e.find("quant_params");
      if (params == e.end() || !params->is_object()) fail("{}: packed tensor without quant_params", at);
      std::uint64_t ggml = json_uint(*params, "ggml_type", at + " quant_params");
      auto traits = quant::type_traits(static_cast<std::uint32_t>(std::min<std::uint64_t>(ggml, UINT32_MAX)));
      if (!traits) fail("{}: unknown quant type {}", at, ggml);
      t.ggml_type = static_cast<int>(ggml);
      std::uint64_t row_elements = t.shape.empty() ? 1 : t.shape.back(), rows = 1;
      for (std::size_t d = 0; d + 1 < t.shape.size(); ++d)
        if (!checked_mul(rows, t.shape[d], rows)) fail("{}: shape overflows", at);
      auto row = quant::row_bytes(*traits, row_elements);
      if (!row) fail("{}: rows of {} elements are not whole {} blocks", at, row_elements, traits->name);
      if (!checked_mul(rows, *row, needed)) fail("{}: shape overflows", at);
    } else {
      needed = dtype_size(t.dtype);
      for (auto d : t.shape)
        if (!checked_mul(needed, d, needed)) fail("{}: shape overflows", at);
    }
    // The reference GGUF converter records each tensor's GGUF alignment padding in data_len.
    const bool padded_ok = shape_order_ == ShapeOrder::Gguf;
    if (padded_ok ? t.data_len < needed : t.data_len != needed)
      fail("{}: data_len {} does not match shape and type ({} bytes)", at, t.data_len, needed);
    if (const Chunk* c = shard_chunk(t.shard_id); c && !range_inside(t.data_off, t.data_len, c->length))
      fail("{}: range [{}, +{}) lies outside shard {} ({} bytes)", at, t.data_off, t.data_len, t.shard_id,
           c->length);
    tensors_.push_back(std::move(t));
  }
  std::vector<std::string_view> names;
  for (const auto& t : tensors_) names.push_back(t.name);
  std::sort(names.begin(), names.end());
  if (auto dup = std::adjacent_find(names.begin(), names.end()); dup != names.end())
    fail("{}: tensor name '{}' appears twice", where, *dup);
}

}  // namespace aero::format
