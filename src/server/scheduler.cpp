#include "aero/server/scheduler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

#include "aero/engine/chat.h"
#include "aero/error.h"

namespace aero::server {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// log-softmax of the raw logits at the chosen token and the `top` most likely ones.
TokenLogprob token_logprob(std::span<const float> logits, std::int32_t token, int top) {
  const float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l - max));
  const float log_z = max + static_cast<float>(std::log(sum));
  TokenLogprob out{token, logits[static_cast<std::size_t>(token)] - log_z, {}};
  if (top > 0) {
    std::vector<std::int32_t> ids(logits.size());
    std::iota(ids.begin(), ids.end(), 0);
    const auto n = std::min<std::size_t>(static_cast<std::size_t>(top), ids.size());
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(n), ids.end(), [&](auto a, auto b) {
      return logits[static_cast<std::size_t>(a)] > logits[static_cast<std::size_t>(b)] ||
             (logits[static_cast<std::size_t>(a)] == logits[static_cast<std::size_t>(b)] && a < b);
    });
    for (std::size_t i = 0; i < n; ++i) out.top.emplace_back(ids[i], logits[static_cast<std::size_t>(ids[i])] - log_z);
  }
  return out;
}
}  // namespace

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Error: return "error";
    case FinishReason::None: break;
  }
  return "none";
}

// ---- Job ----

JobUpdate Job::take(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return done_ || !pending_.tokens.empty() || !pending_.text.empty(); });
  JobUpdate out = std::move(pending_);
  pending_ = JobUpdate{};
  pending_.finished = out.finished;
  pending_.reason = out.reason;
  pending_.usage = out.usage;
  return out;
}

void Job::cancel() { cancelled_ = true; }

void Job::append(std::string_view text, std::int32_t token, const TokenLogprob* logprob) {
  {
    std::lock_guard lock(mutex_);
    pending_.text += text;
    pending_.tokens.push_back(token);
    if (logprob) pending_.logprobs.push_back(*logprob);
  }
  changed_.notify_all();
}

void Job::append_text(std::string_view text) {
  if (text.empty()) return;
  {
    std::lock_guard lock(mutex_);
    pending_.text += text;
  }
  changed_.notify_all();
}

void Job::finish(FinishReason reason, const Usage& usage, std::string error) {
  {
    std::lock_guard lock(mutex_);
    done_ = true;
    pending_.finished = true;
    pending_.reason = reason;
    pending_.usage = usage;
    pending_.error = std::move(error);
  }
  changed_.notify_all();
}

// ---- Scheduler ----

struct Scheduler::Slot {
  std::vector<std::int32_t> cached;  // the tokens whose keys/values the slot holds
  bool busy = false;
  std::uint64_t last_used = 0;
};

struct Scheduler::Sequence {
  std::shared_ptr<Job> job;
  GenerationRequest request;
  engine::Sampler sampler;
  tokenizer::StreamDecoder decoder;
  engine::StopStrings stops;
  int slot = -1;
  std::vector<std::int32_t> history;  // prompt, then generated tokens (the penalties look at it)
  std::size_t fed = 0;                // tokens of `history` the slot holds
  std::int64_t generated = 0;
  Usage usage;
  Clock::time_point submitted = Clock::now(), started, first_token;

  Sequence(GenerationRequest r, const tokenizer::Tokenizer& tok)
      : job(std::make_shared<Job>()),
        request(std::move(r)),
        sampler(request.sampling),
        decoder(tok),
        stops(request.stop),
        history(request.prompt) {}
  bool prefilling() const { return fed < request.prompt.size(); }
};

Scheduler::Scheduler(engine::Model& model, backend::Backend& backend, const tokenizer::Tokenizer& tokenizer,
                     SchedulerOptions options)
    : tokenizer_(tokenizer),
      batch_(model, backend, {options.slots, options.context, options.kv_type, options.max_batch}) {
  if (options.max_batch < options.slots)
    fail("a step of {} tokens cannot hold one token of each of {} sequences", options.max_batch, options.slots);
  stop_ids_ = model.spec().eos_ids;
  for (auto id : tokenizer.vocab().end_of_generation)
    if (std::ranges::find(stop_ids_, id) == stop_ids_.end()) stop_ids_.push_back(id);
  slot_state_.resize(static_cast<std::size_t>(batch_.slots()));
  stats_.slots = batch_.slots();
  thread_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = closed_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::int64_t Scheduler::context() const { return batch_.context(); }
int Scheduler::slots() const { return batch_.slots(); }
engine::Model& Scheduler::model() const { return batch_.model(); }

std::shared_ptr<Job> Scheduler::submit(GenerationRequest request) {
  if (request.prompt.empty()) fail("the prompt is empty: generation needs at least one token");
  const auto n = static_cast<std::int64_t>(request.prompt.size());
  if (n >= context())
    fail("the prompt ({} tokens) does not fit the context of {} tokens per sequence", n, context());
  const std::int64_t vocab = model().spec().vocab;
  for (auto id : request.prompt)
    if (id < 0 || id >= vocab) fail("token id {} is outside the vocabulary (0..{})", id, vocab - 1);
  if (request.max_tokens < -1) fail("max_tokens must be -1 (no limit) or more (got {})", request.max_tokens);
  request.sampling.validate();
  auto seq = std::make_unique<Sequence>(std::move(request), tokenizer_);
  auto job = seq->job;
  {
    std::lock_guard lock(mutex_);
    if (closed_) fail("the server is shutting down");
    incoming_.push_back(std::move(seq));
    ++stats_.requests;
    ++stats_.queued;
    idle_now_ = false;
  }
  wake_.notify_all();
  return job;
}

void Scheduler::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
}

