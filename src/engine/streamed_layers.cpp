#include "engine/streamed_layers.h"

#include <algorithm>

#include "aero/error.h"

namespace aero::engine {
namespace {

using residency::Tier;

std::vector<const quant::Matrix*> matrices_of(const model::LayerWeights& w) { return w.matrices(); }

// Slack per slot over the largest layer's matrices: each is aligned to 256 bytes in a slot (and
// a format the GPU does not read may grow a little when converted).
constexpr std::uint64_t kSlotSlack = std::uint64_t{64} << 10;

}  // namespace

StreamedLayers::StreamedLayers(model::LayerResidency& inner, const residency::Plan& plan, backend::Backend& backend)
    : inner_(inner), placement_(plan.layers) {
  const auto layers = static_cast<std::int64_t>(placement_.size());
  if (plan.output.tier == Tier::StreamedToGpu)
    fail("the plan streams the output head, which the engine cannot do yet: give --gpu-mem room for it");
  const auto wide = residency::pass_plan(plan, plan.wide_tokens > 0 ? plan.wide_tokens : 1).layers;
  for (int w = 0; w < 2; ++w) {
    position_[w].assign(static_cast<std::size_t>(layers), -1);
    for (std::int64_t l = 0; l < layers; ++l) {
      const auto p = (w == 0 ? placement_ : wide)[static_cast<std::size_t>(l)];
      if (p.compute == residency::Processor::Gpu && p.tier != Tier::GpuResident)
        position_[w][static_cast<std::size_t>(l)] = static_cast<std::int64_t>(order_[w].size()), order_[w].push_back(l);
    }
  }
  slot_of_.assign(static_cast<std::size_t>(layers), -1);
  kept_.resize(static_cast<std::size_t>(layers));
  if (order_[1].empty()) fail("streamed layers: the plan keeps every layer on the GPU");

  // Slots for the largest layer that crosses (the plan's size, or more: each matrix aligned).
  std::uint64_t slot_bytes = plan.gpu_slot_bytes;
  for (std::int64_t l : order_[1]) {
    std::uint64_t bytes = kSlotSlack;
    for (const auto* m : matrices_of(inner_.layout(l))) bytes += static_cast<std::uint64_t>(m->rows) * m->row_bytes;
    slot_bytes = std::max(slot_bytes, bytes);
  }
  const int slots = static_cast<int>(std::clamp<std::int64_t>(plan.gpu_slots > 0 ? plan.gpu_slots : 2, 1,
                                                              static_cast<std::int64_t>(order_[1].size())));
  ring_ = backend.create_weight_ring(slots, slot_bytes);
  if (!ring_) fail("the plan streams layers to a GPU, but the {} backend computes where the weights lie", backend.name());

  // Layers streamed from RAM (and CPU layers that wide passes stream) are kept in pinned memory
  // (in the GPU's format), once; the CPU computes its layers from there too.
  for (std::int64_t l : order_[1]) {
    if (placement_[static_cast<std::size_t>(l)].tier == Tier::Disk) continue;
    const auto& w = inner_.acquire(l);
    auto& kept = kept_[static_cast<std::size_t>(l)];
    kept = w;  // norms and biases: copies of their own, at addresses that stay
    const auto from = w.matrices();
    const auto to = kept.matrices();
    for (std::size_t m = 0; m < from.size(); ++m) {
      *to[m] = ring_->keep(*from[m]);
      pinned_bytes_ += static_cast<std::uint64_t>(to[m]->rows) * to[m]->row_bytes;
    }
    inner_.release(l);
    const auto in_slot = ring_->bytes_in_slot(matrices_of(kept));
    if (in_slot > ring_->slot_bytes())
      fail("layer {} needs {} bytes in a GPU slot of {}", l, in_slot, ring_->slot_bytes());
  }
}

StreamedLayers::~StreamedLayers() {
  kept_.clear();  // the kept layers' norms and biases: device copies of them must go too
  ring_.reset();
  backend::host_weights_released();
}

// Layers the GPU computes from a ring slot in the current kind of pass; the others (resident,
// or computed by the CPU) are the model's own or their pinned copies.
bool StreamedLayers::streamed(std::int64_t layer) const { return position_[wide_ ? 1 : 0][static_cast<std::size_t>(layer)] >= 0; }

void StreamedLayers::set_wide(bool wide) {
  if (wide == wide_) return;
  // Loads queued ahead follow the other order: discarded (none is bound between passes).
  for (auto& s : slot_of_)
    if (s >= 0) ring_->discard(s), s = -1;
  loaded_ahead_ = 0;
  wide_ = wide;
}

int StreamedLayers::take_slot() {
  const int slot = next_slot_;
  next_slot_ = (next_slot_ + 1) % ring_->slots();
  return slot;
}

void StreamedLayers::load(std::int64_t layer) {
  const int slot = take_slot();
  ring_->load(slot, matrices_of(kept_[static_cast<std::size_t>(layer)]));
  slot_of_[static_cast<std::size_t>(layer)] = slot;
}

void StreamedLayers::load_ahead(std::int64_t after) {
  const auto& order = order_[wide_ ? 1 : 0];
  const auto n = static_cast<std::int64_t>(order.size());
  const std::int64_t at = position_[wide_ ? 1 : 0][static_cast<std::size_t>(after)];
  for (std::int64_t k = 1; k < n && loaded_ahead_ + 1 < ring_->slots(); ++k) {
    const std::int64_t l = order[static_cast<std::size_t>((at + k) % n)];
    // A disk layer is read when it comes; nothing goes ahead of it (its slot must be free then).
    if (placement_[static_cast<std::size_t>(l)].tier == Tier::Disk) break;
    if (slot_of_[static_cast<std::size_t>(l)] >= 0) continue;
    load(l);
    ++loaded_ahead_;
  }
}

const model::LayerWeights& StreamedLayers::acquire(std::int64_t layer) {
  if (layer < 0 || layer >= static_cast<std::int64_t>(placement_.size()))
    fail("layer {} is outside the model's {} layers", layer, placement_.size());
  const auto i = static_cast<std::size_t>(layer);
  if (!streamed(layer)) return kept(layer) ? kept_[i] : inner_.acquire(layer);
  if (placement_[i].tier == Tier::Disk) {
    // Loaded from the disk tier's buffer, which it may reuse once the bytes are staged (load
    // returns): released at once, so that its next reads start. Its LayerWeights stay where
    // they are (the norms, and the host addresses the matrices are bound under).
    const model::LayerWeights& w = inner_.acquire(layer);
    const int slot = take_slot();
    try {
      ring_->load(slot, matrices_of(w));
      ring_->bind(slot, matrices_of(w));
    } catch (...) {
      inner_.release(layer);
      throw;
    }
    inner_.release(layer);
    slot_of_[i] = slot;
    load_ahead(layer);
    return w;
  }
  if (slot_of_[i] < 0) load(layer);
  else --loaded_ahead_;
  ring_->bind(slot_of_[i], matrices_of(kept_[i]));
  load_ahead(layer);
  return kept_[i];
}

void StreamedLayers::release(std::int64_t layer) {
  if (layer < 0 || layer >= static_cast<std::int64_t>(placement_.size())) return;
  if (!streamed(layer)) {
    if (!kept(layer)) inner_.release(layer);
    return;
  }
  const auto i = static_cast<std::size_t>(layer);
  if (slot_of_[i] >= 0) ring_->retire(slot_of_[i]);
  slot_of_[i] = -1;
}

}  // namespace aero::engine
