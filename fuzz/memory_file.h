// Presents a fuzz input as a file path (the readers map files) without touching the disk:
// one memfd per process, refilled for every input.
#pragma once

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace aero::fuzz {

inline std::string as_file(const std::uint8_t* data, std::size_t size, const char* suffix) {
  static int fd = memfd_create("aero-fuzz", 0);
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) abort();
  // The suffix lets a reader that dispatches on the name see the intended format.
  static std::string dir = [] {
    std::string d = "/tmp/aero-fuzz-" + std::to_string(getpid());
    mkdir(d.c_str(), 0700);
    return d;
  }();
  std::string link = dir + "/input" + suffix;
  unlink(link.c_str());
  if (symlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), link.c_str()) != 0) abort();
  return link;
}

}  // namespace aero::fuzz
