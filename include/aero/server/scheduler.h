// Continuous batching over one BatchSession: the engine side of `aero serve`, with no HTTP in
// it (the server, tests and the Python bindings drive it alike).
//
// Requests queue; one thread owns the BatchSession and, every step, runs one decode token for
// each running sequence plus a chunk of a waiting prompt (chunked prefill: running streams keep
// flowing while a long prompt is read), at most max_batch tokens in all. Each sequence samples
// with its own Sampler and stop strings and hands text to its Job as it is made. Sequences join
// and leave between steps. A new request takes the free slot whose cached tokens share the
// longest prefix with its prompt and runs only the rest (a chat's earlier turns are not
// recomputed). Cancelling a Job frees its slot before the next step.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "aero/engine/batch.h"
#include "aero/engine/sampler.h"
#include "aero/tokenizer/tokenizer.h"

namespace aero::server {

struct GenerationRequest {
  std::vector<std::int32_t> prompt;
  engine::SamplingParams sampling;
  std::int64_t max_tokens = -1;  // -1: until end of generation or a full context
  std::vector<std::string> stop;  // stop strings (never shown)
  bool stop_at_eos = true;        // the model's end-of-generation tokens end it
  int top_logprobs = -1;          // >= 0: report each token's log-probability and this many alternatives
};

enum class FinishReason { None, Stop, Length, Cancelled, Error };
const char* finish_reason_name(FinishReason reason);  // "stop", "length", ...

// A token's log-probability under the model (before penalties and truncation) and the most
// likely alternatives at its position.
struct TokenLogprob {
  std::int32_t token = 0;
  float logprob = 0;
  std::vector<std::pair<std::int32_t, float>> top;
};

struct Usage {
  std::int64_t prompt_tokens = 0;
  std::int64_t cached_tokens = 0;  // of the prompt, taken from a slot's cache
  std::int64_t completion_tokens = 0;
  double queued_seconds = 0, prompt_seconds = 0, generation_seconds = 0;
};

// What a Job has produced since it was last asked.
struct JobUpdate {
  std::string text;
  std::vector<std::int32_t> tokens;
  std::vector<TokenLogprob> logprobs;  // one per token when asked for
  bool finished = false;
  FinishReason reason = FinishReason::None;
  std::string error;  // reason Error
  Usage usage;        // complete once finished
};

// One request's side of the exchange: the scheduler appends, the caller takes.
class Job {
 public:
  // Waits up to `timeout` for new text or the end; returns what is new (possibly nothing).
  JobUpdate take(std::chrono::milliseconds timeout);
  // Stops generation; the slot is freed before the scheduler's next step (a running sequence
  // means the scheduler is stepping, so it sees the flag without being woken).
  void cancel();
  bool cancelled() const { return cancelled_.load(); }

 private:
  friend class Scheduler;
  void append(std::string_view text, std::int32_t token, const TokenLogprob* logprob);
  void append_text(std::string_view text);
  void finish(FinishReason reason, const Usage& usage, std::string error = {});

  std::mutex mutex_;
  std::condition_variable changed_;
  JobUpdate pending_;
  bool done_ = false;
  std::atomic<bool> cancelled_{false};
};

struct SchedulerOptions {
  int slots = 4;
  std::int64_t context = 0;    // tokens per slot; 0: the model's, at most 4096
  std::int64_t max_batch = 512;  // tokens per step
  backend::KvType kv_type = backend::KvType::F16;
};

struct SchedulerStats {
  std::int64_t requests = 0, finished = 0, cancelled = 0, failed = 0;
  std::int64_t prompt_tokens = 0, cached_prompt_tokens = 0, generated_tokens = 0;
  std::int64_t steps = 0;
  double busy_seconds = 0;       // time spent in forward passes
  double recent_tokens_per_second = 0;  // generated over the last 10 seconds
  int queued = 0, running = 0, slots = 0;
};

class Scheduler {
 public:
  // `backend` belongs to the scheduler's thread from here on: nothing else may run on it
  // while the scheduler lives (a backend is not safe to share between threads).
  Scheduler(engine::Model& model, backend::Backend& backend, const tokenizer::Tokenizer& tokenizer,
            SchedulerOptions options = {});
  ~Scheduler();  // cancels whatever runs and stops the thread
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request. Throws aero::Error when the prompt is empty, does not leave room for one
  // token in a slot's context, holds ids outside the vocabulary, or the scheduler is closed.
  std::shared_ptr<Job> submit(GenerationRequest request);
  // Refuses new requests from now on; those already submitted run to their end.
  void close();
  // Waits until nothing is queued or running.
  void wait_idle();

  SchedulerStats stats() const;
  std::int64_t context() const;  // per slot
  int slots() const;
  const tokenizer::Tokenizer& tokenizer() const { return tokenizer_; }
  engine::Model& model() const;

 private:
  struct Sequence;
  struct Slot;
  void run();
  void admit();
  void drop_cancelled();
  void step();
  void finish(Sequence& seq, FinishReason reason, std::string error = {});
  void accept_token(Sequence& seq, std::span<const float> logits);

  const tokenizer::Tokenizer& tokenizer_;
  engine::BatchSession batch_;
  std::vector<std::int32_t> stop_ids_;

  // Shared with submitting threads.
  mutable std::mutex mutex_;
  std::condition_variable wake_, idle_;
  std::deque<std::unique_ptr<Sequence>> incoming_;
  bool closed_ = false, stopping_ = false;
  SchedulerStats stats_;
  bool idle_now_ = true;
  std::array<std::pair<std::int64_t, std::int64_t>, 16> tokens_per_second_{};  // (second, tokens) buckets

  // The scheduler thread's own.
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> running_;
  std::vector<Slot> slot_state_;
  std::uint64_t clock_ = 0;
  std::thread thread_;
};

}  // namespace aero::server
