// Running a built binary as a user would, with its exit status, stdout and stderr apart.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "test_support.h"

namespace aero::test {

// A binary the build made (AERO_BINARY, AERO_RUN_BINARY), or the one of that name in
// $AERO_BIN_DIR when the tests run from a bundle on another machine (scripts/test-gpu.sh).
inline std::string built_binary(const char* built_path) {
  if (const char* dir = std::getenv("AERO_BIN_DIR"))
    return (std::filesystem::path(dir) / std::filesystem::path(built_path).filename()).string();
  return built_path;
}

struct CommandResult {
  int status = -1;
  std::string out, err;
};

inline CommandResult run_command(const std::string& binary, const std::string& args) {
  ScratchDir dir;
  const auto err_path = dir / "stderr";
  const std::string cmd = binary + " " + args + " 2>" + err_path.string();
  CommandResult r;
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf{};
  while (std::size_t n = fread(buf.data(), 1, buf.size(), p)) r.out.append(buf.data(), n);
  const int raw = pclose(p);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  const auto e = read_bytes(err_path);
  r.err.assign(e.begin(), e.end());
  return r;
}

}  // namespace aero::test
