// Many sequences through one model at once: the engine behind `aero serve` and batch mode.
// A BatchSession holds a KV cache with `slots` independent sequences (each with its own
// positions, up to `context` tokens) and runs, in one forward pass, any mix of them: a few
// decode tokens for running sequences and a chunk of a new prompt. Matrix products run once
// over every token of the step; attention runs per sequence over that sequence's cache.
// Sequences join and leave between steps (continuous batching): a slot is just reset.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "aero/backend/backend.h"
#include "aero/engine/session.h"

namespace aero::engine {

struct BatchOptions {
  int slots = 4;                 // sequences held at once
  std::int64_t context = 0;      // tokens per slot; 0: the model's trained context, at most 4096
  backend::KvType kv_type = backend::KvType::F16;
  std::int64_t max_batch = 512;  // tokens per forward pass (all entries of a step together)
};

// One sequence's share of a step: `tokens` go at the slot's next positions.
struct BatchEntry {
  int slot = 0;
  std::span<const std::int32_t> tokens;
  bool logits = true;  // return the logits of this entry's last token
};

class BatchSession {
 public:
  BatchSession(Model& model, backend::Backend& backend, BatchOptions options = {});
  ~BatchSession();
  BatchSession(const BatchSession&) = delete;
  BatchSession& operator=(const BatchSession&) = delete;

  // Runs every entry in one forward pass (at most one entry per slot; their tokens together at
  // most max_batch). Returns vocab floats per entry that asked for logits, in entry order, valid
  // until the next step. Throws aero::Error (and changes nothing) when an entry would pass its
  // slot's context, names a slot twice or out of range, or holds an id outside the vocabulary.
  std::span<const float> step(std::span<const BatchEntry> entries);

  int slots() const;
  std::int64_t context() const;   // per slot
  std::int64_t max_batch() const;
  std::int64_t position(int slot) const;  // tokens the slot holds
  void reset(int slot);                   // position 0: the slot is free for a new sequence
  void rewind(int slot, std::int64_t position);  // keeps the first `position` tokens
  Model& model() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aero::engine
