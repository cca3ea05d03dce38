// The GEMV calibration: every candidate variant computes the product the scalar path does (row
// order and kernel width change only the order of float additions; task sizes change nothing),
// the calibration picks one of its candidates and sets it, and its cache is used, keyed and
// distrusted when damaged.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "aero/backend/cpu_calibration.h"
#include "aero/backend/cpu_gemv.h"
#include "backend/cpu/dot.h"
#include "quant/half.h"
#include "test_support.h"

namespace aero::backend::cpu {
namespace {

using quant::GgmlType;

struct Weights {
  std::vector<std::uint8_t> bytes;
  quant::Matrix m;
};

Weights random_weights(GgmlType type, std::int64_t rows, std::int64_t cols, std::mt19937& rng) {
  const auto traits = *quant::type_traits(static_cast<std::uint32_t>(type));
  const std::size_t row_bytes = *quant::row_bytes(traits, static_cast<std::uint64_t>(cols));
  Weights w;
  w.bytes.resize(row_bytes * static_cast<std::size_t>(rows));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> row(static_cast<std::size_t>(cols));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (float& v : row) v = normal(rng);
    std::uint8_t* dst = w.bytes.data() + static_cast<std::size_t>(r) * row_bytes;
    if (type == GgmlType::F32) std::memcpy(dst, row.data(), row_bytes);
    else if (type == GgmlType::F16 || type == GgmlType::BF16)
      for (std::int64_t c = 0; c < cols; ++c) {
        const std::uint16_t h = type == GgmlType::F16 ? quant::fp32_to_fp16(row[c]) : quant::fp32_to_bf16(row[c]);
        std::memcpy(dst + 2 * c, &h, 2);
      }
    else quant::encode_from_f32(type, row, {dst, row_bytes});
  }
  w.m = {type, w.bytes.data(), rows, cols, row_bytes};
  return w;
}

// Sets `type`'s variant for the scope and puts the previous one back after.
struct VariantScope {
  GgmlType type;
  GemvVariant saved;
  VariantScope(GgmlType t, const GemvVariant& v) : type(t), saved(gemv_variant(t)) { set_gemv_variant(t, v); }
  ~VariantScope() { set_gemv_variant(type, saved); }
};

const GgmlType kFormats[] = {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0,
                             GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K,
                             GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_NL};

TEST(GemvCalibration, EveryCandidateComputesTheScalarProduct) {
  std::mt19937 rng(3);
  ThreadPool pool(2);
  for (GgmlType type : kFormats) {
    const auto traits = *quant::type_traits(static_cast<std::uint32_t>(type));
    if (!traits.encode && traits.quantized) continue;
    SCOPED_TRACE(std::string(traits.name));
    // Rows enough for several tasks of every size candidate (256 KiB … 1 MiB), and a ragged end.
    const std::int64_t rows = 1027, cols = 512;
    const Weights w = random_weights(type, rows, cols, rng);
    std::vector<float> x(static_cast<std::size_t>(cols)), reference(static_cast<std::size_t>(rows));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& v : x) v = normal(rng);
    // BF16 kernels on VDPBF16PS take bf16-rounded activations; hold the whole format to that
    // product where they run, so that one reference serves every candidate.
    std::vector<float> x_ref = x;
    if (type == GgmlType::BF16 && rounds_bf16_activations(best_isa()))
      for (float& v : x_ref) {
        std::uint32_t u;
        std::memcpy(&u, &v, 4);
        u = (u + 0x7fff + ((u >> 16) & 1)) & 0xffff0000u;
        std::memcpy(&v, &u, 4);
      }
    gemv(w.m, x_ref, reference, pool, Isa::Scalar);
    std::vector<float> first;
    const auto candidates = gemv_candidates(type);
    ASSERT_FALSE(candidates.empty());
    EXPECT_EQ(candidates.front(), default_gemv_variant());
    std::vector<GemvVariant> all = candidates;
    for (const auto& v : candidates)
      for (const auto& t : gemv_task_candidates(v)) all.push_back(t);
    for (const GemvVariant& v : all) {
      VariantScope scope(type, v);
      std::vector<float> y(static_cast<std::size_t>(rows), std::nanf(""));
      gemv(w.m, x, y, pool);
      for (std::int64_t r = 0; r < rows; ++r) {
        const float ref = reference[static_cast<std::size_t>(r)];
        ASSERT_NEAR(y[static_cast<std::size_t>(r)], ref, 1e-4f * (1.0f + std::fabs(ref)) * std::sqrt(float(cols)))
            << v.name() << ", row " << r;
      }
      // Task sizes only cut the rows differently: the same kernel computes each row, bit for bit.
      GemvVariant base = v;
      base.task_kib = default_gemv_variant().task_kib;
      base.tasks_per_thread = default_gemv_variant().tasks_per_thread;
      if (!(base == v)) {
        VariantScope again(type, base);
        std::vector<float> y_base(static_cast<std::size_t>(rows));
        gemv(w.m, x, y_base, pool);
        EXPECT_EQ(y, y_base) << v.name() << " against " << base.name();
      }
    }
  }
}

