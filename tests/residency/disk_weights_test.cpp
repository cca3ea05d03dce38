// The disk tier against the all-resident model on the fixtures: the same kernels on the same
// bytes, so the logits must be bit-identical; files truncated or rewritten under a running model
// must give an aero::Error; and the ring reads layers in pass order, ahead of use.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "aero/backend/backend.h"
#include "aero/convert/convert.h"
#include "aero/engine/batch.h"
#include "aero/engine/session.h"
#include "aero/error.h"
#include "aero/model/weights.h"
#include "aero/residency/disk_weights.h"
#include "engine/hf_reference.h"
#include "test_support.h"

namespace aero::test {
namespace {

std::filesystem::path gguf_of(const std::filesystem::path& shared, const std::string& model) {
  static ScratchDir scratch;
  const auto out = scratch / (model + ".gguf");
  if (!std::filesystem::exists(out)) convert::convert(shared / "fixtures/hf" / model, out, convert::OutputKind::Gguf, {});
  return out;
}

// A plan with layer i on disk where `disk(i)`, the rest on the CPU in RAM.
engine::ModelOptions on_disk(std::function<bool(std::int64_t)> disk, residency::DiskWeightsOptions options = {}) {
  engine::ModelOptions o;
  o.planner = [disk](const format::ModelSource&, const model::ModelSpec& spec) {
    residency::Plan p;
    for (std::int64_t i = 0; i < spec.layers; ++i)
      p.layers.push_back({disk(i) ? residency::Tier::Disk : residency::Tier::CpuCompute, residency::Processor::Cpu});
    return p;
  };
  o.disk = std::move(options);
  return o;
}

std::vector<float> logits(engine::Model& model, const std::vector<std::int32_t>& ids, int passes = 1) {
  auto cpu = backend::make_cpu_backend(2);
  engine::Session session(model, *cpu);
  std::vector<float> out;
  for (int p = 0; p < passes; ++p) {
    session.reset();
    auto l = session.eval(ids, true);
    out.assign(l.begin(), l.end());
  }
  return out;
}

struct Case {
  std::string model;
  bool io_uring, direct;
};

class DiskTier : public ::testing::TestWithParam<Case> {};

TEST_P(DiskTier, SameLogitsAsResident) {
  AERO_REQUIRE_SHARED(shared);
  const auto& c = GetParam();
  const auto path = gguf_of(shared, c.model);
  const auto ref = HfReference::load(shared / "fixtures/hf" / c.model);
  auto resident = engine::Model::open(path);
  const auto expected = logits(*resident, ref.input_ids);
  residency::DiskWeightsOptions options{.io_uring = c.io_uring, .direct = c.direct};
  for (auto disk : std::vector<std::function<bool(std::int64_t)>>{[](std::int64_t) { return true; },
                                                                  [](std::int64_t i) { return i % 2 == 1; }}) {
    auto streamed = engine::Model::open(path, {}, on_disk(disk, options));
    ASSERT_NE(streamed->disk_weights(), nullptr);
    const auto got = logits(*streamed, ref.input_ids, 2);  // the second pass reads the ring again
    ASSERT_EQ(got.size(), expected.size());
    EXPECT_EQ(std::memcmp(got.data(), expected.data(), got.size() * sizeof(float)), 0) << "logits differ";
    const auto stats = streamed->disk_weights()->stats();
    EXPECT_GT(stats.bytes_read, 0u);
    if (!c.io_uring) EXPECT_EQ(stats.engine.rfind("threads", 0), 0u) << stats.engine;
    if (!c.direct) EXPECT_NE(stats.engine.find("page cache"), std::string::npos) << stats.engine;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DiskTier,
                         ::testing::Values(Case{"llama", true, true}, Case{"llama-mha", true, true},
                                           Case{"qwen2", true, true}, Case{"qwen3", true, true},
                                           Case{"llama", false, true}, Case{"qwen3", false, false}),
                         [](const auto& info) {
                           auto n = info.param.model + (info.param.io_uring ? "_uring" : "_threads") +
                                    (info.param.direct ? "_direct" : "_cached");
                           for (auto& ch : n) if (ch == '-') ch = '_';
                           return n;
                         });

// Several sequences in one pass read each disk layer once for all of them: the batch engine on
// the disk tier gives what it gives on the resident model, bit for bit.
TEST(DiskTierBatch, SameLogitsAsResident) {
  AERO_REQUIRE_SHARED(shared);
  const auto path = gguf_of(shared, "qwen3");
  const auto ref = HfReference::load(shared / "fixtures/hf/qwen3");
  const std::vector<std::int32_t> a(ref.input_ids.begin(), ref.input_ids.begin() + 10), b(ref.prompt_ids);
  auto run = [&](engine::Model& model) {
    auto cpu = backend::make_cpu_backend(2);
    engine::BatchSession batch(model, *cpu, {.slots = 2, .context = 64});
    const engine::BatchEntry entries[] = {{.slot = 0, .tokens = a, .logits = true}, {.slot = 1, .tokens = b, .logits = true}};
    std::vector<float> out;
    for (int step = 0; step < 2; ++step) {
      auto l = batch.step(entries);
      out.insert(out.end(), l.begin(), l.end());
    }
    return out;
  };
  auto resident = engine::Model::open(path);
  auto streamed = engine::Model::open(path, {}, on_disk([](std::int64_t) { return true; }, {.slots = 2}));
  const auto x = run(*resident), y = run(*streamed);
  ASSERT_EQ(x.size(), y.size());
  EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)), 0);
}

