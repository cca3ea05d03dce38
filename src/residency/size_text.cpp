// Sizes as people write them on a command line, and back.
#include <cctype>
#include <charconv>
#include <cmath>
#include <string>

#include <fmt/format.h>

#include "aero/error.h"
#include "aero/residency/plan.h"

namespace aero::residency {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The multiplier a unit names, or 0 when it names none.
double unit_scale(std::string_view unit) {
  const std::string u = lower(unit);
  if (u.empty() || u == "b") return 1;
  static constexpr const char* kLetters = "kmgt";
  for (int i = 0; i < 4; ++i) {
    const char l = kLetters[i];
    const double binary = std::pow(1024.0, i + 1), decimal = std::pow(1000.0, i + 1);
    if (u == std::string{l} || u == std::string{l, 'i', 'b'} || u == std::string{l, 'i'}) return binary;
    if (u == std::string{l, 'b'}) return decimal;
  }
  return 0;
}

}  // namespace

std::uint64_t parse_size(std::string_view text, std::string_view what) {
  auto bad = [&](std::string_view why) -> std::uint64_t {
    fail("{} '{}': {} (sizes look like 4GiB, 512MiB, 1.5G or a number of bytes)", what, text, why);
  };
  std::string_view s = text;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  if (s.empty()) return bad("empty");
  if (s.front() == '-') return bad("negative");
  std::size_t digits = 0;
  while (digits < s.size() && (std::isdigit(static_cast<unsigned char>(s[digits])) || s[digits] == '.')) ++digits;
  if (digits == 0) return bad("no number");
  const std::string number(s.substr(0, digits));
  std::string_view unit = s.substr(digits);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  const double scale = unit_scale(unit);
  if (scale == 0) return bad(fmt::format("unknown unit '{}'", unit));
  double value = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || end != number.data() + number.size()) return bad("not a number");
  const double bytes = std::floor(value * scale);
  if (!std::isfinite(bytes) || bytes >= 18446744073709551616.0) return bad("too large");
  return static_cast<std::uint64_t>(bytes);
}

std::string format_size(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double v = static_cast<double>(bytes) / 1024;
  int u = 0;
  while (v >= 1024 && u < 3) v /= 1024, ++u;
  return fmt::format("{:.{}f} {}", v, v < 10 ? 2 : v < 100 ? 1 : 0, kUnits[u]);
}

}  // namespace aero::residency
