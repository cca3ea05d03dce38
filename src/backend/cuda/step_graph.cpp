#include "backend/cuda/step_graph.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "aero/error.h"

namespace aero::backend::cuda {
namespace {

constexpr std::size_t kAlign = 256;
std::size_t aligned(std::size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

bool graphs_enabled() {
  const char* v = std::getenv("AERO_CUDA_GRAPHS");
  return !(v && std::string_view(v) == "0");
}

}  // namespace

StepGraphs::StepGraphs(int device, cudaStream_t stream) : device_(device), stream_(stream), enabled_(graphs_enabled()) {
  check(cudaEventCreateWithFlags(&copies_done_, cudaEventDisableTiming), "creating an event");
}

StepGraphs::~StepGraphs() {
  (void)cudaSetDevice(device_);
  for (Graph& g : graphs_) release(g);
  if (copies_done_) {
    (void)cudaEventSynchronize(copies_done_);
    (void)cudaEventDestroy(copies_done_);
  }
  if (host_) (void)cudaFreeHost(host_);
}

void StepGraphs::release(Graph& graph) {
  if (graph.exec) (void)cudaGraphExecDestroy(graph.exec);
  graph.exec = nullptr;
}

void StepGraphs::begin_step() {
  if (copies_pending_) check(cudaEventSynchronize(copies_done_), "waiting for the last step's inputs");
  copies_pending_ = false;
  host_used_ = device_used_ = 0;
  inputs_.clear();
  grew_ = false;
  signature_ = 0;
  in_step_ = true;
}

void StepGraphs::end_step() {
  in_step_ = false;
  mode_ = Mode::Direct;
}

void StepGraphs::run_direct(const std::function<void()>& ops) {
  begin_step();
  mode_ = Mode::Direct;
  try {
    ops();
  } catch (...) {
    end_step();
    throw;
  }
  end_step();
}

void StepGraphs::run(std::uint64_t key, std::int64_t tokens, const std::function<void()>& ops) {
  if (in_step_) fail("CUDA: a step began inside another");
  if (!enabled_ || tokens > kMaxGraphTokens) return run_direct(ops);

  auto found = std::find_if(graphs_.begin(), graphs_.end(), [&](const Graph& g) { return g.key == key; });
  if (found != graphs_.end()) {
    graphs_.splice(graphs_.begin(), graphs_, found);  // most recently used first
    Graph& graph = graphs_.front();
    begin_step();
    mode_ = Mode::Replay;
    try {
      ops();  // stages the inputs; launches nothing
    } catch (...) {
      end_step();
      throw;
    }
    const std::uint64_t signature = signature_;
    end_step();
    if (signature == graph.signature) {
      check(cudaGraphLaunch(graph.exec, stream_), "launching a step's graph");
      check(cudaEventRecord(copies_done_, stream_), "recording an event");
      copies_pending_ = true;
      return;
    }
    // Another sequence of operations under this shape: nothing ran; run it directly.
    release(graph);
    graphs_.pop_front();
    seen_.remove(key);
    return run_direct(ops);
  }

  auto seen = std::find(seen_.begin(), seen_.end(), key);
  if (seen == seen_.end()) {
    // A shape's first step runs directly and sizes every buffer it uses.
    run_direct(ops);
    if (!grew_) {
      seen_.push_front(key);
      if (seen_.size() > 4 * kMaxGraphs) seen_.pop_back();
    }
    return;
  }
  seen_.erase(seen);

  // Its second: recorded, then replayed.
  begin_step();
  mode_ = Mode::Capture;
  check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "recording a step");
  bool captured = false;
  try {
    ops();
    captured = true;
  } catch (...) {
    // Something in the step cannot be recorded (or failed): end the recording, run directly.
  }
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream_, &graph);
  const std::uint64_t signature = signature_;
  end_step();
  cudaGraphExec_t exec = nullptr;
  if (captured && ended == cudaSuccess && graph && cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess) {
    (void)cudaGraphDestroy(graph);
    graphs_.push_front(Graph{key, exec, signature});
    if (graphs_.size() > kMaxGraphs) {
      release(graphs_.back());
      graphs_.pop_back();
    }
    check(cudaGraphLaunch(exec, stream_), "launching a step's graph");
    check(cudaEventRecord(copies_done_, stream_), "recording an event");
    copies_pending_ = true;
    return;
  }
  if (graph) (void)cudaGraphDestroy(graph);
  (void)cudaGetLastError();  // the failed recording's error is not the step's
  run_direct(ops);            // an error of the step itself surfaces here
}