TEST(DiskTierSources, HfFolderToo) {
  AERO_REQUIRE_SHARED(shared);
  const auto dir = shared / "fixtures/hf/qwen2";
  const auto ref = HfReference::load(dir);
  auto resident = engine::Model::open(dir);
  auto streamed = engine::Model::open(dir, {}, on_disk([](std::int64_t) { return true; }));
  const auto a = logits(*resident, ref.input_ids), b = logits(*streamed, ref.input_ids);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
}

TEST(DiskTierFaults, TruncatedWhileRunning) {
  AERO_REQUIRE_SHARED(shared);
  ScratchDir dir;
  const auto path = dir / "model.gguf";
  std::filesystem::copy_file(gguf_of(shared, "llama"), path);
  const auto ref = HfReference::load(shared / "fixtures/hf/llama");
  // Two ring buffers for three layers: every pass reads again.
  auto model = engine::Model::open(path, {}, on_disk([](std::int64_t) { return true; }, {.slots = 2}));
  auto cpu = backend::make_cpu_backend(2);
  engine::Session session(*model, *cpu);
  session.eval(ref.input_ids);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  // The layers already in the ring were read whole before; the next reads find the change.
  try {
    for (int pass = 0; pass < 3; ++pass) {
      session.reset();
      session.eval(ref.input_ids);
    }
    FAIL() << "a truncated model kept running";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.gguf"), std::string::npos) << e.what();
  }
}

TEST(DiskTierFaults, ChangedBeforeOpenOfTheTierIsRefused) {
  AERO_REQUIRE_SHARED(shared);
  ScratchDir dir;
  const auto path = dir / "model.gguf";
  std::filesystem::copy_file(gguf_of(shared, "llama"), path);
  auto source = format::ModelSource::open(path);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) + 4096);
  EXPECT_THROW(engine::Model(std::move(source), on_disk([](std::int64_t) { return true; })), Error);
}

TEST(DiskTierRing, ReadsLayersAheadInPassOrder) {
  AERO_REQUIRE_SHARED(shared);
  const auto path = gguf_of(shared, "llama");  // 3 layers
  auto source = format::ModelSource::open(path);
  const auto spec = model::read_spec(*source);
  std::vector<std::int64_t> reads;
  residency::DiskStreamedWeights w(*source, spec, {false, false, false},
                                   {.slots = 2, .on_read = [&](std::int64_t l) { reads.push_back(l); }});
  // Opening fills the ring with the first pass's first layers.
  EXPECT_EQ(reads, (std::vector<std::int64_t>{0, 1}));
  // Releasing a layer hands its buffer to the next layer not in the ring, wrapping into the
  // next pass: 2 after 0, then 0 (next pass) after 1, then 1 after 2.
  for (std::int64_t l = 0; l < 3; ++l) {
    w.acquire(l);
    w.release(l);
  }
  EXPECT_EQ(reads, (std::vector<std::int64_t>{0, 1, 2, 0, 1}));
  for (std::int64_t l = 0; l < 3; ++l) {
    w.acquire(l);
    w.release(l);
  }
  EXPECT_EQ(reads, (std::vector<std::int64_t>{0, 1, 2, 0, 1, 2, 0, 1}));
  // A layer in use keeps its buffer; a third at once is refused with a clear error.
  w.acquire(0);
  w.acquire(1);
  EXPECT_THROW(w.acquire(2), Error);
  EXPECT_THROW(w.acquire(7), Error);
}