void Scheduler::wait_idle() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] { return idle_now_; });
}

namespace {
std::int64_t steady_second() {
  return std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();
}
}  // namespace

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(mutex_);
  SchedulerStats s = stats_;
  // The last ten whole seconds (the current one is still filling).
  const std::int64_t now = steady_second();
  std::int64_t tokens = 0;
  for (const auto& [second, count] : tokens_per_second_)
    if (second < now && second >= now - 10) tokens += count;
  s.recent_tokens_per_second = static_cast<double>(tokens) / 10.0;
  return s;
}

void Scheduler::run() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (waiting_.empty() && running_.empty() && incoming_.empty()) {
        idle_now_ = true;
        idle_.notify_all();
      }
      wake_.wait(lock, [&] { return stopping_ || !incoming_.empty() || !waiting_.empty() || !running_.empty(); });
      if (stopping_) break;
      while (!incoming_.empty()) {
        waiting_.push_back(std::move(incoming_.front()));
        incoming_.pop_front();
      }
    }
    drop_cancelled();
    admit();
    if (!running_.empty()) step();
  }
  // Stopping: whatever is left ends as cancelled.
  for (auto& seq : running_) finish(*seq, FinishReason::Cancelled);
  for (auto& seq : waiting_) finish(*seq, FinishReason::Cancelled);
  for (auto& seq : incoming_) finish(*seq, FinishReason::Cancelled);
  std::lock_guard lock(mutex_);
  idle_now_ = true;
  idle_.notify_all();
}

void Scheduler::finish(Sequence& seq, FinishReason reason, std::string error) {
  if (seq.slot >= 0) {
    Slot& slot = slot_state_[static_cast<std::size_t>(seq.slot)];
    slot.busy = false;
    slot.last_used = ++clock_;
  }
  const auto now = Clock::now();
  if (seq.started == Clock::time_point{}) seq.started = now;
  if (seq.first_token == Clock::time_point{}) seq.first_token = now;
  seq.usage.prompt_tokens = static_cast<std::int64_t>(seq.request.prompt.size());
  seq.usage.completion_tokens = seq.generated;
  seq.usage.queued_seconds = seconds_between(seq.submitted, seq.started);
  seq.usage.prompt_seconds = seconds_between(seq.started, seq.first_token);
  seq.usage.generation_seconds = seconds_between(seq.first_token, now);
  {
    std::lock_guard lock(mutex_);
    if (seq.slot >= 0) --stats_.running;
    else --stats_.queued;
    ++(reason == FinishReason::Cancelled ? stats_.cancelled : reason == FinishReason::Error ? stats_.failed : stats_.finished);
  }
  seq.job->finish(reason, seq.usage, std::move(error));
}

void Scheduler::drop_cancelled() {
  auto drop = [&](auto& list) {
    for (auto it = list.begin(); it != list.end();) {
      if ((*it)->job->cancelled()) {
        finish(**it, FinishReason::Cancelled);
        it = list.erase(it);
      } else {
        ++it;
      }
    }
  };
  drop(running_);
  drop(waiting_);
}

