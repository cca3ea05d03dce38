// aero's errors as Python exceptions: every aero::Error reaches Python as aero.Error (a
// RuntimeError) with aero's one-line message; the kinds below also subclass the built-in a
// Python caller would catch for them.
#pragma once

#include <filesystem>
#include <string>
#include <system_error>

#include <pybind11/pybind11.h>

#include "aero/error.h"

namespace aero::python {

// A bad argument: raised as aero.ArgumentError (aero.Error and ValueError).
struct ArgumentError : Error {
  using Error::Error;
};
// A model that is not where it was said to be: aero.NotFoundError (aero.Error and FileNotFoundError).
struct NotFoundError : Error {
  using Error::Error;
};

template <class... Args>
[[noreturn]] void fail_argument(fmt::format_string<Args...> format, Args&&... args) {
  throw ArgumentError(fmt::format(format, std::forward<Args>(args)...));
}

// Creates aero.Error, aero.ArgumentError and aero.NotFoundError in `m` and translates the C++
// errors into them.
void register_errors(pybind11::module_& m);

// Runs `open`, reporting a failure as NotFoundError when `path` names nothing on disk.
template <class Open>
auto open_or_not_found(const std::string& path, Open&& open) {
  try {
    return open();
  } catch (const Error& e) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw NotFoundError(e.what());
    throw;
  }
}

}  // namespace aero::python