// --verify: an .aero file with page digests (16 KiB pages: several per layer of the fixture)
// gives the same logits with every page checked as it is read; one byte changed in a layer, the
// file's size and time kept (what the size/time check cannot see), is an error naming the page;
// a GGUF, which has no page digests, is refused.
std::filesystem::path aero_with_pages(const std::filesystem::path& shared, const std::filesystem::path& dir) {
  const auto out = dir / "llama.aero";
  convert::ConvertOptions options;
  options.write.integrity = true;
  options.write.page_size = 16 << 10;
  convert::convert(shared / "fixtures/hf/llama", out, convert::OutputKind::Aero, options);
  return out;
}

TEST(DiskTierVerify, PagesAreCheckedAsTheyAreRead) {
  AERO_REQUIRE_SHARED(shared);
  ScratchDir dir;
  const auto path = aero_with_pages(shared, dir.path());
  const auto ref = HfReference::load(shared / "fixtures/hf/llama");
  auto resident = engine::Model::open(path);
  const auto expected = logits(*resident, ref.input_ids);
  auto streamed = engine::Model::open(path, {}, on_disk([](std::int64_t i) { return i != 1; }, {.slots = 2, .verify = true}));
  const auto got = logits(*streamed, ref.input_ids, 2);
  EXPECT_EQ(got, expected);
  const auto stats = streamed->disk_weights()->stats();
  EXPECT_GT(stats.pages_verified, 4u);
  // Without a disk tier, every page once at load.
  EXPECT_NO_THROW(engine::Model::open(path, {}, {.planner = {}, .disk = {.verify = true}}));
  EXPECT_GT(residency::verify_pages(*format::ModelSource::open(path)), 4u);
}

TEST(DiskTierVerify, AChangedPageIsAnError) {
  AERO_REQUIRE_SHARED(shared);
  ScratchDir dir;
  const auto path = aero_with_pages(shared, dir.path());
  const auto ref = HfReference::load(shared / "fixtures/hf/llama");
  std::uint64_t at = 0;
  {
    auto source = format::ModelSource::open(path);
    const auto tensors = model::layer_tensors(*source, 2);
    ASSERT_FALSE(tensors.empty());
    at = source->locate(tensors.front()->data).offset + tensors.front()->data.size() / 2;
  }
  const auto when = std::filesystem::last_write_time(path);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(at));
    char byte = 0;
    f.read(&byte, 1);
    byte = static_cast<char>(byte ^ 0x5A);
    f.seekp(static_cast<std::streamoff>(at));
    f.write(&byte, 1);
  }
  std::filesystem::last_write_time(path, when);
  // Unverified, the changed weight runs (the tier sees the same size and time).
  auto unverified = engine::Model::open(path, {}, on_disk([](std::int64_t) { return true; }));
  EXPECT_NO_THROW(logits(*unverified, ref.input_ids));
  auto verified = engine::Model::open(path, {}, on_disk([](std::int64_t) { return true; }, {.verify = true}));
  try {
    logits(*verified, ref.input_ids);
    FAIL() << "a changed page was not found";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fails its PHSH digest"), std::string::npos) << e.what();
  }
  EXPECT_THROW(engine::Model::open(path, {}, {.planner = {}, .disk = {.verify = true}}), Error);
}

TEST(DiskTierVerify, ASourceWithoutPageDigestsIsRefused) {
  AERO_REQUIRE_SHARED(shared);
  const auto path = gguf_of(shared, "llama");
  try {
    engine::Model::open(path, {}, on_disk([](std::int64_t) { return true; }, {.verify = true}));
    FAIL() << "--verify of a GGUF ran";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no page digests"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace aero::test
