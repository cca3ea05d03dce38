// IHSH (control-plane digest) and PHSH (per-page digests of a weight shard): the payloads
// the writer emits and the checks the validator runs, in one place.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "aero/format/aero.h"

namespace aero::format::integrity {

// BLAKE3 over [0, end) of the file with the 32-byte hash field of every TOC entry zeroed.
Digest control_plane_digest(std::span<const std::uint8_t> file, std::uint64_t toc_offset, std::uint32_t entries,
                            std::uint64_t end);

std::string ihsh_payload(std::uint64_t covered_end, const Digest& digest);

struct PageHashes {
  std::string shard_name;
  std::uint64_t page_size = 0;
  std::vector<Digest> digests;
};
PageHashes parse_phsh(std::span<const std::uint8_t> payload, const std::string& where);
std::string phsh_payload(const PageHashes& pages);
std::uint64_t page_count(std::uint64_t shard_bytes, std::uint64_t page_size);

}  // namespace aero::format::integrity