bool StepGraphs::launch(std::uint64_t signature) {
  if (!in_step_) {
    inputs_open_ = false;  // the next input outside a step belongs to the next operation
    return true;
  }
  signature_ ^= signature + 0x9E3779B97F4A7C15ull + (signature_ << 6) + (signature_ >> 2);
  return mode_ != Mode::Replay;
}

void* StepGraphs::host_slot(std::size_t bytes) {
  if (!in_step_ && !inputs_open_) {
    // Outside a step each operation's inputs start over, once the copies before them are done
    // (an operation may have several: rows and weights of a scatter).
    if (copies_pending_) check(cudaEventSynchronize(copies_done_), "waiting for a host-to-GPU copy");
    copies_pending_ = false;
    host_used_ = device_used_ = 0;
    inputs_open_ = true;
  }
  const std::size_t need = aligned(bytes);
  if (host_used_ + need > host_capacity_) {
    if (mode_ != Mode::Direct) fail("CUDA: a recorded step needs more input memory than its first run");
    // The copies queued from the old arena must finish before it is freed (cudaFreeHost waits);
    // this step's later inputs start at the new arena's beginning.
    check(cudaStreamSynchronize(stream_), "waiting before growing pinned memory");
    if (host_) check(cudaFreeHost(host_), "freeing pinned host memory");
    const std::size_t grown = std::max<std::size_t>(2 * need + host_capacity_, 256 << 10);
    host_ = nullptr;
    host_capacity_ = 0;
    check(cudaMallocHost(&host_, grown), fmt::format("allocating {} of pinned host memory", gib(grown)));
    host_capacity_ = grown;
    host_used_ = 0;
    inputs_.clear();
    grew_ = true;
  }
  void* slot = static_cast<char*>(host_) + host_used_;
  host_used_ += need;
  return slot;
}

void StepGraphs::copy(const void* slot, void* device, std::size_t bytes) {
  if (bytes == 0 || mode_ == Mode::Replay) return;
  check(cudaMemcpyAsync(device, slot, bytes, cudaMemcpyHostToDevice, stream_), "copying inputs to the GPU");
  if (mode_ == Mode::Direct) {
    // The next step (or input outside one) rewrites the pinned arena once this copy is done, not
    // once the whole step is: the host queues the next prompt chunk while this one computes.
    check(cudaEventRecord(copies_done_, stream_), "recording an event");
    copies_pending_ = true;
  }
}

const void* StepGraphs::input(const void* host, std::size_t bytes) {
  if (bytes == 0) return nullptr;
  if (in_step_) {
    for (const Input& in : inputs_) {
      if (in.host == host && in.bytes == bytes && std::memcmp(in.slot, host, bytes) == 0) {
        launch(0x1);  // reused: part of the step's signature, as a copy is
        return in.device;
      }
    }
  }
  void* slot = host_slot(bytes);
  std::memcpy(slot, host, bytes);
  const std::size_t need = aligned(bytes);
  // (Outside a step host_slot started the device arena over too: stream order keeps the earlier
  // operations' readers before this copy.)
  if (device_used_ + need > device_arena_.bytes()) {
    if (mode_ != Mode::Direct) fail("CUDA: a recorded step needs more input memory than its first run");
    // Freeing the old arena waits for its readers; inputs reused later in this step are copied again.
    device_arena_ = DeviceBuffer(device_, std::max<std::size_t>(2 * (device_used_ + need), 256 << 10), "step inputs");
    device_used_ = 0;
    inputs_.clear();
    grew_ = true;
  }
  void* device = static_cast<char*>(device_arena_.data()) + device_used_;
  device_used_ += need;
  if (in_step_) launch((Signature(0x2) << device << static_cast<std::uint64_t>(bytes)).value());
  copy(slot, device, bytes);
  if (in_step_) inputs_.push_back(Input{host, bytes, slot, device});
  return device;
}

}  // namespace aero::backend::cuda
