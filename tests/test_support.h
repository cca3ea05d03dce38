// Helpers shared by the tests: the shared fixtures, scratch folders, file bytes.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "aero/error.h"

namespace aero::test {

inline std::optional<std::filesystem::path> shared_dir() {
  if (const char* env = std::getenv("AERO_SHARED")) return std::filesystem::path(env);
  std::filesystem::path p(AERO_SHARED_DIR);
  if (std::filesystem::exists(p / "fixtures")) return p;
  return std::nullopt;
}

// Skips the current test when ../shared is absent (the repository builds and tests without it).
#define AERO_REQUIRE_SHARED(var)                                                                   \
  auto var##_opt = ::aero::test::shared_dir();                                                     \
  if (!var##_opt) GTEST_SKIP() << "shared fixtures not found at " AERO_SHARED_DIR " (set AERO_SHARED)"; \
  const std::filesystem::path var = *var##_opt

// A fresh folder under the system temp dir, removed with its contents at scope exit.
class ScratchDir {
 public:
  ScratchDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("aero-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// The message of the aero::Error `f` throws (checked to be one line), or "(no error)".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    return e.what();
  }
  return "(no error)";
}

inline std::vector<std::uint8_t> read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

inline void write_bytes(const std::filesystem::path& p, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> out(n);
  for (auto& b : out) b = static_cast<std::uint8_t>(rng());
  return out;
}

}  // namespace aero::test
