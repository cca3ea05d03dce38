#include "aero/format/aero_writer.h"

#include <optional>
#include <set>
#include <utility>

#include <zstd.h>

#include "aero/error.h"
#include "aero/format/aero_model.h"
#include "aero/output_file.h"
#include "common/bytes.h"
#include "format/aero/integrity.h"

namespace aero::format {
namespace {

constexpr std::uint64_t kIhshReserved = 256;  // the reference writer's IHSH size

std::string zstd_compress(std::string_view raw, int level) {
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  std::size_t n = ZSTD_compress(out.data(), out.size(), raw.data(), raw.size(), level);
  if (ZSTD_isError(n)) fail("zstd compression failed: {}", ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

struct PlannedTensor {
  const TensorWrite* source;
  std::uint32_t shard_id;
  std::uint64_t data_off;
};

struct PlannedShard {
  std::uint64_t size = 0;  // including alignment padding between tensors
  std::vector<std::size_t> tensors;
};

struct PlannedChunk {
  PlannedChunk(std::string fourcc_, std::string name_, std::string role_, std::uint32_t flags_,
               std::optional<std::uint32_t> shard = std::nullopt)
      : fourcc(std::move(fourcc_)), name(std::move(name_)), role(std::move(role_)), flags(flags_), shard_id(shard) {}
  std::string fourcc, name, role;
  std::uint32_t flags = 0;
  std::optional<std::uint32_t> shard_id;
  std::string stored;         // metadata payload as stored (compressed or not)
  std::uint64_t length = 0;   // stored bytes (reserved bytes for a deferred TIDX)
  std::uint64_t ulen = 0;
  std::uint64_t offset = 0;
  Digest hash{};
};

Json tidx_entry(const PlannedTensor& p, const std::string* hash) {
  const TensorWrite& t = *p.source;
  Json e = Json::object();
  e["name"] = t.name;
  e["dtype"] = static_cast<std::uint32_t>(t.dtype);
  e["shape"] = t.shape;
  e["shard_id"] = p.shard_id;
  e["data_off"] = p.data_off;
  e["data_len"] = t.data_len;
  e["flags"] = 0;
  if (t.dtype == DType::Packed) {
    e["quant_params"] = Json{{"ggml_type", t.ggml_type}};
    if (t.quant_id) e["quant_id"] = *t.quant_id;
  }
  if (hash) e["hash_b3"] = *hash;
  return e;
}

void check_inputs(const std::vector<TensorWrite>& tensors, const WriteOptions& options) {
  if (options.max_shard_bytes == 0) fail("max shard size must be positive");
  if (options.page_size == 0) fail("page size must be positive");
  if (options.tensor_alignment == 0 || options.tensor_alignment % 16 != 0)
    fail("tensor alignment must be a positive multiple of 16");
  std::set<std::string_view> names;
  for (const auto& t : tensors) {
    if (t.name.empty()) fail("a tensor has an empty name");
    if (!names.insert(t.name).second) fail("duplicate tensor name '{}'", t.name);
    if (!t.write_data) fail("tensor '{}' has no data", t.name);
    if (t.dtype == DType::Packed && t.ggml_type < 0) fail("packed tensor '{}' has no ggml type", t.name);
  }
}

// Counts, hashes and forwards one shard's bytes.
class ShardSink : public ByteSink {
 public:
  ShardSink(OutputFile& out, std::uint64_t page_size, bool pages, const std::function<void(std::uint64_t)>& progress)
      : out_(out), page_size_(page_size), pages_(pages), progress_(progress) {}

  void write(std::span<const std::uint8_t> bytes) override {
    out_.write(bytes);
    if (progress_) progress_(bytes.size());
    shard_.update(bytes);
    if (tensor_) tensor_->update(bytes);
    written_ += bytes.size();
    while (pages_ && !bytes.empty()) {
      auto n = static_cast<std::size_t>(std::min<std::uint64_t>(bytes.size(), page_size_ - in_page_));
      page_.update(bytes.first(n));
      in_page_ += n;
      bytes = bytes.subspan(n);
      if (in_page_ == page_size_) end_page();
    }
  }
  void pad_to(std::uint64_t shard_offset) {
    static const std::array<std::uint8_t, 64> zeros{};
    while (written_ < shard_offset)
      write(std::span(zeros).first(static_cast<std::size_t>(std::min<std::uint64_t>(64, shard_offset - written_))));
  }
  void begin_tensor(Blake3* hasher) { tensor_ = hasher; }
  std::uint64_t written() const { return written_; }
  Digest finish_shard(std::vector<Digest>& page_digests) {
    if (in_page_ > 0) end_page();
    page_digests = std::move(digests_);
    return shard_.finish();
  }

 private:
  void end_page() {
    digests_.push_back(page_.finish());
    page_ = Blake3();
    in_page_ = 0;
  }

  OutputFile& out_;
  std::uint64_t page_size_;
  bool pages_;
  const std::function<void(std::uint64_t)>& progress_;
  Blake3 shard_, page_;
  Blake3* tensor_ = nullptr;
  std::uint64_t written_ = 0, in_page_ = 0;
  std::vector<Digest> digests_;
};

}  // namespace

ShardPlan plan_shards(const std::vector<TensorWrite>& tensors, std::uint64_t max_shard_bytes, std::uint64_t alignment) {
  ShardPlan plan;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    std::uint64_t off = plan.shards.empty() ? 0 : align_up(plan.shard_bytes.back(), alignment);
    if (plan.shards.empty() || (!plan.shards.back().empty() && off + t.data_len > max_shard_bytes)) {
      plan.shards.emplace_back();
      plan.shard_bytes.push_back(0);
      off = 0;
    }
    plan.shards.back().push_back(i);
    plan.shard_bytes.back() = off + t.data_len;
    plan.tensors.push_back({static_cast<std::uint32_t>(plan.shards.size() - 1), off});
  }
  return plan;
}

WriteSummary write_aero(const std::filesystem::path& out_path, const ModelDescription& model,
                        const std::vector<TensorWrite>& tensors, const WriteOptions& options) {
  check_inputs(tensors, options);
  const std::uint64_t align = options.tensor_alignment;

  const ShardPlan plan = plan_shards(tensors, options.max_shard_bytes, align);
  std::vector<PlannedTensor> planned;
  for (std::size_t i = 0; i < tensors.size(); ++i)
    planned.push_back({&tensors[i], plan.tensors[i].shard_id, plan.tensors[i].data_off});
  std::vector<PlannedShard> shards;
  if (!options.index_only)
    for (std::size_t s = 0; s < plan.shards.size(); ++s) shards.push_back({plan.shard_bytes[s], plan.shards[s]});

  // ---- chunk list, in the reference order ----
  std::vector<PlannedChunk> chunks;
  if (options.integrity) chunks.push_back({"IHSH", "control.integrity", "control_integrity", chunk_flag::kOptional});
  chunks.push_back({"MJSN", "meta.json", "json", 0});
  chunks.push_back({"MMSG", "manifest", "manifest", chunk_flag::kZstd});
  chunks.push_back({"TIDX", "tensors", "tensors", chunk_flag::kZstd | chunk_flag::kIndex});
  const std::size_t mjsn_index = options.integrity ? 1 : 0;
  const std::size_t tidx_index = mjsn_index + 2;
  for (const auto& extra : model.extra_chunks) {
    if (extra.fourcc.size() != 4) fail("chunk fourcc '{}' is not four characters", extra.fourcc);
    PlannedChunk c{extra.fourcc, extra.name, extra.role, chunk_flag::kOptional};
    c.ulen = extra.payload.size();
    c.hash = blake3({reinterpret_cast<const std::uint8_t*>(extra.payload.data()), extra.payload.size()});
    c.stored = extra.compress ? zstd_compress(extra.payload, options.zstd_level) : extra.payload;
    c.length = c.stored.size();
    if (extra.compress) c.flags |= chunk_flag::kZstd;
    chunks.push_back(std::move(c));
  }
  std::vector<std::size_t> wtsh_index(shards.size()), phsh_index(shards.size(), 0);
  for (std::uint32_t s = 0; s < shards.size(); ++s) {
    wtsh_index[s] = chunks.size();
    PlannedChunk w{"WTSH", fmt::format("weights.shard{}", s), "weights", chunk_flag::kMmapCritical, s};
    w.length = w.ulen = shards[s].size;
    chunks.push_back(std::move(w));
    if (options.integrity) {
      phsh_index[s] = chunks.size();
      PlannedChunk p{"PHSH", fmt::format("weights.shard{}.phsh", s), "page_hashes", chunk_flag::kOptional, s};
      // Digests are fixed-size, so placeholders give the exact payload size now.
      integrity::PageHashes placeholder{chunks[wtsh_index[s]].name, options.page_size,
                                        std::vector<Digest>(integrity::page_count(shards[s].size, options.page_size))};
      p.length = p.ulen = integrity::phsh_payload(placeholder).size();
      chunks.push_back(std::move(p));
    }
  }
  if (chunks.size() > kMaxEntryCount) fail("{} chunks exceed the format's cap of {}", chunks.size(), kMaxEntryCount);

  // ---- metadata payloads ----
  Json meta = Json::object();
  meta["model_name"] = model.name;
  meta["architecture"] = model.architecture;
  for (const auto& [k, v] : model.meta.items()) meta[k] = v;
  const std::string mjsn = to_sorted_compact_json(meta);

  Json manifest = Json::object();
  manifest["format"] = Json{{"name", "AERO"}, {"version", {0, 1}}};
  manifest["model"] = Json{{"name", model.name}, {"architecture", model.architecture}};
  Json chunk_list = Json::array(), shard_list = Json::array();
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    Json c{{"role", chunks[i].role}, {"fourcc", chunks[i].fourcc}, {"toc_index", i}};
    if (chunks[i].shard_id) c["shard_id"] = *chunks[i].shard_id;
    chunk_list.push_back(std::move(c));
  }
  for (std::uint32_t s = 0; s < shards.size(); ++s)
    shard_list.push_back(Json{{"shard_id", s},
                              {"toc_index", wtsh_index[s]},
                              {"size_bytes", shards[s].size},
                              {"tensor_count", shards[s].tensors.size()},
                              {"mmap_critical", true}});
  manifest["chunks"] = std::move(chunk_list);
  manifest["shards"] = std::move(shard_list);
  const std::string mmsg = to_msgpack(manifest);

