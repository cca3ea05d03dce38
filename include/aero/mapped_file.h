// A read-only memory map of a whole file. Tensor data is served as views into it, so a
// multi-gigabyte model costs no copy and no read until its pages are touched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <filesystem>
#include <span>
#include <string>

namespace aero {

class MappedFile {
 public:
  static MappedFile open(const std::filesystem::path& path);

  MappedFile() = default;
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::uint8_t> bytes() const { return {data_, size_}; }
  std::size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

  // Hint that [offset, offset+length) will be read once, front to back.
  void advise_sequential(std::size_t offset, std::size_t length) const;

  // Drops the whole pages inside `bytes` (a view into some mapping) from this process's
  // resident set; the data stays in the page cache and faults back in if touched again.
  // Streaming a model through memory this way keeps peak RSS flat whatever its size.
  static void release(std::span<const std::uint8_t> bytes);

  // Maps in the pages of `bytes` with one call instead of one fault per few pages.
  static void populate(std::span<const std::uint8_t> bytes);

  // Hands `bytes` to emit() in pieces of `piece` bytes, releasing each piece afterwards.
  template <class Emit>
  static void stream(std::span<const std::uint8_t> bytes, Emit&& emit, std::size_t piece = 8 << 20) {
    for (std::size_t at = 0; at < bytes.size(); at += piece) {
      auto part = bytes.subspan(at, std::min(piece, bytes.size() - at));
      populate(part);
      emit(part);
      release(part);
    }
  }

 private:
  std::filesystem::path path_;
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

// The whole of a small file (JSON sidecars, manifests), refused when larger than `max_bytes`.
std::string read_small_file(const std::filesystem::path& path, std::uint64_t max_bytes);

}  // namespace aero
