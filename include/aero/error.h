// Errors: every failure the user can cause (bad files, bad flags, bad input) is an
// aero::Error whose message is one line that names the problem. The CLI prints it and
// exits non-zero; nothing in the library aborts on bad input.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace aero {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace aero