// A fresh cache folder per test, restored after.
struct CacheDir {
  std::filesystem::path dir;
  std::string saved;
  bool had = false;
  CacheDir() {
    dir = std::filesystem::temp_directory_path() / ("aero-calibration-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    if (const char* old = std::getenv("AERO_CACHE_DIR")) had = true, saved = old;
    ::setenv("AERO_CACHE_DIR", dir.c_str(), 1);
  }
  ~CacheDir() {
    std::filesystem::remove_all(dir);
    if (had) ::setenv("AERO_CACHE_DIR", saved.c_str(), 1);
    else ::unsetenv("AERO_CACHE_DIR");
  }
};

TEST(GemvCalibration, PicksAndSetsOneOfItsCandidatesAndCachesIt) {
  CacheDir cache;
  ThreadPool pool(2);
  const GemvVariant before = gemv_variant(GgmlType::Q4_0);
  const CalibrationOptions small{.bytes = std::size_t{4} << 20, .rounds = 2};
  const GemvCalibration c = calibrate_gemv(GgmlType::Q4_0, 256, 512, pool, small);
  EXPECT_FALSE(c.from_cache);
  auto candidates = gemv_candidates(GgmlType::Q4_0);
  for (const auto& v : std::vector(candidates))
    for (const auto& t : gemv_task_candidates(v)) candidates.push_back(t);
  EXPECT_NE(std::find(candidates.begin(), candidates.end(), c.chosen), candidates.end()) << c.chosen.name();
  EXPECT_EQ(gemv_variant(GgmlType::Q4_0), c.chosen);
  ASSERT_GE(c.measured.size(), gemv_candidates(GgmlType::Q4_0).size());
  for (const auto& m : c.measured) EXPECT_GT(m.gbps, 0) << m.variant.name();
  EXPECT_NE(c.why().find("Q4_0"), std::string::npos) << c.why();
  ASSERT_TRUE(std::filesystem::exists(gemv_calibration_file())) << gemv_calibration_file();

  // Again: from the cache, the same choice, the same measurements.
  set_gemv_variant(GgmlType::Q4_0, before);
  const GemvCalibration again = calibrate_gemv(GgmlType::Q4_0, 256, 512, pool, small);
  EXPECT_TRUE(again.from_cache);
  EXPECT_EQ(again.chosen, c.chosen);
  EXPECT_EQ(gemv_variant(GgmlType::Q4_0), c.chosen);
  ASSERT_EQ(again.measured.size(), c.measured.size());
  // Another shape or thread count is another entry.
  ThreadPool one(1);
  EXPECT_FALSE(calibrate_gemv(GgmlType::Q4_0, 256, 1024, pool, small).from_cache);
  EXPECT_FALSE(calibrate_gemv(GgmlType::Q4_0, 256, 512, one, small).from_cache);
  // Forced: measured again.
  CalibrationOptions forced = small;
  forced.force = true;
  EXPECT_FALSE(calibrate_gemv(GgmlType::Q4_0, 256, 512, pool, forced).from_cache);
  set_gemv_variant(GgmlType::Q4_0, before);
}

TEST(GemvCalibration, DamagedCacheIsMeasuredAgainNotTrusted) {
  CacheDir cache;
  ThreadPool pool(1);
  const GemvVariant before = gemv_variant(GgmlType::Q8_0);
  const CalibrationOptions small{.bytes = std::size_t{2} << 20, .rounds = 1};
  calibrate_gemv(GgmlType::Q8_0, 128, 256, pool, small);
  const auto file = gemv_calibration_file();
  std::string text;
  {
    std::ifstream in(file);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  for (const std::string& damaged :
       {std::string("{not json"), std::string("[]"), std::string(R"({"version": 99, "entries": {}})"),
        // a valid file whose entry holds an impossible variant
        [&] {
          std::string t = text;
          const auto at = t.find("\"task_kib\"");
          return at == std::string::npos ? std::string("{}") : t.replace(at, 10, "\"task_kib\": 0, \"x\"");
        }()}) {
    {
      std::ofstream out(file, std::ios::trunc);
      out << damaged;
    }
    const GemvCalibration c = calibrate_gemv(GgmlType::Q8_0, 128, 256, pool, small);
    EXPECT_FALSE(c.from_cache) << damaged.substr(0, 40);
    EXPECT_GT(c.chosen.task_kib, 0u);
  }
  set_gemv_variant(GgmlType::Q8_0, before);
}

TEST(GemvCalibration, FormatsWithoutARowKernelKeepTheDefault) {
  ThreadPool pool(1);
  // IQ3_S has a decoder but no quantizer: nothing to synthesize rows from, nothing measured.
  const GemvCalibration c = calibrate_gemv(GgmlType::IQ3_S, 64, 256, pool, {.bytes = 1 << 20, .use_cache = false});
  EXPECT_TRUE(c.measured.empty());
  EXPECT_EQ(c.chosen, default_gemv_variant());
}

TEST(GemvCalibration, CpuSignatureNamesTheCpuAndKernels) {
  const std::string s = cpu_signature();
  EXPECT_NE(s.find("family"), std::string::npos) << s;
  EXPECT_NE(s.find(kernel_set_name(best_isa())), std::string::npos) << s;
}

}  // namespace
}  // namespace aero::backend::cpu
