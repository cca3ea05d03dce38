// Choosing the next token from logits, with llama.cpp's defaults and order: repetition
// penalties, then top-k, top-p and min-p filtering, then temperature, then a draw from the
// seeded generator (the same seed gives the same tokens). Temperature 0 is greedy.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace aero::engine {

struct SamplingParams {
  float temperature = 0.8f;
  std::int32_t top_k = 40;        // 0: no limit
  float top_p = 0.95f;            // 1: no limit
  float min_p = 0.05f;            // 0: no limit
  float repeat_penalty = 1.0f;    // 1: none; divides positive logits of recent tokens, multiplies negative
  float presence_penalty = 0.0f;  // subtracted once from each recent token's logit
  float frequency_penalty = 0.0f; // subtracted per occurrence
  std::int32_t repeat_last_n = 64;  // how many recent tokens the penalties look at
  std::uint64_t seed = 0xFFFFFFFF;  // llama.cpp's "random seed" value: draws one from the OS

  bool greedy() const { return temperature <= 0.0f; }
  // Throws aero::Error naming the first value out of range.
  void validate() const;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  // `history`: the tokens so far (prompt and generated), for the penalties.
  std::int32_t sample(std::span<const float> logits, std::span<const std::int32_t> history);
  std::uint64_t seed() const { return seed_; }

 private:
  struct Candidate {
    std::int32_t id;
    float logit;
    float p;
  };
  SamplingParams params_;
  std::uint64_t seed_;
  std::mt19937_64 rng_;
  std::vector<Candidate> candidates_;
};

}  // namespace aero::engine
