#include "aero/backend/cpu_calibration.h"

#include <cpuid.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>

#include <nlohmann/json.hpp>

#include "aero/error.h"
#include "aero/output_file.h"
#include "backend/cpu/dot.h"
#include "quant/half.h"

namespace aero::backend::cpu {
namespace {

using quant::GgmlType;
using nlohmann::json;

constexpr int kCacheVersion = 1;
// A candidate replaces the default only when it measures this much faster: closer than that
// is within a VM's minute-to-minute spread, and the default is the one every test runs.
constexpr double kMinGain = 1.03;

std::mutex registry_mutex;
std::vector<GemvCalibration>& registry() {
  static std::vector<GemvCalibration> calibrations;
  return calibrations;
}

std::string cpuid_string(unsigned leaf) {
  unsigned r[4] = {};
  __get_cpuid(leaf, &r[0], &r[1], &r[2], &r[3]);
  return std::string(reinterpret_cast<const char*>(r), 16);
}

std::size_t last_level_cache_bytes() {
  for (int name : {_SC_LEVEL3_CACHE_SIZE, _SC_LEVEL2_CACHE_SIZE}) {
    const long v = sysconf(name);
    if (v > 0) return static_cast<std::size_t>(v);
  }
  return std::size_t{32} << 20;
}

json to_json(const GemvVariant& v) {
  return {{"narrow", v.narrow}, {"order", v.order == RowOrder::Sequence ? "sequence" : "groups"},
          {"prefetch_ahead", v.prefetch_ahead}, {"task_kib", v.task_kib}, {"tasks_per_thread", v.tasks_per_thread}};
}

// nullopt for anything malformed: a damaged cache is measured again, never trusted.
std::optional<GemvVariant> variant_from_json(const json& j) {
  try {
    GemvVariant v;
    v.narrow = j.at("narrow").get<bool>();
    const auto order = j.at("order").get<std::string>();
    if (order != "groups" && order != "sequence") return std::nullopt;
    v.order = order == "sequence" ? RowOrder::Sequence : RowOrder::Groups;
    v.prefetch_ahead = j.at("prefetch_ahead").get<int>();
    v.task_kib = j.at("task_kib").get<std::uint32_t>();
    v.tasks_per_thread = j.at("tasks_per_thread").get<std::uint32_t>();
    if (v.prefetch_ahead < 0 || v.prefetch_ahead > 8 || v.task_kib == 0 || v.task_kib > (1u << 20) ||
        v.tasks_per_thread == 0 || v.tasks_per_thread > 1024)
      return std::nullopt;
    return v;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

json read_cache(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return json::object();
  json j = json::parse(in, nullptr, false);
  if (!j.is_object() || j.value("version", 0) != kCacheVersion || !j.contains("entries") || !j["entries"].is_object())
    return json::object();
  return j;
}

void write_cache(const std::filesystem::path& file, const std::string& key, const GemvCalibration& c) {
  try {
    json j = read_cache(file);  // again: another process may have added entries meanwhile
    if (j.empty()) j = {{"version", kCacheVersion}, {"entries", json::object()}};
    json measured = json::array();
    for (const auto& m : c.measured) measured.push_back({{"variant", to_json(m.variant)}, {"gbps", m.gbps}});
    j["entries"][key] = {{"chosen", to_json(c.chosen)}, {"measured", measured}};
    std::filesystem::create_directories(file.parent_path());
    OutputFile out(file);
    out.write(j.dump(1));
    out.commit();
  } catch (const std::exception&) {
    // An unwritable cache costs a measurement next time, nothing else.
  }
}

std::optional<GemvCalibration> cached(const std::filesystem::path& file, const std::string& key, GemvCalibration c) {
  const json j = read_cache(file);
  if (j.empty() || !j["entries"].contains(key)) return std::nullopt;
  const json& e = j["entries"][key];
  if (!e.is_object() || !e.contains("chosen") || !e.contains("measured") || !e["measured"].is_array()) return std::nullopt;
  const auto chosen = variant_from_json(e["chosen"]);
  if (!chosen) return std::nullopt;
  c.chosen = *chosen;
  for (const json& m : e["measured"]) {
    if (!m.is_object() || !m.contains("variant") || !m.contains("gbps") || !m["gbps"].is_number()) return std::nullopt;
    const auto v = variant_from_json(m["variant"]);
    if (!v) return std::nullopt;
    c.measured.push_back({*v, m["gbps"].get<double>()});
  }
  c.from_cache = true;
  return c;
}

// One row of `type` from f32 values: the quantizer, or the float formats' conversions (which
// have no quantizer in the type table). False for a format with neither.
bool encode_row(GgmlType type, std::span<const float> values, std::span<std::uint8_t> out) {
  switch (type) {
    case GgmlType::F32: std::memcpy(out.data(), values.data(), values.size_bytes()); return true;
    case GgmlType::F16:
    case GgmlType::BF16:
      for (std::size_t i = 0; i < values.size(); ++i) {
        const std::uint16_t h = type == GgmlType::F16 ? quant::fp32_to_fp16(values[i]) : quant::fp32_to_bf16(values[i]);
        std::memcpy(out.data() + 2 * i, &h, 2);
      }
      return true;
    default: break;
  }
  const auto traits = quant::type_traits(static_cast<std::uint32_t>(type));
  if (!traits || !traits->encode) return false;
  quant::encode_from_f32(type, values, out);
  return true;
}

// Matrices of `rows` × `cols` of `type`, `count` of them back to back, made of a few distinct
// quantized random rows repeated (quantizing every row would take longer than measuring).
struct Synthetic {
  std::unique_ptr<std::uint8_t[]> bytes;
  std::vector<quant::Matrix> matrices;
};

Synthetic synthesize(GgmlType type, std::int64_t rows, std::int64_t cols, std::size_t target, ThreadPool& pool) {
  const auto traits = *quant::type_traits(static_cast<std::uint32_t>(type));
  const std::size_t row_bytes = *quant::row_bytes(traits, static_cast<std::uint64_t>(cols));
  const std::size_t matrix_bytes = row_bytes * static_cast<std::size_t>(rows);
  const std::size_t count = std::max<std::size_t>(1, target / matrix_bytes);
  constexpr int kPatterns = 8;
  std::vector<std::uint8_t> patterns(kPatterns * row_bytes);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> values(static_cast<std::size_t>(cols));
  for (int p = 0; p < kPatterns; ++p) {
    for (float& v : values) v = normal(rng);
    encode_row(type, values, {patterns.data() + p * row_bytes, row_bytes});
  }
  Synthetic s;
  const std::size_t total_rows = count * static_cast<std::size_t>(rows);
  s.bytes.reset(new std::uint8_t[total_rows * row_bytes]);  // uninitialized: the fill faults the pages in
  constexpr std::size_t kRowsPerTask = 4096;
  pool.run((total_rows + kRowsPerTask - 1) / kRowsPerTask, [&](std::size_t t) {
    for (std::size_t r = t * kRowsPerTask; r < std::min(total_rows, (t + 1) * kRowsPerTask); ++r)
      std::memcpy(s.bytes.get() + r * row_bytes, patterns.data() + r % kPatterns * row_bytes, row_bytes);
  });
  for (std::size_t m = 0; m < count; ++m)
    s.matrices.push_back({type, s.bytes.get() + m * matrix_bytes, rows, cols, row_bytes});
  return s;
}

// GB/s of each candidate, median of `rounds`; the candidates take turns within a round so that
// a slow spell of the machine falls on all of them.
std::vector<double> measure(const std::vector<GemvVariant>& candidates, GgmlType type, const Synthetic& s,
                            ThreadPool& pool, int rounds) {
  const std::int64_t cols = s.matrices[0].cols, rows = s.matrices[0].rows;
  std::vector<float> x(static_cast<std::size_t>(cols)), y(static_cast<std::size_t>(rows));
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : x) v = normal(rng);
  std::size_t bytes = 0;
  for (const auto& m : s.matrices) bytes += m.bytes();
  auto pass = [&] {
    const auto start = std::chrono::steady_clock::now();
    for (const auto& m : s.matrices) gemv(m, x, y, pool);
    return static_cast<double>(bytes) / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 1e9;
  };
  std::vector<std::vector<double>> rates(candidates.size());
  set_gemv_variant(type, candidates[0]);
  pass();  // warm-up: the activations' buffers, the pool awake
  for (int round = 0; round < std::max(rounds, 1); ++round)
    for (std::size_t k = 0; k < candidates.size(); ++k) {
      const std::size_t i = (k + static_cast<std::size_t>(round)) % candidates.size();
      set_gemv_variant(type, candidates[i]);
      rates[i].push_back(pass());
    }
  std::vector<double> medians;
  for (auto& r : rates) {
    std::sort(r.begin(), r.end());
    medians.push_back(r[r.size() / 2]);
  }
  return medians;
}

void remember(const GemvCalibration& c) {
  std::lock_guard lock(registry_mutex);
  registry().push_back(c);
}

}  // namespace

std::filesystem::path gemv_calibration_file() {
  std::filesystem::path dir;
  if (const char* d = std::getenv("AERO_CACHE_DIR"); d && *d) dir = d;
  else if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) dir = std::filesystem::path(x) / "aero";
  else if (const char* h = std::getenv("HOME"); h && *h) dir = std::filesystem::path(h) / ".cache" / "aero";
  return dir.empty() ? dir : dir / "gemv-calibration.json";
}

std::string cpu_signature() {
  static const std::string signature = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    __get_cpuid(0, &a, &b, &c, &d);
    char vendor[13] = {};
    std::memcpy(vendor, &b, 4);
    std::memcpy(vendor + 4, &d, 4);
    std::memcpy(vendor + 8, &c, 4);
    __get_cpuid(1, &a, &b, &c, &d);
    const unsigned family = ((a >> 8) & 0xf) + ((a >> 20) & 0xff);
    const unsigned model = ((a >> 4) & 0xf) | (((a >> 16) & 0xf) << 4);
    std::string brand;
    if (__get_cpuid_max(0x80000000, nullptr) >= 0x80000004)
      for (unsigned leaf = 0x80000002; leaf <= 0x80000004; ++leaf) brand += cpuid_string(leaf);
    brand = brand.substr(0, brand.find('\0'));
    while (!brand.empty() && brand.back() == ' ') brand.pop_back();
    return fmt::format("{} family {:#x} model {:#x} stepping {} ({}), {}", vendor, family, model, a & 0xf, brand,
                       kernel_set_name(best_isa()));
  }();
  return signature;
}

