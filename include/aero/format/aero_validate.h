// Integrity checks of an AERO model (file or AEROSET), at three depths.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace aero::format {

enum class ValidationLevel {
  Control,   // the IHSH digest of header, TOC and string table, nothing else
  Standard,  // structure and limits, every non-weight chunk's BLAKE3, IHSH, sizes of set parts
  Full,      // Standard + every weight shard's BLAKE3, PHSH pages, tensor hashes, set SHA-256s
};

struct ValidationReport {
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
  std::uint64_t bytes_hashed = 0;
  bool ok() const { return errors.empty(); }
};

ValidationReport validate(const std::filesystem::path& path, ValidationLevel level, unsigned threads);

}  // namespace aero::format
