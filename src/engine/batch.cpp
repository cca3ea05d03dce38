// BatchSession, first version: one Session per slot, a step runs its entries one after
// another. Correct and simple; the batched forward pass (one matrix product over every
// entry's tokens) replaces it behind the same interface.
#include "aero/engine/batch.h"

#include <algorithm>
#include <cstring>

#include "aero/error.h"

namespace aero::engine {

struct BatchSession::Impl {
  Model& model;
  std::int64_t max_batch;
  std::vector<std::unique_ptr<Session>> sessions;
  std::vector<float> logits;
};

BatchSession::BatchSession(Model& model, backend::Backend& backend, BatchOptions options)
    : impl_(std::make_unique<Impl>(Impl{model, 0, {}, {}})) {
  if (options.slots < 1) fail("a batch needs at least one slot (got {})", options.slots);
  if (options.max_batch < 1) fail("the batch size must be at least one token (got {})", options.max_batch);
  impl_->max_batch = options.max_batch;
  SessionOptions per_slot{options.context, options.kv_type, options.max_batch};
  for (int i = 0; i < options.slots; ++i) impl_->sessions.push_back(std::make_unique<Session>(model, backend, per_slot));
}

BatchSession::~BatchSession() = default;

std::span<const float> BatchSession::step(std::span<const BatchEntry> entries) {
  auto& im = *impl_;
  const std::int64_t vocab = im.model.spec().vocab;
  std::int64_t total = 0, wanted = 0;
  std::vector<bool> seen(im.sessions.size());
  for (const BatchEntry& e : entries) {
    if (e.slot < 0 || e.slot >= slots()) fail("slot {} is out of range (0..{})", e.slot, slots() - 1);
    if (seen[static_cast<std::size_t>(e.slot)]) fail("slot {} appears twice in one step", e.slot);
    seen[static_cast<std::size_t>(e.slot)] = true;
    if (e.tokens.empty()) fail("slot {}: nothing to evaluate", e.slot);
    const Session& s = *im.sessions[static_cast<std::size_t>(e.slot)];
    if (s.position() + static_cast<std::int64_t>(e.tokens.size()) > s.context())
      fail("slot {}: {} tokens at position {} exceed the context of {} tokens", e.slot, e.tokens.size(), s.position(),
           s.context());
    for (std::int32_t id : e.tokens)
      if (id < 0 || id >= vocab) fail("token id {} is outside the vocabulary (0..{})", id, vocab - 1);
    total += static_cast<std::int64_t>(e.tokens.size());
    wanted += e.logits ? 1 : 0;
  }
  if (total > im.max_batch) fail("{} tokens in one step exceed the batch of {}", total, im.max_batch);
  im.logits.resize(static_cast<std::size_t>(wanted * vocab));
  float* out = im.logits.data();
  for (const BatchEntry& e : entries) {
    auto logits = im.sessions[static_cast<std::size_t>(e.slot)]->eval(e.tokens);
    if (!e.logits) continue;
    std::memcpy(out, logits.data(), static_cast<std::size_t>(vocab) * sizeof(float));
    out += vocab;
  }
  return im.logits;
}

int BatchSession::slots() const { return static_cast<int>(impl_->sessions.size()); }
std::int64_t BatchSession::context() const { return impl_->sessions[0]->context(); }
std::int64_t BatchSession::max_batch() const { return impl_->max_batch; }
Model& BatchSession::model() const { return impl_->model; }

static void check_slot(int slot, int slots) {
  if (slot < 0 || slot >= slots) fail("slot {} is out of range (0..{})", slot, slots - 1);
}
std::int64_t BatchSession::position(int slot) const {
  check_slot(slot, slots());
  return impl_->sessions[static_cast<std::size_t>(slot)]->position();
}
void BatchSession::reset(int slot) {
  check_slot(slot, slots());
  impl_->sessions[static_cast<std::size_t>(slot)]->reset();
}
void BatchSession::rewind(int slot, std::int64_t position) {
  check_slot(slot, slots());
  impl_->sessions[static_cast<std::size_t>(slot)]->rewind(position);
}

}  // namespace aero::engine
