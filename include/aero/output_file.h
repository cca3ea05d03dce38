// Writes a file atomically: bytes go to a hidden temporary beside the destination, which is
// renamed into place by commit(). Any failure, exception or SIGINT/SIGTERM before commit
// removes the temporary, so a reader never sees a partial output.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace aero {

class OutputFile {
 public:
  explicit OutputFile(std::filesystem::path destination);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  // Appends at the current position (buffered).
  void write(std::span<const std::uint8_t> bytes);
  void write(std::string_view bytes) { write({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()}); }
  // Appends zeros up to `offset`, which must not lie behind the current position.
  void pad_to(std::uint64_t offset);
  std::uint64_t position() const { return position_; }
  // Overwrites bytes already written (header and TOC patches).
  void write_at(std::uint64_t offset, std::span<const std::uint8_t> bytes);

  void commit();
  const std::filesystem::path& destination() const { return destination_; }

 private:
  void flush();

  std::filesystem::path destination_;
  std::filesystem::path temporary_;
  int fd_ = -1;
  std::uint64_t position_ = 0;
  std::vector<std::uint8_t> buffer_;
  bool committed_ = false;
};

}  // namespace aero