  auto build_tidx = [&](const std::vector<std::string>* hashes) {
    Json list = Json::array();
    for (std::size_t i = 0; i < planned.size(); ++i) list.push_back(tidx_entry(planned[i], hashes ? &(*hashes)[i] : nullptr));
    return to_msgpack(Json{{"tensors", std::move(list)}});
  };
  const std::vector<std::string> placeholder_hashes(planned.size(), std::string(64, '0'));
  std::string tidx = build_tidx(options.tensor_hash ? &placeholder_hashes : nullptr);

  auto set_metadata = [&](PlannedChunk& c, const std::string& raw) {
    c.ulen = raw.size();
    c.hash = blake3({reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size()});
    c.stored = (c.flags & chunk_flag::kZstd) ? zstd_compress(raw, options.zstd_level) : raw;
    c.length = c.stored.size();
  };
  set_metadata(chunks[mjsn_index], mjsn);
  set_metadata(chunks[mjsn_index + 1], mmsg);
  set_metadata(chunks[tidx_index], tidx);
  // With tensor hashes the final TIDX exists only after the weights are written; its
  // uncompressed size is already exact (hashes are fixed-length), so reserving the
  // compressor's worst case for that size always leaves room.
  if (options.tensor_hash) chunks[tidx_index].length = ZSTD_compressBound(tidx.size());
  if (options.integrity) chunks[0].length = chunks[0].ulen = kIhshReserved;

