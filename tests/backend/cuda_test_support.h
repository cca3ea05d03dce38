// What the CUDA backend's tests share: skipping where there is no GPU, and moving f32 data
// in and out of a backend's buffers.
#pragma once

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "aero/backend/backend.h"

namespace aero::test {

// Why this machine cannot run the CUDA backend ("" when it can), asked once.
inline const std::string& why_no_gpu() {
  static const std::string why = [] {
    std::string reason;
    return backend::list_gpus(&reason).empty() ? (reason.empty() ? std::string("none found") : reason) : std::string();
  }();
  return why;
}

// Skips the current test on a machine (or build) without a CUDA GPU, saying why.
#define AERO_REQUIRE_GPU() \
  if (!::aero::test::why_no_gpu().empty()) GTEST_SKIP() << "no CUDA GPU: " << ::aero::test::why_no_gpu()

inline float* upload(backend::Backend& b, std::span<const float> host) {
  float* p = b.allocate(host.size());
  b.write(host.data(), host.size(), p);
  return p;
}

inline std::vector<float> download(backend::Backend& b, const float* p, std::size_t count) {
  std::vector<float> host(count);
  b.read(p, count, host.data());
  return host;
}

inline float max_abs(std::span<const float> v) {
  float m = 0;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

// max |a - b| / max |b|: the error relative to the reference's scale (infinite when a holds
// a NaN or an infinity, or the sizes differ).
inline float relative_error(std::span<const float> a, std::span<const float> b) {
  if (a.size() != b.size()) return INFINITY;
  float m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    m = std::max(m, std::fabs(a[i] - b[i]));
  }
  const float scale = max_abs(b);
  return scale > 0 ? m / scale : m;
}

}  // namespace aero::test
