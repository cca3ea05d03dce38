// BatchSession: the forward pass of engine/forward.h over a KV cache of many slots. A step
// concatenates its entries' tokens (each with its slot and positions) into one pass, so every
// matrix product reads its weights once for all of them; attention runs per sequence.
#include "aero/engine/batch.h"

#include <algorithm>

#include "aero/error.h"
#include "engine/forward.h"

namespace aero::engine {

struct BatchSession::Impl {
  Model& model;
  ForwardPass pass;
  std::vector<std::int64_t> positions;  // tokens each slot holds
  // One step's tokens and the logits that come back, reused from step to step.
  std::vector<std::int32_t> ids, token_slots, token_positions;
  std::vector<std::int64_t> logit_rows;
  std::vector<float> logits;
};

BatchSession::BatchSession(Model& model, backend::Backend& backend, BatchOptions options) {
  if (options.slots < 1) fail("a batch needs at least one slot (got {})", options.slots);
  if (options.max_batch < 1) fail("the batch size must be at least one token (got {})", options.max_batch);
  // Logits come back for at most one token per entry, and a step has at most one entry per slot.
  const std::int64_t max_logits = std::min<std::int64_t>(options.slots, options.max_batch);
  impl_.reset(new Impl{  // (not make_unique: the pass is built in place, it cannot move)
      model,
      ForwardPass(model, backend, options.context, options.slots, options.kv_type, options.max_batch, max_logits),
      std::vector<std::int64_t>(static_cast<std::size_t>(options.slots)),
      {}, {}, {}, {}, {}});
}

BatchSession::~BatchSession() = default;

std::span<const float> BatchSession::step(std::span<const BatchEntry> entries) {
  auto& im = *impl_;
  const std::int64_t vocab = im.model.spec().vocab;
  // Every entry checked before anything runs: a refused step changes nothing.
  std::int64_t total = 0;
  std::vector<bool> seen(static_cast<std::size_t>(slots()));
  for (const BatchEntry& e : entries) {
    if (e.slot < 0 || e.slot >= slots()) fail("slot {} is out of range (0..{})", e.slot, slots() - 1);
    if (seen[static_cast<std::size_t>(e.slot)]) fail("slot {} appears twice in one step", e.slot);
    seen[static_cast<std::size_t>(e.slot)] = true;
    if (e.tokens.empty()) fail("slot {}: nothing to evaluate", e.slot);
    const std::int64_t at = im.positions[static_cast<std::size_t>(e.slot)];
    if (at + static_cast<std::int64_t>(e.tokens.size()) > context())
      fail("slot {}: {} tokens at position {} exceed the context of {} tokens", e.slot, e.tokens.size(), at, context());
    for (std::int32_t id : e.tokens)
      if (id < 0 || id >= vocab) fail("token id {} is outside the vocabulary (0..{})", id, vocab - 1);
    total += static_cast<std::int64_t>(e.tokens.size());
  }
  if (total > max_batch()) fail("{} tokens in one step exceed the batch of {}", total, max_batch());

  im.ids.clear();
  im.token_slots.clear();
  im.token_positions.clear();
  im.logit_rows.clear();
  for (const BatchEntry& e : entries) {
    const std::int64_t at = im.positions[static_cast<std::size_t>(e.slot)];
    for (std::size_t t = 0; t < e.tokens.size(); ++t) {
      im.ids.push_back(e.tokens[t]);
      im.token_slots.push_back(e.slot);
      im.token_positions.push_back(static_cast<std::int32_t>(at + static_cast<std::int64_t>(t)));
    }
    if (e.logits) im.logit_rows.push_back(static_cast<std::int64_t>(im.ids.size()) - 1);
  }
  im.logits.resize(im.logit_rows.size() * static_cast<std::size_t>(vocab));
  if (!im.ids.empty()) im.pass.run({im.ids, im.token_slots, im.token_positions, im.logit_rows}, im.logits.data());
  for (const BatchEntry& e : entries) im.positions[static_cast<std::size_t>(e.slot)] += static_cast<std::int64_t>(e.tokens.size());
  return im.logits;
}

int BatchSession::slots() const { return static_cast<int>(impl_->positions.size()); }
std::int64_t BatchSession::context() const { return impl_->pass.context(); }
std::int64_t BatchSession::max_batch() const { return impl_->pass.max_batch(); }
Model& BatchSession::model() const { return impl_->model; }

static void check_slot(int slot, int slots) {
  if (slot < 0 || slot >= slots) fail("slot {} is out of range (0..{})", slot, slots - 1);
}
std::int64_t BatchSession::position(int slot) const {
  check_slot(slot, slots());
  return impl_->positions[static_cast<std::size_t>(slot)];
}
void BatchSession::reset(int slot) {
  check_slot(slot, slots());
  impl_->positions[static_cast<std::size_t>(slot)] = 0;
}
void BatchSession::rewind(int slot, std::int64_t position) {
  check_slot(slot, slots());
  std::int64_t& at = impl_->positions[static_cast<std::size_t>(slot)];
  if (position < 0 || position > at) fail("slot {}: cannot rewind to position {} (at {})", slot, position, at);
  at = position;
}

}  // namespace aero::engine
