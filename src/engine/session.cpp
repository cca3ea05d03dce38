// Model (a source, its spec and weights) and Session (one sequence through the forward pass
// of engine/forward.h, over a one-slot KV cache).
#include "aero/engine/session.h"

#include <algorithm>

#include "aero/error.h"
#include "engine/forward.h"

namespace aero::engine {

std::unique_ptr<Model> Model::open(const std::filesystem::path& path, const std::filesystem::path& metadata_from,
                                   const ModelOptions& options) {
  auto source = format::ModelSource::open(path);
  if (!metadata_from.empty()) source->adopt_metadata(format::ModelSource::open(metadata_from)->metadata());
  return std::make_unique<Model>(std::move(source), options);
}

Model::~Model() {
  weights_.reset();
  source_.reset();
  backend::host_weights_released();
}

Model::Model(std::unique_ptr<format::ModelSource> source, const ModelOptions& options) : source_(std::move(source)) {
  spec_ = model::read_spec(*source_);
  if (options.planner) plan_ = options.planner(*source_, spec_);
  if (plan_ && plan_->needs_disk()) {
    // Disk layers are read by the disk tier; on a GPU the forward pass loads them from its
    // buffers into the GPU's ring (StreamedLayers) as they come.
    // Layers streamed to the GPU from RAM are read once, into the streaming's pinned memory:
    // the disk tier need not keep them too.
    std::vector<bool> cached;
    for (const auto& p : plan_->layers)
      cached.push_back(p.tier != residency::Tier::Disk && p.tier != residency::Tier::StreamedToGpu);
    auto disk_options = options.disk;
    if (plan_->disk_slots > 0) disk_options.slots = plan_->disk_slots;  // the ring the RAM budget has room for
    auto disk = std::make_unique<residency::DiskStreamedWeights>(*source_, spec_, std::move(cached), disk_options);
    bytes_per_token_ = disk->bytes_per_token();
    disk_ = disk.get();
    weights_ = std::move(disk);
    return;
  }
  // --verify without a disk tier: every page checked once, now (the disk tier checks each read).
  if (options.disk.verify) residency::verify_pages(*source_);
  auto resident = std::make_unique<model::ResidentWeights>(*source_, spec_);
  bytes_per_token_ = resident->bytes_per_token();
  weights_ = std::move(resident);
}

Session::Session(Model& model, backend::Backend& backend, SessionOptions options)
    : model_(model),
      pass_(std::make_unique<ForwardPass>(model, backend, options.context, 1, options.kv_type, options.max_batch,
                                          options.max_batch)),
      context_(pass_->context()),
      max_batch_(pass_->max_batch()) {}

Session::~Session() = default;

std::uint64_t Session::kv_bytes() const { return pass_->kv_bytes(); }
std::uint64_t Session::streamed_bytes() const { return pass_->streamed() ? pass_->streamed()->bytes_loaded() : 0; }
std::uint64_t Session::pinned_bytes() const { return pass_->streamed() ? pass_->streamed()->pinned_bytes() : 0; }

void Session::rewind(std::int64_t position) {
  if (position < 0 || position > position_) fail("cannot rewind to position {} (at {})", position, position_);
  position_ = position;
}

std::span<const float> Session::eval(std::span<const std::int32_t> tokens, bool all_logits) {
  const auto& s = model_.spec();
  if (tokens.empty()) fail("nothing to evaluate: no tokens");
  const auto n = static_cast<std::int64_t>(tokens.size());
  if (position_ + n > context_)
    fail("{} tokens at position {} exceed the context of {} tokens (raise --ctx, up to {})", n, position_, context_,
         s.context);
  for (std::int32_t id : tokens)
    if (id < 0 || id >= s.vocab) fail("token id {} is outside the vocabulary (0..{})", id, s.vocab - 1);
  host_logits_.resize(static_cast<std::size_t>((all_logits ? n : 1) * s.vocab));
  for (std::int64_t done = 0; done < n; done += max_batch_) {
    const std::int64_t count = std::min(max_batch_, n - done);
    const bool last_chunk = done + count == n;
    slots_.assign(static_cast<std::size_t>(count), 0);
    positions_.resize(static_cast<std::size_t>(count));
    for (std::int64_t t = 0; t < count; ++t) positions_[static_cast<std::size_t>(t)] = static_cast<std::int32_t>(position_ + t);
    // Logits of every token, or of the last one only (all a generation step needs).
    logit_rows_.clear();
    for (std::int64_t t = all_logits ? 0 : last_chunk ? count - 1 : count; t < count; ++t) logit_rows_.push_back(t);
    float* out = all_logits ? host_logits_.data() + done * s.vocab : host_logits_.data();
    pass_->run({tokens.subspan(static_cast<std::size_t>(done), static_cast<std::size_t>(count)), slots_, positions_,
                logit_rows_},
               out);
    position_ += count;
  }
  return host_logits_;
}

}  // namespace aero::engine
