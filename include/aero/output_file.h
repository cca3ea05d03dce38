// Writes a file atomically: bytes go to a hidden temporary beside the destination, which is
// renamed into place by commit(). Any failure, exception or SIGINT/SIGTERM before commit
// removes the temporary, so a reader never sees a partial output.
//
// Appends are double-buffered: a full buffer goes to a writer thread while the caller fills
// the other, so the caller's work (hashing, reading the source) overlaps the write syscalls.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <thread>
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
  void submit();        // hands the filled buffer to the writer thread
  void wait_idle();     // returns once the writer has nothing in flight; rethrows its error
  void writer_loop();
  void write_all(const std::vector<std::uint8_t>& bytes);

  std::filesystem::path destination_;
  std::filesystem::path temporary_;
  int fd_ = -1;
  std::uint64_t position_ = 0;
  std::vector<std::uint8_t> buffer_;  // being filled by the caller
  std::vector<std::uint8_t> pending_;  // being written by the writer thread
  bool busy_ = false, stop_ = false;
  int error_ = 0;  // errno of a failed background write
  std::mutex mutex_;
  std::condition_variable changed_;
  std::thread writer_;
  bool committed_ = false;
};

}  // namespace aero
