#include "aero/output_file.h"

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aero/error.h"

namespace aero {
namespace {

// Temporaries still open, so a signal handler can remove them: a fixed table of C strings
// because only async-signal-safe work (unlink) may happen in the handler.
constexpr std::size_t kMaxOpen = 16;
constexpr std::size_t kMaxPath = 4096;
std::array<std::array<char, kMaxPath>, kMaxOpen> g_open_paths{};
// 0 free, 1 being filled, 2 holds a path the handler may remove.
std::array<std::atomic<int>, kMaxOpen> g_open_state{};
std::once_flag g_handlers_installed;

extern "C" void remove_temporaries_and_reraise(int sig) {
  for (std::size_t i = 0; i < kMaxOpen; ++i)
    if (g_open_state[i].load() == 2) ::unlink(g_open_paths[i].data());
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

int register_temporary(const std::string& path) {
  std::call_once(g_handlers_installed, [] {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
      struct sigaction current {};
      ::sigaction(sig, nullptr, &current);
      if (current.sa_handler == SIG_DFL) std::signal(sig, remove_temporaries_and_reraise);
    }
  });
  if (path.size() >= kMaxPath) return -1;
  for (std::size_t i = 0; i < kMaxOpen; ++i) {
    int expected = 0;
    if (g_open_state[i].compare_exchange_strong(expected, 1)) {
      std::memcpy(g_open_paths[i].data(), path.c_str(), path.size() + 1);
      g_open_state[i].store(2);
      return static_cast<int>(i);
    }
  }
  return -1;
}

void unregister_temporary(const std::string& path) {
  for (std::size_t i = 0; i < kMaxOpen; ++i)
    if (g_open_state[i].load() == 2 && path == g_open_paths[i].data()) g_open_state[i].store(0);
}

constexpr std::size_t kBufferSize = 4 << 20;

}  // namespace

OutputFile::OutputFile(std::filesystem::path destination) : destination_(std::move(destination)) {
  auto dir = destination_.parent_path();
  if (dir.empty()) dir = ".";
  std::string pattern = (dir / ("." + destination_.filename().string() + ".tmp-XXXXXX")).string();
  fd_ = ::mkostemp(pattern.data(), O_CLOEXEC);
  if (fd_ < 0) fail("cannot create {}: {}", destination_.string(), std::strerror(errno));
  temporary_ = pattern;
  register_temporary(temporary_.string());
  buffer_.reserve(kBufferSize);
  pending_.reserve(kBufferSize);
  writer_ = std::thread([this] { writer_loop(); });
}

OutputFile::~OutputFile() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  writer_.join();
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) {
    ::unlink(temporary_.c_str());
    unregister_temporary(temporary_.string());
  }
}

void OutputFile::write_all(const std::vector<std::uint8_t>& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::system_error(n < 0 ? errno : ENOSPC, std::generic_category());
    done += static_cast<std::size_t>(n);
  }
}

void OutputFile::writer_loop() {
  std::unique_lock lock(mutex_);
  while (true) {
    changed_.wait(lock, [&] { return busy_ || stop_; });
    if (!busy_) return;
    lock.unlock();
    int error = 0;
    try {
      write_all(pending_);
    } catch (const std::system_error& e) {
      error = e.code().value();
    }
    lock.lock();
    pending_.clear();
    if (error && !error_) error_ = error;
    busy_ = false;
    changed_.notify_all();
  }
}

void OutputFile::wait_idle() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return !busy_; });
  if (error_) fail("cannot write {}: {}", destination_.string(), std::strerror(error_));
}

void OutputFile::submit() {
  if (buffer_.empty()) return;
  wait_idle();
  {
    std::lock_guard lock(mutex_);
    std::swap(buffer_, pending_);
    busy_ = true;
  }
  changed_.notify_all();
}

void OutputFile::write(std::span<const std::uint8_t> bytes) {
  while (!bytes.empty()) {
    std::size_t n = std::min(bytes.size(), kBufferSize - buffer_.size());
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    bytes = bytes.subspan(n);
    position_ += n;
    if (buffer_.size() == kBufferSize) submit();
  }
}

void OutputFile::pad_to(std::uint64_t offset) {
  if (offset < position_) fail("internal error: padding {} backwards to {}", destination_.string(), offset);
  static const std::vector<std::uint8_t> zeros(4096, 0);
  while (position_ < offset) {
    auto n = static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), offset - position_));
    write({zeros.data(), n});
  }
}

void OutputFile::write_at(std::uint64_t offset, std::span<const std::uint8_t> bytes) {
  submit();
  wait_idle();
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::pwrite(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("cannot write {}: {}", destination_.string(), std::strerror(n < 0 ? errno : ENOSPC));
    done += static_cast<std::size_t>(n);
  }
}

void OutputFile::commit() {
  submit();
  wait_idle();
  if (::fsync(fd_) != 0) fail("cannot write {}: {}", destination_.string(), std::strerror(errno));
  if (::close(fd_) != 0) {
    fd_ = -1;
    fail("cannot write {}: {}", destination_.string(), std::strerror(errno));
  }
  fd_ = -1;
  // mkstemp creates 0600; give the result the usual permissions of a new file.
  mode_t mask = ::umask(0);
  ::umask(mask);
  ::chmod(temporary_.c_str(), 0666 & ~mask);
  if (::rename(temporary_.c_str(), destination_.c_str()) != 0)
    fail("cannot create {}: {}", destination_.string(), std::strerror(errno));
  committed_ = true;
  unregister_temporary(temporary_.string());
}

}  // namespace aero
