// BLAKE3 (the official C implementation, SIMD-dispatched) and SHA-256 (OpenSSL).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace aero {

using Digest = std::array<std::uint8_t, 32>;

class Blake3 {
 public:
  Blake3();
  ~Blake3();
  Blake3(Blake3&&) noexcept;
  Blake3& operator=(Blake3&&) noexcept;

  void update(std::span<const std::uint8_t> bytes);
  Digest finish() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

Digest blake3(std::span<const std::uint8_t> bytes);

std::string to_hex(std::span<const std::uint8_t> bytes);
// Parses exactly 64 hex digits; nullopt otherwise.
std::optional<Digest> digest_from_hex(std::string_view hex);
bool is_zero(const Digest& digest);

// SHA-256 of a whole file as lowercase hex (AEROSET part checksums).
std::string sha256_file_hex(const std::filesystem::path& path);

}  // namespace aero