bool gemv_calibration_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("AERO_GEMV_CALIBRATE");
    if (!env) return true;
    const std::string_view v(env);
    if (v == "1") return true;
    if (v == "0") return false;
    fail("AERO_GEMV_CALIBRATE must be 0 or 1, not '{}'", v);
  }();
  return enabled;
}

std::vector<GemvVariant> gemv_candidates(GgmlType type) {
  const GemvVariant base = default_gemv_variant();
  std::vector<GemvVariant> out;
  auto add = [&](GemvVariant v) {
    if (const auto order = gemv_row_order_override(); order && v.order != *order) return;
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  };
  add(base);
  for (bool narrow : {false, true}) {
    if (narrow && !gemv_narrow_applies(type)) continue;
    GemvVariant v = base;
    v.narrow = narrow;
    v.order = RowOrder::Groups;
    for (int ahead : {1, 2, 0}) {
      v.prefetch_ahead = ahead;
      add(v);
    }
    v.order = RowOrder::Sequence;
    v.prefetch_ahead = 0;
    add(v);
  }
  return out;
}

std::vector<GemvVariant> gemv_task_candidates(const GemvVariant& best) {
  std::vector<GemvVariant> out;
  for (auto [kib, per_thread] : {std::pair{512u, 4u}, std::pair{1024u, 2u}}) {
    GemvVariant v = best;
    v.task_kib = kib;
    v.tasks_per_thread = per_thread;
    if (v != best) out.push_back(v);
  }
  return out;
}