// Waiting sequences take free slots in arrival order: the free slot that already holds the
// longest prefix of the prompt, rewound to it; when no slot holds a useful prefix (a few
// tokens, such as BOS, save nothing), the slot used longest ago (an empty one first), so that
// the caches of recent conversations stay for their next turn.
void Scheduler::admit() {
  constexpr std::size_t kUsefulPrefix = 4;
  while (!waiting_.empty()) {
    Sequence& seq = *waiting_.front();
    const auto& prompt = seq.request.prompt;
    int best = -1, oldest = -1;
    std::size_t best_prefix = 0;
    for (int s = 0; s < slots(); ++s) {
      const Slot& slot = slot_state_[static_cast<std::size_t>(s)];
      if (slot.busy) continue;
      const auto prefix = static_cast<std::size_t>(std::ranges::mismatch(slot.cached, prompt).in1 - slot.cached.begin());
      if (best < 0 || prefix > best_prefix) {
        best = s;
        best_prefix = prefix;
      }
      if (oldest < 0 || slot.last_used < slot_state_[static_cast<std::size_t>(oldest)].last_used) oldest = s;
    }
    if (best < 0) return;
    if (best_prefix < std::min(kUsefulPrefix, prompt.size())) {
      best = oldest;
      const auto& cached = slot_state_[static_cast<std::size_t>(best)].cached;
      best_prefix = static_cast<std::size_t>(std::ranges::mismatch(cached, prompt).in1 - cached.begin());
    }
    if (best < 0) return;
    // At least the prompt's last token runs again: its logits choose the first new token.
    const std::size_t reuse = std::min(best_prefix, prompt.size() - 1);
    Slot& slot = slot_state_[static_cast<std::size_t>(best)];
    batch_.rewind(best, static_cast<std::int64_t>(reuse));
    slot.cached.resize(reuse);
    slot.busy = true;
    seq.slot = best;
    seq.fed = reuse;
    seq.usage.cached_tokens = static_cast<std::int64_t>(reuse);
    seq.started = Clock::now();
    {
      std::lock_guard lock(mutex_);
      --stats_.queued;
      ++stats_.running;
      stats_.prompt_tokens += static_cast<std::int64_t>(prompt.size());
      stats_.cached_prompt_tokens += static_cast<std::int64_t>(reuse);
    }
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
}

void Scheduler::step() {
  // Decode tokens first (every running stream moves each step), then prompt chunks in arrival
  // order with what is left of the step's tokens.
  std::vector<engine::BatchEntry> entries;
  std::vector<Sequence*> owners;
  std::int64_t budget = batch_.max_batch();
  for (auto& seq : running_)
    if (!seq->prefilling()) {
      entries.push_back({seq->slot, std::span(seq->history).subspan(seq->fed, 1), true});
      owners.push_back(seq.get());
      --budget;
    }
  for (auto& seq : running_) {
    if (!seq->prefilling() || budget <= 0) continue;
    const auto left = static_cast<std::int64_t>(seq->request.prompt.size() - seq->fed);
    const auto n = std::min(left, budget);
    entries.push_back({seq->slot, std::span(seq->history).subspan(seq->fed, static_cast<std::size_t>(n)), n == left});
    owners.push_back(seq.get());
    budget -= n;
  }

  std::span<const float> logits;
  const auto start = Clock::now();
  try {
    logits = batch_.step(entries);
  } catch (const std::exception& e) {
    // The engine refused the step (it changes nothing then) or a device failed: the sequences
    // in it end with the error, their slots start over.
    for (Sequence* seq : owners) {
      batch_.reset(seq->slot);
      slot_state_[static_cast<std::size_t>(seq->slot)].cached.clear();
      finish(*seq, FinishReason::Error, e.what());
    }
    std::erase_if(running_, [&](const auto& s) { return std::ranges::find(owners, s.get()) != owners.end(); });
    return;
  }
  {
    std::lock_guard lock(mutex_);
    ++stats_.steps;
    stats_.busy_seconds += seconds_between(start, Clock::now());
  }

  const auto vocab = static_cast<std::size_t>(model().spec().vocab);
  std::size_t next_logits = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    Sequence& seq = *owners[i];
    auto& cached = slot_state_[static_cast<std::size_t>(seq.slot)].cached;
    cached.insert(cached.end(), entries[i].tokens.begin(), entries[i].tokens.end());
    seq.fed += entries[i].tokens.size();
    if (!entries[i].logits) continue;
    accept_token(seq, logits.subspan(next_logits * vocab, vocab));
    ++next_logits;
  }
  std::erase_if(running_, [](const auto& s) { return s->slot < 0; });
}

// Samples the sequence's next token and hands its text on; ends the sequence at an
// end-of-generation token, a stop string, max_tokens or a full context.
void Scheduler::accept_token(Sequence& seq, std::span<const float> logits) {
  const auto end = [&](FinishReason reason) {
    // Text held back (an unfinished UTF-8 sequence, a possible start of a stop string) is
    // shown unless a stop string ended it.
    if (!seq.stops.stopped()) seq.job->append_text(seq.stops.push(seq.decoder.finish()) + seq.stops.finish());
    finish(seq, reason);
    seq.slot = -1;  // leaves running_ after this step
  };
  if (seq.first_token == Clock::time_point{}) seq.first_token = Clock::now();
  if (seq.request.max_tokens >= 0 && seq.generated >= seq.request.max_tokens) return end(FinishReason::Length);
  const std::int32_t token = seq.sampler.sample(logits, seq.history);
  if (seq.request.stop_at_eos && std::ranges::find(stop_ids_, token) != stop_ids_.end()) return end(FinishReason::Stop);
  seq.history.push_back(token);
  ++seq.generated;
  {
    std::lock_guard lock(mutex_);
    ++stats_.generated_tokens;
    const std::int64_t second = steady_second();
    auto& bucket = tokens_per_second_[static_cast<std::size_t>(second) % tokens_per_second_.size()];
    if (bucket.first != second) bucket = {second, 0};
    ++bucket.second;
  }
  std::optional<TokenLogprob> logprob;
  if (seq.request.top_logprobs >= 0) logprob = token_logprob(logits, token, seq.request.top_logprobs);
  seq.job->append(seq.stops.push(seq.decoder.push(token)), token, logprob ? &*logprob : nullptr);
  if (seq.stops.stopped()) return end(FinishReason::Stop);
  if (seq.request.max_tokens >= 0 && seq.generated >= seq.request.max_tokens) return end(FinishReason::Length);
  if (batch_.position(seq.slot) >= context()) return end(FinishReason::Length);
}

}  // namespace aero::server
