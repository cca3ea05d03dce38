// A loaded model and the state of one conversation with it. `Model` holds what never
// changes (spec, weights behind their residency); `Session` holds a KV cache and a position
// and turns token ids into logits.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "aero/backend/backend.h"
#include "aero/format/model_source.h"
#include "aero/model/spec.h"
#include "aero/model/weights.h"
#include "aero/residency/disk_weights.h"
#include "aero/residency/plan.h"

namespace aero::engine {

// Where the layers go: a planner turns the opened source and its spec into a residency::Plan.
// Without one every layer is resident where it is mapped (model::ResidentWeights), as with a plan
// that reads nothing from disk; a plan with Disk layers gets the disk tier
// (residency::DiskStreamedWeights: the other layers cached in RAM).
using Planner = std::function<residency::Plan(const format::ModelSource&, const model::ModelSpec&)>;
struct ModelOptions {
  Planner planner;
  residency::DiskWeightsOptions disk;  // how the disk tier reads
};

class Model {
 public:
  // Opens any model source; `metadata_from` (optional) supplies config/tokenizer to files
  // that carry none (a bare safetensors file, a GGUF without keys).
  static std::unique_ptr<Model> open(const std::filesystem::path& path, const std::filesystem::path& metadata_from = {},
                                     const ModelOptions& options = {});
  explicit Model(std::unique_ptr<format::ModelSource> source, const ModelOptions& options = {});
  ~Model();  // tells the backends that its weights' host memory is gone (host_weights_released)
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const model::ModelSpec& spec() const { return spec_; }
  const format::ModelSource& source() const { return *source_; }
  model::LayerResidency& weights() { return *weights_; }
  std::uint64_t weight_bytes_per_token() const { return bytes_per_token_; }
  const residency::Plan* plan() const { return plan_ ? &*plan_ : nullptr; }
  // The disk tier's counters, when the model runs on it (null otherwise).
  const residency::DiskStreamedWeights* disk_weights() const { return disk_; }

 private:
  std::unique_ptr<format::ModelSource> source_;
  model::ModelSpec spec_;
  std::unique_ptr<model::LayerResidency> weights_;
  std::uint64_t bytes_per_token_ = 0;
  std::optional<residency::Plan> plan_;
  const residency::DiskStreamedWeights* disk_ = nullptr;
};

struct SessionOptions {
  std::int64_t context = 0;  // 0: the model's trained context, at most 4096
  backend::KvType kv_type = backend::KvType::F16;
  std::int64_t max_batch = 256;  // tokens per forward pass during prompt processing
};

class ForwardPass;  // the forward pass Session and BatchSession share (src/engine/forward.h)

// One sequence: the forward pass over a one-slot KV cache.
class Session {
 public:
  Session(Model& model, backend::Backend& backend, SessionOptions options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Runs `tokens` at the next positions. Returns the logits of the last token, or of every
  // token (n × vocab) when `all_logits`. Throws aero::Error past the context.
  std::span<const float> eval(std::span<const std::int32_t> tokens, bool all_logits = false);

  Model& model() const { return model_; }
  std::int64_t position() const { return position_; }
  std::int64_t context() const { return context_; }
  // Forgets the conversation (positions restart at 0; cache entries are overwritten).
  void reset() { position_ = 0; }
  // Keeps the first `position` tokens, drops the rest (e.g. to re-run a suffix).
  void rewind(std::int64_t position);
  std::uint64_t kv_bytes() const;
  // Bytes of weights the plan's GPU streaming has copied to the GPU so far (0 when no layer
  // streams), and the pinned host memory that keeps the layers streamed from RAM.
  std::uint64_t streamed_bytes() const;
  std::uint64_t pinned_bytes() const;

 private:
  Model& model_;
  std::unique_ptr<ForwardPass> pass_;
  std::int64_t context_;
  std::int64_t max_batch_;
  std::int64_t position_ = 0;
  std::vector<std::int32_t> slots_, positions_;  // of one pass (all slot 0)
  std::vector<std::int64_t> logit_rows_;
  std::vector<float> host_logits_;
};

}  // namespace aero::engine
