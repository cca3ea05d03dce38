// Reads of large aligned ranges of files, many in flight, straight into caller buffers: with
// O_DIRECT (no page cache: a model three times the RAM cannot thrash it) through io_uring, or a
// pool of threads calling pread where io_uring is not available. A file system that refuses
// O_DIRECT is read through the page cache instead, each range dropped from it once read.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace aero::residency {

inline constexpr std::size_t kDirectAlign = 4096;  // offsets, lengths and buffers of O_DIRECT reads

struct ReaderOptions {
  int in_flight = 8;                         // pieces read at once
  std::size_t piece_bytes = 4u << 20;        // a range is read in pieces of at most this
  bool io_uring = true;                      // false: the thread pool
  bool direct = true;                        // false: through the page cache
};

// An open model file: its size and modification time as first seen, checked again before a
// layer is read (a file replaced or truncated under a running model is an error, not garbage).
struct ReadFile {
  std::filesystem::path path;
  int fd = -1;
  bool direct = false;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
};

// One read: `length` bytes from `offset` into `dest`. With O_DIRECT all three are multiples of
// kDirectAlign; the read may stop at the end of the file after `required` bytes.
struct ReadJob {
  int file = 0;  // index from DirectReader::open
  std::uint64_t offset = 0;
  std::size_t length = 0;
  std::size_t required = 0;
  std::uint8_t* dest = nullptr;
};

class DirectReader {
 public:
  explicit DirectReader(ReaderOptions options = {});
  ~DirectReader();  // waits for every read in flight
  DirectReader(const DirectReader&) = delete;
  DirectReader& operator=(const DirectReader&) = delete;

  // Opens a file (O_DIRECT when asked and the file system takes it); returns its index.
  int open(const std::filesystem::path& path, std::uint64_t expected_size);
  const ReadFile& file(int index) const { return files_[static_cast<std::size_t>(index)]; }
  // Throws aero::Error when the file's size or modification time is no longer what open() saw.
  void check_unchanged(int index) const;

  // Queues the jobs as one group; returns its ticket. Reads start at once.
  std::uint64_t submit(const std::vector<ReadJob>& jobs);
  // Blocks until the group is read. Throws aero::Error (naming the file) for a failed or short read.
  void wait(std::uint64_t ticket);

  std::string engine() const;  // "io_uring" or "threads", with ", O_DIRECT" or ", page cache"
  bool uses_io_uring() const { return ring_ != nullptr; }

 private:
  struct Piece {
    std::uint64_t ticket;
    int file;
    std::uint64_t offset;
    std::size_t length, required;
    std::uint8_t* dest;
  };
  struct Group {
    std::uint64_t ticket;
    std::size_t remaining;
    std::string error;
  };
  void run_threads();
  void run_uring();
  void finish(const Piece& piece, long long result_or_errno);  // with mu_ held
  Group* group(std::uint64_t ticket);                           // with mu_ held
  long long read_piece(const Piece& p);                         // pread: bytes read or -errno

  ReaderOptions options_;
  std::vector<ReadFile> files_;
  struct Ring;
  std::unique_ptr<Ring> ring_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<Piece> pending_;
  std::deque<Group> groups_;
  std::uint64_t next_ticket_ = 1;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// Aligned host memory (for O_DIRECT reads), freed with free().
struct AlignedBuffer {
  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t bytes);
  std::uint8_t* data() const { return data_.get(); }
  std::size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(std::uint8_t* p) const;
  };
  std::unique_ptr<std::uint8_t, Free> data_;
  std::size_t size_ = 0;
};

}  // namespace aero::residency
