// Plans that put a model's layers where a test wants them (every kind of GPU placement), for
// the streaming tests on the CPU (streamed_layers_test.cpp) and on a GPU (cuda_streaming_test.cpp).
#pragma once

#include <vector>

#include "aero/engine/session.h"
#include "aero/residency/plan.h"
#include "engine/hf_reference.h"

namespace aero::test {

inline constexpr residency::Placement kResident{residency::Tier::GpuResident, residency::Processor::Gpu};
inline constexpr residency::Placement kStreamed{residency::Tier::StreamedToGpu, residency::Processor::Gpu};
inline constexpr residency::Placement kFromDisk{residency::Tier::Disk, residency::Processor::Gpu};
inline constexpr residency::Placement kOnCpu{residency::Tier::CpuCompute, residency::Processor::Cpu};
inline constexpr residency::Placement kDiskOnCpu{residency::Tier::Disk, residency::Processor::Cpu};

// `kinds[i % kinds.size()]` for layer i; the head as `head`; `slots` ring slots; passes of
// `wide_tokens` tokens or more wide (the CPU layers streamed to the GPU; 0: never).
inline engine::Planner placing(std::vector<residency::Placement> kinds, int slots, residency::Placement head = kResident,
                               std::int64_t wide_tokens = 0) {
  return [kinds, slots, head, wide_tokens](const format::ModelSource&, const model::ModelSpec& spec) {
    residency::Plan p;
    for (std::int64_t l = 0; l < spec.layers; ++l) p.layers.push_back(kinds[static_cast<std::size_t>(l) % kinds.size()]);
    p.output = head;
    p.gpu_slots = slots;
    p.disk_slots = 2;
    p.wide_tokens = wide_tokens;
    return p;
  };
}

// The logits of a run the streaming tests compare: the prompt in one pass (every position),
// then each token of the reference's greedy continuation alone.
inline std::vector<std::vector<float>> logits_of_greedy_run(engine::Model& model, backend::Backend& b,
                                                            const HfReference& ref, backend::KvType kv) {
  engine::Session session(model, b, {.kv_type = kv});
  std::vector<std::vector<float>> out;
  auto l = session.eval(ref.prompt_ids, true);
  out.emplace_back(l.begin(), l.end());
  for (std::size_t t = ref.prompt_ids.size(); t < ref.greedy_ids.size(); ++t) {
    auto step = session.eval(std::span(ref.greedy_ids).subspan(t - 1, 1));
    out.emplace_back(step.begin(), step.end());
  }
  return out;
}

}  // namespace aero::test
