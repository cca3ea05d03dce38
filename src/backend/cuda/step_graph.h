// Forward passes replayed as CUDA graphs. A decode step launches ~20 small kernels per layer
// (600 for an 8B model); launched one by one, the host's launch cost and the gaps between them
// take longer than the kernels themselves. A step is recorded once per shape (tokens, attention
// length bucket) with stream capture and replayed with one cudaGraphLaunch.
//
// Replay runs the step's host code again with launches suppressed: each operation only writes
// its host inputs (embedding rows, rope angles, positions) into the same pinned slots the
// recorded copies read from, and contributes its arguments to a signature. If the signature
// differs from the recorded one (another sequence of operations or buffers), nothing has run
// on the GPU yet: the step runs again directly and the graph is recorded anew next time.
//
// Modes of one step: Direct (launch as usual: a shape's first step, which also grows every
// buffer to its size, so that recording allocates nothing), Capture (launch into a recording,
// then replay it), Replay (stage inputs only, then launch the graph).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <string_view>
#include <vector>

#include <cuda_runtime.h>

#include "backend/cuda/cuda_check.h"

namespace aero::backend::cuda {

class StepGraphs {
 public:
  enum class Mode { Direct, Capture, Replay };

  StepGraphs(int device, cudaStream_t stream);
  ~StepGraphs();
  StepGraphs(const StepGraphs&) = delete;
  StepGraphs& operator=(const StepGraphs&) = delete;

  // Runs `ops` (the step's operations) as one step of shape `key`; graphs only when enabled
  // (AERO_CUDA_GRAPHS=0 disables them) and for steps of at most kMaxGraphTokens tokens.
  void run(std::uint64_t key, std::int64_t tokens, const std::function<void()>& ops);
  // Runs `ops` as one step, never recorded (a step whose host work must run every time: loads
  // of streamed layers between its operations).
  void run_direct(const std::function<void()>& ops);

  bool in_step() const { return in_step_; }
  // Whether the operation with arguments `signature` must be queued now (Direct, Capture) or
  // is part of a graph being replayed (false): every operation calls this first.
  bool launch(std::uint64_t signature);

  // A host input of `bytes` for device memory: the returned host slot (pinned) is filled by the
  // caller, then copy() queues its transfer to `device` (in Replay the recorded copy does it).
  // Inside a step slots are distinct and live until the step's copies are done; outside one,
  // an operation's first input waits for the previous operation's copies and starts over.
  void* host_slot(std::size_t bytes);
  void copy(const void* slot, void* device, std::size_t bytes);
  // `bytes` of host data in device memory, valid for the work queued after it in this step
  // (rope angles, positions): copied once per step for the same data (every layer passes the
  // same angles), the copy ordered on the stream before the kernels that read it.
  const void* input(const void* host, std::size_t bytes);

  bool enabled() const { return enabled_; }

  static constexpr std::int64_t kMaxGraphTokens = 64;

 private:
  struct Graph {
    std::uint64_t key = 0;
    cudaGraphExec_t exec = nullptr;
    std::uint64_t signature = 0;
  };
  void begin_step();
  void end_step();
  void release(Graph& graph);

  int device_;
  cudaStream_t stream_;
  bool enabled_ = true;
  bool in_step_ = false;
  bool inputs_open_ = false;  // outside a step: inputs were staged since the last launch
  Mode mode_ = Mode::Direct;
  std::uint64_t signature_ = 0;

  // Pinned host and device arenas for a step's inputs, bump-allocated; grown only in Direct
  // mode (growing waits for the GPU and frees the old memory).
  void* host_ = nullptr;
  std::size_t host_capacity_ = 0, host_used_ = 0;
  DeviceBuffer device_arena_;
  std::size_t device_used_ = 0;
  bool grew_ = false;  // this step grew an arena: don't record the next one of its shape yet
  struct Input {
    const void* host;
    std::size_t bytes;
    const void* slot;  // the pinned copy, to compare contents
    const void* device;
  };
  std::vector<Input> inputs_;  // this step's, for input()'s reuse
  cudaEvent_t copies_done_ = nullptr;
  bool copies_pending_ = false;

  std::list<Graph> graphs_;  // most recently used first
  std::list<std::uint64_t> seen_;  // shapes run directly once, most recent first
  static constexpr std::size_t kMaxGraphs = 32;
};

// A 64-bit mix of an operation's arguments, for StepGraphs::launch.
class Signature {
 public:
  explicit Signature(std::uint64_t op) : h_(0x9E3779B97F4A7C15ull ^ op) {}
  Signature& operator<<(std::uint64_t v) {
    h_ ^= v + 0x9E3779B97F4A7C15ull + (h_ << 6) + (h_ >> 2);
    return *this;
  }
  Signature& operator<<(const void* p) { return *this << reinterpret_cast<std::uintptr_t>(p); }
  Signature& operator<<(std::int64_t v) { return *this << static_cast<std::uint64_t>(v); }
  Signature& operator<<(int v) { return *this << static_cast<std::uint64_t>(static_cast<std::int64_t>(v)); }
  Signature& operator<<(double v) {
    std::uint64_t bits;
    static_assert(sizeof bits == sizeof v);
    __builtin_memcpy(&bits, &v, sizeof bits);
    return *this << bits;
  }
  std::uint64_t value() const { return h_; }

 private:
  std::uint64_t h_;
};

}  // namespace aero::backend::cuda