  // ---- layout ----
  std::string strings;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> name_refs;
  for (const auto& c : chunks) {
    name_refs.emplace_back(static_cast<std::uint32_t>(strings.size()), static_cast<std::uint32_t>(c.name.size()));
    strings += c.name;
    strings += '\0';
  }
  strings.resize(align_up(strings.size(), 8), '\0');
  if (strings.size() > kMaxStringTable) fail("string table exceeds the format's cap");
  const std::uint64_t toc_length = kTocHeaderSize + chunks.size() * kTocEntrySize;
  const std::uint64_t strings_offset = align_up(kHeaderSize + toc_length, 8);
  const std::uint64_t payload_start = align_up(strings_offset + strings.size(), 16);
  std::uint64_t cursor = payload_start;
  for (auto& c : chunks) {
    cursor = align_up(cursor, c.fourcc == "WTSH" ? align : 16);
    c.offset = cursor;
    cursor += c.length;
  }

  // ---- payloads, streamed ----
  OutputFile out(out_path);
  out.pad_to(payload_start);
  std::vector<std::string> tensor_hashes(planned.size());
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    PlannedChunk& c = chunks[i];
    out.pad_to(c.offset);
    if (c.fourcc == "IHSH" || (c.fourcc == "TIDX" && options.tensor_hash)) {
      out.pad_to(c.offset + c.length);  // filled in below
    } else if (c.fourcc == "WTSH") {
      const std::uint32_t s = *c.shard_id;
      ShardSink sink(out, options.page_size, options.integrity, options.progress);
      for (std::size_t ti : shards[s].tensors) {
        const PlannedTensor& p = planned[ti];
        sink.pad_to(p.data_off);
        Blake3 tensor_hasher;
        sink.begin_tensor(options.tensor_hash ? &tensor_hasher : nullptr);
        p.source->write_data(sink);
        if (sink.written() != p.data_off + p.source->data_len)
          fail("tensor '{}' produced {} bytes, expected {}", p.source->name, sink.written() - p.data_off,
               p.source->data_len);
        sink.begin_tensor(nullptr);
        if (options.tensor_hash) tensor_hashes[ti] = to_hex(tensor_hasher.finish());
      }
      std::vector<Digest> pages;
      c.hash = sink.finish_shard(pages);
      if (options.integrity) {
        PlannedChunk& phsh = chunks[phsh_index[s]];
        phsh.stored = integrity::phsh_payload({c.name, options.page_size, std::move(pages)});
        phsh.hash = blake3({reinterpret_cast<const std::uint8_t*>(phsh.stored.data()), phsh.stored.size()});
      }
    } else {
      out.write(c.stored);
    }
  }
  if (options.tensor_hash && options.index_only) {
    // No weights pass through an index: hashes come from the parts, or from reading the data.
    for (std::size_t i = 0; i < planned.size(); ++i) {
      if (!planned[i].source->hash_b3.empty()) {
        tensor_hashes[i] = planned[i].source->hash_b3;
        continue;
      }
      struct HashSink : ByteSink {
        Blake3 h;
        void write(std::span<const std::uint8_t> b) override { h.update(b); }
      } sink;
      planned[i].source->write_data(sink);
      tensor_hashes[i] = to_hex(sink.h.finish());
    }
  }
  if (options.tensor_hash) {
    PlannedChunk& c = chunks[tidx_index];
    const std::string raw = build_tidx(&tensor_hashes);
    if (raw.size() != c.ulen) fail("internal error: TIDX size changed when hashes were filled in");
    std::string stored = zstd_compress(raw, options.zstd_level);
    c.hash = blake3({reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size()});
    c.length = stored.size();
    out.write_at(c.offset, {reinterpret_cast<const std::uint8_t*>(stored.data()), stored.size()});
    tidx = raw;
  }

