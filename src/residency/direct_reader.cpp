#include "residency/direct_reader.h"

#include <fcntl.h>
#include <liburing.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "aero/error.h"

namespace aero::residency {
namespace {

std::int64_t mtime_ns(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

}  // namespace

AlignedBuffer::AlignedBuffer(std::size_t bytes) : size_(bytes) {
  const std::size_t rounded = (std::max<std::size_t>(bytes, 1) + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
  void* p = nullptr;
  if (posix_memalign(&p, kDirectAlign, rounded) != 0) fail("out of memory allocating a {}-byte read buffer", bytes);
  data_.reset(static_cast<std::uint8_t*>(p));
}
void AlignedBuffer::Free::operator()(std::uint8_t* p) const { std::free(p); }

struct DirectReader::Ring {
  io_uring ring{};
  std::vector<Piece> slots;
  std::vector<int> free_slots;
  ~Ring() { io_uring_queue_exit(&ring); }
};

DirectReader::DirectReader(ReaderOptions options) : options_(options) {
  options_.in_flight = std::clamp(options_.in_flight, 1, 256);
  options_.piece_bytes = std::max<std::size_t>(options_.piece_bytes / kDirectAlign * kDirectAlign, kDirectAlign);
  if (options_.io_uring) {
    auto ring = std::make_unique<Ring>();
    // Where io_uring is missing or forbidden (old kernels, seccomp), the thread pool reads.
    if (io_uring_queue_init(static_cast<unsigned>(options_.in_flight), &ring->ring, 0) == 0) {
      ring->slots.resize(static_cast<std::size_t>(options_.in_flight));
      for (int i = options_.in_flight - 1; i >= 0; --i) ring->free_slots.push_back(i);
      ring_ = std::move(ring);
    }
  }
  if (ring_) {
    threads_.emplace_back([this] { run_uring(); });
  } else {
    for (int i = 0; i < options_.in_flight; ++i) threads_.emplace_back([this] { run_threads(); });
  }
}

DirectReader::~DirectReader() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    pending_.clear();  // nobody waits for them any more; reads in flight finish
  }
  work_cv_.notify_all();
  for (auto& t : threads_) t.join();
  for (const auto& f : files_) ::close(f.fd);
}

int DirectReader::open(const std::filesystem::path& path, std::uint64_t expected_size) {
  ReadFile f;
  f.path = path;
  if (options_.direct) {
    f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (f.fd >= 0) {
      // Some file systems open with O_DIRECT and refuse the reads: try one block.
      AlignedBuffer probe(kDirectAlign);
      if (::pread(f.fd, probe.data(), kDirectAlign, 0) < 0 && errno == EINVAL) ::close(f.fd), f.fd = -1;
      else f.direct = true;
    }
  }
  if (f.fd < 0) f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) fail("{}: cannot open for reading: {}", path.string(), std::strerror(errno));
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) {
    const int e = errno;
    ::close(f.fd);
    fail("{}: cannot stat: {}", path.string(), std::strerror(e));
  }
  f.size = static_cast<std::uint64_t>(st.st_size);
  f.mtime_ns = mtime_ns(st);
  if (f.size != expected_size) {
    ::close(f.fd);
    fail("{}: the file is {} bytes now, {} when the model was opened (changed while in use?)", path.string(), f.size,
         expected_size);
  }
  files_.push_back(f);
  return static_cast<int>(files_.size() - 1);
}

void DirectReader::check_unchanged(int index) const {
  const ReadFile& f = file(index);
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) fail("{}: cannot stat: {}", f.path.string(), std::strerror(errno));
  if (static_cast<std::uint64_t>(st.st_size) != f.size || mtime_ns(st) != f.mtime_ns)
    fail("{}: the model file changed while in use ({} bytes, was {}); stopping rather than reading mixed weights",
         f.path.string(), static_cast<std::uint64_t>(st.st_size), f.size);
}

std::uint64_t DirectReader::submit(const std::vector<ReadJob>& jobs) {
  std::uint64_t ticket;
  {
    std::lock_guard lock(mu_);
    ticket = next_ticket_++;
    std::size_t pieces = 0;
    for (const auto& j : jobs) {
      for (std::size_t at = 0; at < j.length; at += options_.piece_bytes) {
        const std::size_t len = std::min(options_.piece_bytes, j.length - at);
        const std::size_t req = j.required > at ? std::min(len, j.required - at) : 0;
        pending_.push_back({ticket, j.file, j.offset + at, len, req, j.dest + at});
        ++pieces;
      }
    }
    groups_.push_back({ticket, pieces, {}});
  }
  work_cv_.notify_all();
  return ticket;
}

DirectReader::Group* DirectReader::group(std::uint64_t ticket) {
  for (auto& g : groups_)
    if (g.ticket == ticket) return &g;
  return nullptr;
}

