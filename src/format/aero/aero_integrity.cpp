#include "format/aero/integrity.h"

#include "aero/error.h"
#include "common/bytes.h"

namespace aero::format::integrity {

Digest control_plane_digest(std::span<const std::uint8_t> file, std::uint64_t toc_offset, std::uint32_t entries,
                            std::uint64_t end) {
  std::vector<std::uint8_t> copy(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(end));
  for (std::uint32_t i = 0; i < entries; ++i) {
    std::uint64_t hash_at = toc_offset + kTocHeaderSize + std::uint64_t{i} * kTocEntrySize + 48;
    if (hash_at >= end) break;
    std::memset(copy.data() + hash_at, 0, static_cast<std::size_t>(std::min<std::uint64_t>(32, end - hash_at)));
  }
  return blake3(copy);
}

std::string ihsh_payload(std::uint64_t covered_end, const Digest& digest) {
  Json ihsh = Json::object();
  ihsh["algo"] = "blake3-256";
  ihsh["covered_ranges"] = Json::array({Json::array({0, covered_end})});
  ihsh["digest"] = Json::binary(std::vector<std::uint8_t>(digest.begin(), digest.end()));
  return to_msgpack(ihsh);
}

std::uint64_t page_count(std::uint64_t shard_bytes, std::uint64_t page_size) {
  return shard_bytes == 0 ? 0 : (shard_bytes + page_size - 1) / page_size;
}

PageHashes parse_phsh(std::span<const std::uint8_t> payload, const std::string& where) {
  Json j = parse_msgpack(payload, where);
  if (!j.is_object()) fail("{}: not a MessagePack map", where);
  PageHashes pages;
  auto name = j.find("shard_name");
  auto size = j.find("page_size");
  auto digests = j.find("digests");
  if (name == j.end() || !name->is_string()) fail("{}: no shard_name", where);
  if (size == j.end() || !size->is_number_unsigned() || size->get<std::uint64_t>() == 0)
    fail("{}: page_size is not a positive integer", where);
  if (digests == j.end() || !digests->is_array()) fail("{}: no digests list", where);
  pages.shard_name = name->get<std::string>();
  pages.page_size = size->get<std::uint64_t>();
  for (const auto& d : *digests) {
    if (!d.is_binary() || d.get_binary().size() != 32) fail("{}: a page digest is not 32 bytes", where);
    Digest digest;
    std::copy(d.get_binary().begin(), d.get_binary().end(), digest.begin());
    pages.digests.push_back(digest);
  }
  return pages;
}

std::string phsh_payload(const PageHashes& pages) {
  Json j = Json::object();
  j["shard_name"] = pages.shard_name;
  j["page_size"] = pages.page_size;
  Json list = Json::array();
  for (const auto& d : pages.digests) list.push_back(Json::binary(std::vector<std::uint8_t>(d.begin(), d.end())));
  j["digests"] = std::move(list);
  return to_msgpack(j);
}

}  // namespace aero::format::integrity