  // ---- control plane ----
  std::array<std::uint8_t, 16> uuid{};
  if (options.uuid) {
    uuid = *options.uuid;
  } else {
    // Content-derived (RFC 9562 version 8): identical content, identical file.
    Blake3 h;
    h.update({reinterpret_cast<const std::uint8_t*>(mjsn.data()), mjsn.size()});
    h.update({reinterpret_cast<const std::uint8_t*>(tidx.data()), tidx.size()});
    for (const auto& c : chunks) h.update(c.hash);
    Digest d = h.finish();
    std::copy_n(d.begin(), 16, uuid.begin());
    uuid[6] = static_cast<std::uint8_t>((uuid[6] & 0x0f) | 0x80);
    uuid[8] = static_cast<std::uint8_t>((uuid[8] & 0x3f) | 0x80);
  }
  auto control_plane = [&] {
    std::string cp;
    cp.append("AERO", 4);
    append_le<std::uint16_t>(cp, kVersionMajor);
    append_le<std::uint16_t>(cp, kVersionMinor);
    append_le<std::uint32_t>(cp, kHeaderSize);
    append_le<std::uint64_t>(cp, kHeaderSize);
    append_le<std::uint64_t>(cp, toc_length);
    append_le<std::uint64_t>(cp, strings_offset);
    append_le<std::uint64_t>(cp, strings.size());
    append_le<std::uint64_t>(cp, 0);
    cp.append(reinterpret_cast<const char*>(uuid.data()), uuid.size());
    cp.append(28, '\0');
    append_le<std::uint32_t>(cp, static_cast<std::uint32_t>(chunks.size()));
    append_le<std::uint32_t>(cp, 0);
    append_le<std::uint64_t>(cp, 0);
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      const PlannedChunk& c = chunks[i];
      cp.append(c.fourcc);
      append_le<std::uint32_t>(cp, c.flags);
      append_le<std::uint64_t>(cp, c.offset);
      append_le<std::uint64_t>(cp, c.length);
      append_le<std::uint64_t>(cp, c.ulen);
      append_le<std::uint32_t>(cp, name_refs[i].first);
      append_le<std::uint32_t>(cp, name_refs[i].second);
      append_le<std::uint64_t>(cp, 0);
      cp.append(reinterpret_cast<const char*>(c.hash.data()), c.hash.size());
    }
    cp.resize(strings_offset, '\0');
    cp += strings;
    cp.resize(payload_start, '\0');
    return cp;
  };
  if (options.integrity) {
    // The digest ignores every TOC hash field, IHSH's own included, so it can be taken first.
    std::string cp = control_plane();
    Digest digest = integrity::control_plane_digest({reinterpret_cast<const std::uint8_t*>(cp.data()), cp.size()},
                                                    kHeaderSize, static_cast<std::uint32_t>(chunks.size()),
                                                    payload_start);
    std::string ihsh = integrity::ihsh_payload(payload_start, digest);
    ihsh.resize(kIhshReserved, '\0');
    chunks[0].hash = blake3({reinterpret_cast<const std::uint8_t*>(ihsh.data()), ihsh.size()});
    out.write_at(chunks[0].offset, {reinterpret_cast<const std::uint8_t*>(ihsh.data()), ihsh.size()});
  }
  for (std::size_t s = 0; s < shards.size() && options.integrity; ++s) {
    const PlannedChunk& p = chunks[phsh_index[s]];
    if (p.stored.size() != p.length) fail("internal error: PHSH size changed");
    out.write_at(p.offset, {reinterpret_cast<const std::uint8_t*>(p.stored.data()), p.stored.size()});
  }
  const std::string cp = control_plane();
  out.write_at(0, {reinterpret_cast<const std::uint8_t*>(cp.data()), cp.size()});
  const std::uint64_t size = out.position();
  out.commit();
  return {size, shards.size()};
}