void DirectReader::wait(std::uint64_t ticket) {
  std::unique_lock lock(mu_);
  Group* g = group(ticket);
  if (!g) fail("internal: waiting for an unknown read");
  done_cv_.wait(lock, [&] { return group(ticket)->remaining == 0; });
  g = group(ticket);
  const std::string error = g->error;
  groups_.erase(groups_.begin() + (g - &groups_.front()));
  if (!error.empty()) throw Error(error);
}

void DirectReader::finish(const Piece& piece, long long result) {
  Group* g = group(piece.ticket);
  if (!g) return;
  if (g->error.empty()) {
    const ReadFile& f = files_[static_cast<std::size_t>(piece.file)];
    if (result < 0)
      g->error = fmt::format("{}: reading {} bytes at {} failed: {}", f.path.string(), piece.length, piece.offset,
                             std::strerror(static_cast<int>(-result)));
    else if (static_cast<std::size_t>(result) < piece.required)
      g->error = fmt::format("{}: {} bytes where {} were expected at offset {}: the file was truncated while in use",
                             f.path.string(), result, piece.required, piece.offset);
  }
  --g->remaining;
}

long long DirectReader::read_piece(const Piece& p) {
  const ReadFile& f = files_[static_cast<std::size_t>(p.file)];
  std::size_t done = 0;
  while (done < p.length) {
    const ssize_t n = ::pread(f.fd, p.dest + done, p.length - done, static_cast<off_t>(p.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (n == 0) break;  // end of file
    done += static_cast<std::size_t>(n);
    if (f.direct && done % kDirectAlign != 0) break;  // O_DIRECT stops short only at the end
  }
  if (!f.direct) ::posix_fadvise(f.fd, static_cast<off_t>(p.offset), static_cast<off_t>(p.length), POSIX_FADV_DONTNEED);
  return static_cast<long long>(done);
}

void DirectReader::run_threads() {
  for (;;) {
    Piece p;
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;
      p = pending_.front();
      pending_.pop_front();
    }
    const long long result = read_piece(p);
    {
      std::lock_guard lock(mu_);
      finish(p, result);
    }
    done_cv_.notify_all();
  }
}

void DirectReader::run_uring() {
  Ring& r = *ring_;
  int in_flight = 0;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_ || !pending_.empty() || in_flight > 0; });
      if (stopping_ && pending_.empty() && in_flight == 0) return;
      while (!pending_.empty() && !r.free_slots.empty()) {
        io_uring_sqe* sqe = io_uring_get_sqe(&r.ring);
        if (!sqe) break;
        const int slot = r.free_slots.back();
        r.free_slots.pop_back();
        r.slots[static_cast<std::size_t>(slot)] = pending_.front();
        pending_.pop_front();
        const Piece& p = r.slots[static_cast<std::size_t>(slot)];
        io_uring_prep_read(sqe, files_[static_cast<std::size_t>(p.file)].fd, p.dest, static_cast<unsigned>(p.length), p.offset);
        io_uring_sqe_set_data64(sqe, static_cast<__u64>(slot));
        ++in_flight;
      }
    }
    io_uring_submit(&r.ring);
    if (in_flight == 0) continue;
    io_uring_cqe* cqe = nullptr;
    int rc = io_uring_wait_cqe(&r.ring, &cqe);
    if (rc == -EINTR) continue;
    bool any = false;
    while (rc == 0 && cqe) {
      const auto slot = static_cast<std::size_t>(io_uring_cqe_get_data64(cqe));
      const long long res = cqe->res;
      io_uring_cqe_seen(&r.ring, cqe);
      Piece p = r.slots[slot];
      std::lock_guard lock(mu_);
      r.free_slots.push_back(static_cast<int>(slot));
      --in_flight;
      const ReadFile& f = files_[static_cast<std::size_t>(p.file)];
      if (res > 0 && static_cast<std::size_t>(res) < p.length && static_cast<std::size_t>(res) < p.required &&
          (!f.direct || res % static_cast<long long>(kDirectAlign) == 0)) {
        // A partial read before the end: the rest goes back to the front of the queue.
        const auto n = static_cast<std::size_t>(res);
        pending_.push_front({p.ticket, p.file, p.offset + n, p.length - n, p.required - n, p.dest + n});
      } else {
        if (!f.direct && res >= 0)
          ::posix_fadvise(f.fd, static_cast<off_t>(p.offset), static_cast<off_t>(p.length), POSIX_FADV_DONTNEED);
        finish(p, res);
        any = true;
      }
      cqe = nullptr;
      rc = io_uring_peek_cqe(&r.ring, &cqe);
    }
    if (any) done_cv_.notify_all();
  }
}

std::string DirectReader::engine() const {
  const bool direct = std::all_of(files_.begin(), files_.end(), [](const ReadFile& f) { return f.direct; });
  return fmt::format("{}, {}", ring_ ? "io_uring" : "threads", direct ? "O_DIRECT" : "page cache dropped after reads");
}

}  // namespace aero::residency
