// A progress line on standard error — bytes done, rate, ETA — shown only when stderr is a
// terminal, redrawn at most ten times a second, cleared when done.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "cli/display.h"

namespace aero::cli {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label) : label_(std::move(label)), enabled_(::isatty(STDERR_FILENO) == 1) {}
  ~ProgressBar() { finish(); }

  void start(std::uint64_t total) {
    total_ = total;
    begin_ = std::chrono::steady_clock::now();
  }
  void add(std::uint64_t bytes) {
    done_ += bytes;
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(100) && done_ < total_) return;
    last_ = now;
    draw(now);
  }
  void finish() {
    if (enabled_ && drawn_) std::fprintf(stderr, "\r\033[K");
    drawn_ = false;
  }

 private:
  void draw(std::chrono::steady_clock::time_point now) {
    double seconds = std::chrono::duration<double>(now - begin_).count();
    double fraction = total_ ? std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_)) : 1.0;
    double rate = seconds > 0 ? static_cast<double>(done_) / seconds : 0;
    constexpr int kWidth = 30;
    int filled = static_cast<int>(fraction * kWidth);
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::string eta = rate > 0 && total_ > done_ ? fmt::format("{:.0f}s", static_cast<double>(total_ - done_) / rate) : "-";
    std::fprintf(stderr, "\r\033[K%s [%s] %3.0f%%  %s / %s  %s/s  ETA %s", label_.c_str(), bar.c_str(), fraction * 100,
                 human_bytes(done_).c_str(), human_bytes(total_).c_str(),
                 human_bytes(static_cast<std::uint64_t>(rate)).c_str(), eta.c_str());
    drawn_ = true;
  }

  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::uint64_t total_ = 0, done_ = 0;
  std::chrono::steady_clock::time_point begin_{}, last_{};
};

}  // namespace aero::cli