ModelDescription describe(const AeroModel& model) {
  const AeroFile& index = model.index();
  ModelDescription d;
  d.name = index.model_name();
  d.architecture = index.architecture();
  for (const auto& [k, v] : index.meta().items())
    if (k != "model_name" && k != "architecture") d.meta[k] = v;
  for (const auto& c : index.chunks()) {
    static const std::set<std::string> kStandard = {"IHSH", "MJSN", "MMSG", "TIDX", "WTSH", "PHSH"};
    if (kStandard.count(c.fourcc)) continue;
    auto payload = index.payload(c);
    std::string role = "extra";
    auto roles = index.manifest().find("chunks");
    if (roles != index.manifest().end() && roles->is_array())
      for (const auto& r : *roles)
        if (r.is_object() && r.value("toc_index", std::uint64_t(-1)) == c.toc_index) role = r.value("role", role);
    d.extra_chunks.push_back({c.fourcc, c.name, role, std::string(payload.begin(), payload.end()), c.compressed()});
  }
  return d;
}

std::vector<TensorWrite> tensors_of(const AeroModel& model) {
  std::vector<TensorWrite> out;
  for (const auto& t : model.tensors()) {
    TensorWrite w;
    w.name = t.name;
    w.dtype = t.dtype;
    w.ggml_type = t.ggml_type;
    w.quant_id = t.quant_id;
    w.shape = t.stored_shape;
    w.data_len = t.data_len;
    w.write_data = [&model, &t](ByteSink& sink) { sink.write(model.tensor_data(t)); };
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace aero::format