std::string GemvCalibration::why() const {
  auto rate = [&](const GemvVariant& v) {
    for (const auto& m : measured)
      if (m.variant == v) return m.gbps;
    return 0.0;
  };
  const auto name = quant::type_traits(static_cast<std::uint32_t>(type))->name;
  if (measured.empty()) return fmt::format("{}: {} (default, not measured)", name, chosen.name());
  const double best = rate(chosen), base = rate(measured.front().variant);
  double runner = 0;
  for (const auto& m : measured)
    if (!(m.variant == chosen)) runner = std::max(runner, m.gbps);
  return fmt::format("{}: {} at {:.1f} GB/s ({} candidates; default {:.1f}, next best {:.1f}){}", name, chosen.name(),
                     best, measured.size(), base, runner, from_cache ? ", cached" : "");
}

GemvCalibration calibrate_gemv(GgmlType type, std::int64_t rows, std::int64_t cols, ThreadPool& pool,
                               const CalibrationOptions& options) {
  GemvCalibration c;
  c.type = type;
  c.rows = rows;
  c.cols = cols;
  c.threads = pool.size();
  c.chosen = default_gemv_variant();
  const auto traits = quant::type_traits(static_cast<std::uint32_t>(type));
  std::vector<float> probe_row(traits ? traits->block_elements : 0);
  std::vector<std::uint8_t> probe_bytes(traits ? traits->block_bytes : 0);
  if (!traits || !encode_row(type, probe_row, probe_bytes) || !has_fast_dot(type, best_isa()) || rows < 1 ||
      cols < 1 || !quant::row_bytes(*traits, static_cast<std::uint64_t>(cols))) {
    set_gemv_variant(type, c.chosen);
    return c;
  }
  const std::filesystem::path file = options.use_cache ? gemv_calibration_file() : std::filesystem::path{};
  const auto order = gemv_row_order_override();
  const std::string key = fmt::format("{}|{} threads|{}|{}x{}{}", cpu_signature(), c.threads, traits->name, rows, cols,
                                      order ? fmt::format("|{}", row_order_name(*order)) : "");
  if (!file.empty() && !options.force)
    if (auto hit = cached(file, key, c)) {
      set_gemv_variant(type, hit->chosen);
      hit->chosen = gemv_variant(type);
      remember(*hit);
      return *hit;
    }

  const std::size_t target =
      options.bytes ? options.bytes : std::clamp(2 * last_level_cache_bytes(), std::size_t{64} << 20, std::size_t{256} << 20);
  const Synthetic s = synthesize(type, rows, cols, target, pool);
  // Stage one: kernels, order and prefetch at the default's tasks; stage two: task sizes for the best.
  std::vector<GemvVariant> candidates = gemv_candidates(type);
  std::vector<double> rates = measure(candidates, type, s, pool, options.rounds);
  // The default unless another beats it clearly.
  auto best_of = [&](const std::vector<double>& r) {
    const std::size_t top = static_cast<std::size_t>(std::max_element(r.begin(), r.end()) - r.begin());
    return r[top] > r[0] * kMinGain ? top : 0;
  };
  const GemvVariant first = candidates[best_of(rates)];
  std::vector<GemvVariant> second = {first};
  for (const auto& v : gemv_task_candidates(first)) second.push_back(v);
  const std::vector<double> second_rates = measure(second, type, s, pool, options.rounds);
  const std::size_t pick = best_of(second_rates);
  for (std::size_t i = 0; i < candidates.size(); ++i) c.measured.push_back({candidates[i], rates[i]});
  // Stage two's rates on stage one's scale (through the candidate both measured), so that the
  // report compares like with like whatever the machine did between the stages.
  const double scale = rates[best_of(rates)] / second_rates[0];
  for (std::size_t i = 1; i < second.size(); ++i) c.measured.push_back({second[i], second_rates[i] * scale});
  c.chosen = second[pick];
  set_gemv_variant(type, c.chosen);
  if (!file.empty()) write_cache(file, key, c);
  remember(c);
  return c;
}

namespace {
std::atomic<bool> forced{false};
}  // namespace

void force_gemv_calibration(bool force) { forced = force; }

void calibrate_for_model(std::span<const quant::Matrix* const> matrices, std::uint64_t bytes_per_token, ThreadPool& pool) {
  if (!gemv_calibration_enabled() || bytes_per_token < kMinCalibratedBytesPerToken) return;
  std::vector<const quant::Matrix*> largest;  // of each format, in first-seen order
  for (const quant::Matrix* m : matrices) {
    auto same = std::find_if(largest.begin(), largest.end(), [&](const quant::Matrix* l) { return l->type == m->type; });
    if (same == largest.end()) largest.push_back(m);
    else if (m->bytes() > (*same)->bytes()) *same = m;
  }
  for (const quant::Matrix* m : largest) calibrate_gemv(m->type, m->rows, m->cols, pool, {.force = forced});
}

std::vector<GemvCalibration> gemv_calibrations() {
  std::lock_guard lock(registry_mutex);
  return registry();
}

}  // namespace aero::backend::cpu
