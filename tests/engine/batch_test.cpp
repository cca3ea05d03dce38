// BatchSession against Hugging Face transformers: several sequences in one KV cache, joining at
// staggered steps, prompts in chunks beside single-token decodes, every slot's logits within
// forward_test's tolerance of the reference and every greedy continuation equal to it; slots
// reused after reset and rewind; every refused step leaving the session as it was.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "aero/engine/batch.h"
#include "aero/error.h"
#include "engine/hf_reference.h"
#include "test_support.h"

namespace aero::test {
namespace {

using engine::BatchEntry;
using engine::BatchSession;

float max_abs(std::span<const float> v) {
  float m = 0;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

float max_abs_diff(std::span<const float> a, std::span<const float> b) {
  float m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

std::int32_t argmax(std::span<const float> v) {
  return static_cast<std::int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// One sequence as a server would run it in a slot, from step `start` on: either the reference
// input (every returned row checked against transformers' logits) or the reference prompt and
// its greedy continuation. `chunks` are the sizes its prompt goes in (then one token a step).
struct Stream {
  enum Kind { Logits, Greedy } kind;
  int slot, start;
  std::vector<std::int64_t> chunks;

  std::vector<std::int32_t> ids;  // what the slot holds and will hold
  std::size_t fed = 0, chunk = 0;
  std::int64_t last = 0;          // tokens of this step's entry
  bool done = false;
};

class Batch : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    shared_ = shared_dir();
    if (!shared_) GTEST_SKIP() << "shared fixtures not found at " AERO_SHARED_DIR " (set AERO_SHARED)";
    const auto dir = *shared_ / "fixtures/hf" / GetParam();
    ref_ = HfReference::load(dir);
    model_ = engine::Model::open(dir);
    cpu_ = backend::make_cpu_backend(2);
    tolerance_ = 1e-4f * max_abs(ref_.logits);
  }
  std::span<const float> ref_row(std::size_t position) const {
    return {ref_.logits.data() + position * static_cast<std::size_t>(ref_.vocab), static_cast<std::size_t>(ref_.vocab)};
  }

  // Runs the streams step by step until all are done: each step one entry per active stream
  // (entries in a different order each step), within the session's batch.
  void run(BatchSession& batch, std::vector<Stream>& streams) {
    for (auto& s : streams) s.ids = s.kind == Stream::Logits ? ref_.input_ids : ref_.prompt_ids;
    for (int step = 0; std::any_of(streams.begin(), streams.end(), [](const Stream& s) { return !s.done; }); ++step) {
      ASSERT_LT(step, 200) << "the streams never finish";
      std::vector<BatchEntry> entries;
      std::vector<Stream*> order;
      std::int64_t room = batch.max_batch();
      for (auto& s : streams) {
        if (s.done || step < s.start) continue;
        const std::int64_t prompt = static_cast<std::int64_t>(s.kind == Stream::Logits ? s.ids.size() : ref_.prompt_ids.size());
        std::int64_t n = s.chunk < s.chunks.size() ? s.chunks[s.chunk] : 1;
        n = std::min({n, room, static_cast<std::int64_t>(s.ids.size() - s.fed)});
        if (static_cast<std::int64_t>(s.fed) < prompt) n = std::min<std::int64_t>(n, prompt - static_cast<std::int64_t>(s.fed));
        if (n <= 0) continue;
        room -= n;
        s.last = n;
        // A greedy stream's prompt chunks before the last need no logits.
        const bool logits = s.kind == Stream::Logits || static_cast<std::int64_t>(s.fed) + n >= prompt;
        entries.push_back({s.slot, std::span(s.ids).subspan(s.fed, static_cast<std::size_t>(n)), logits});
        order.push_back(&s);
      }
      if (step % 2) {
        std::reverse(entries.begin(), entries.end());
        std::reverse(order.begin(), order.end());
      }
      ASSERT_FALSE(entries.empty());
      const auto logits = batch.step(entries);
      std::size_t row = 0;
      for (std::size_t e = 0; e < entries.size(); ++e) {
        Stream& s = *order[e];
        s.fed += static_cast<std::size_t>(s.last);
        ++s.chunk;
        ASSERT_EQ(batch.position(s.slot), static_cast<std::int64_t>(s.fed));
        if (!entries[e].logits) continue;
        const std::span<const float> got = logits.subspan(row++ * static_cast<std::size_t>(ref_.vocab),
                                                          static_cast<std::size_t>(ref_.vocab));
        if (s.kind == Stream::Logits) {
          EXPECT_LE(max_abs_diff(got, ref_row(s.fed - 1)), tolerance_)
              << "slot " << s.slot << ", position " << s.fed - 1 << ", step " << step;
          s.done = s.fed == s.ids.size();
        } else {
          s.ids.push_back(argmax(got));
          s.done = s.ids.size() == ref_.greedy_ids.size();
        }
      }
      EXPECT_EQ(row * static_cast<std::size_t>(ref_.vocab), logits.size());
    }
    for (const auto& s : streams)
      if (s.kind == Stream::Greedy) EXPECT_EQ(s.ids, ref_.greedy_ids) << "slot " << s.slot;
  }

  std::optional<std::filesystem::path> shared_;
  HfReference ref_;
  std::unique_ptr<engine::Model> model_;
  std::unique_ptr<backend::Backend> cpu_;
  float tolerance_ = 0;
};

// Four sequences joining at steps 0, 0, 3 and 6: prompts in chunks of several sizes beside
// other slots' single tokens (a step of a 9-token chunk and three decodes), with a batch of 12
// tokens that sometimes cuts a chunk short.
TEST_P(Batch, StaggeredSlotsEqualTransformers) {
  BatchSession batch(*model_, *cpu_, {.slots = 4, .context = 64, .kv_type = backend::KvType::F32, .max_batch = 12});
  std::vector<Stream> streams = {
      {Stream::Logits, 2, 0, {5, 1, 7, 3, 9, 2}},
      {Stream::Greedy, 0, 0, {12}},
      {Stream::Logits, 3, 3, {1}},
      {Stream::Greedy, 1, 6, {5, 4, 3}},
  };
  run(batch, streams);
}

// A slot that finished serves a new sequence after reset, beside one still running; a rewound
// slot recomputes its dropped suffix as the reference has it.
TEST_P(Batch, SlotsAreReusedAfterResetAndRewind) {
  BatchSession batch(*model_, *cpu_, {.slots = 2, .context = 48, .kv_type = backend::KvType::F32, .max_batch = 16});
  std::vector<Stream> first = {{Stream::Greedy, 0, 0, {12}}, {Stream::Logits, 1, 0, {16, 16, 8}}};
  run(batch, first);
  ASSERT_EQ(batch.position(1), 40);
  batch.reset(0);
  EXPECT_EQ(batch.position(0), 0);
  batch.rewind(1, 20);
  EXPECT_EQ(batch.position(1), 20);
  // Slot 0 a new sequence (the reference input now); slot 1 the reference input from 20 again.
  std::vector<Stream> second = {{Stream::Logits, 0, 0, {3, 8}}, {Stream::Logits, 1, 0, {4}}};
  second[1].fed = 20;
  run(batch, second);
  EXPECT_THROW(batch.rewind(1, 41), Error);
  EXPECT_THROW(batch.rewind(1, -1), Error);
  batch.rewind(1, 0);
  EXPECT_EQ(batch.position(1), 0);
}

// A sequence alone in a batch runs exactly the single-sequence Session's computation.
TEST_P(Batch, OneEntryEqualsSessionExactly) {
  engine::Session session(*model_, *cpu_, {.context = 64, .kv_type = backend::KvType::F16});
  BatchSession batch(*model_, *cpu_, {.slots = 3, .context = 64, .kv_type = backend::KvType::F16});
  const std::span<const std::int32_t> ids(ref_.input_ids);
  for (std::size_t at = 0, n = 9; at < ids.size(); at += n, n = 1) {
    const auto expected = session.eval(ids.subspan(at, n));
    const BatchEntry entry{1, ids.subspan(at, n)};
    const auto got = batch.step({&entry, 1});
    ASSERT_EQ(got.size(), expected.size());
    EXPECT_TRUE(std::equal(got.begin(), got.end(), expected.begin())) << "position " << at;
  }
}

INSTANTIATE_TEST_SUITE_P(HfFixtures, Batch, ::testing::ValuesIn(hf_fixture_models()), [](const auto& info) {
  std::string n = info.param;
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
});

// Every refused step throws aero::Error saying why and changes nothing: positions stay, and the
// next steps give bit for bit what a session that never saw the refused steps gives.
TEST(BatchErrors, RefusedStepsChangeNothing) {
  AERO_REQUIRE_SHARED(shared);
  const auto dir = shared / "fixtures/hf/llama";
  const auto ref = HfReference::load(dir);
  auto model = engine::Model::open(dir);
  auto cpu = backend::make_cpu_backend(2);
  const engine::BatchOptions options{.slots = 2, .context = 8, .kv_type = backend::KvType::F32, .max_batch = 6};
  BatchSession batch(*model, *cpu, options), untouched(*model, *cpu, options);
  const std::span<const std::int32_t> ids(ref.input_ids);
  const BatchEntry warm[] = {{0, ids.first(3)}, {1, ids.subspan(3, 2)}};
  batch.step(warm);
  untouched.step(warm);

  const std::int32_t vocab = static_cast<std::int32_t>(model->spec().vocab);
  const std::int32_t too_big[] = {1, vocab}, negative[] = {-1};
  const std::vector<std::pair<std::vector<BatchEntry>, std::string>> refused = {
      {{{2, ids.first(1)}}, "out of range"},
      {{{-1, ids.first(1)}}, "out of range"},
      {{{0, ids.first(1)}, {0, ids.subspan(1, 1)}}, "twice"},
      {{{0, ids.first(6)}}, "context"},                       // slot 0 at 3: 6 more pass its 8
      {{{0, ids.first(4)}, {1, ids.first(3)}}, "batch"},      // 7 tokens, batch of 6
      {{{0, ids.first(2)}, {1, too_big}}, "vocabulary"},      // after a valid entry
      {{{1, negative}}, "vocabulary"},
      {{{0, ids.first(1)}, {1, {}}}, "nothing"},              // an entry with no tokens
  };
  for (const auto& [entries, why] : refused) {
    try {
      batch.step(entries);
      ADD_FAILURE() << "not refused: " << why;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
    EXPECT_EQ(batch.position(0), 3) << why;
    EXPECT_EQ(batch.position(1), 2) << why;
  }
  EXPECT_THROW(batch.position(2), Error);
  EXPECT_THROW(batch.reset(-1), Error);
  EXPECT_THROW(batch.rewind(2, 0), Error);
  EXPECT_THROW(batch.rewind(0, 4), Error);  // past what the slot holds

  // Both sessions continue identically.
  for (std::size_t at = 5; at < 9; ++at) {
    const BatchEntry next[] = {{1, ids.subspan(at, 1)}, {0, ids.subspan(at - 2, 1)}};
    const auto a = batch.step(next);
    const std::vector<float> got(a.begin(), a.end());
    const auto b = untouched.step(next);
    ASSERT_EQ(got.size(), b.size());
    EXPECT_TRUE(std::equal(got.begin(), got.end(), b.begin())) << "position " << at;
  }
  EXPECT_EQ(batch.position(0), 7);
  EXPECT_EQ(batch.position(1), 6);
}

TEST(BatchErrors, BadOptionsAreErrors) {
  AERO_REQUIRE_SHARED(shared);
  auto model = engine::Model::open(shared / "fixtures/hf/llama");
  auto cpu = backend::make_cpu_backend(1);
  EXPECT_THROW(BatchSession(*model, *cpu, {.slots = 0}), Error);
  EXPECT_THROW(BatchSession(*model, *cpu, {.slots = 2, .max_batch = 0}), Error);
  EXPECT_THROW(BatchSession(*model, *cpu, {.slots = 2, .context = 513}), Error);  // trained for 512
  BatchSession batch(*model, *cpu, {.slots = 2, .context = 16, .max_batch = 1000});
  EXPECT_EQ(batch.context(), 16);
  EXPECT_EQ(batch.max_batch(), 32);  // no step can hold more than every slot's context
  EXPECT_TRUE(batch.step({}).empty());
}

}  // namespace
}  // namespace aero::test
