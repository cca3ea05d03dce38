// Malformed files: every one gives an aero::Error naming the problem, never a crash, hang or
// unbounded allocation. Files are assembled here by a raw builder that follows the spec's
// layout rules, so each test can break exactly one of them.
#include <cstring>

#include <zstd.h>

#include "aero/error.h"
#include "aero/format/aero_model.h"
#include "aero/format/aero_validate.h"
#include "aero/format/aero_writer.h"
#include "aero/hash.h"
#include "test_support.h"

namespace aero::format {
namespace {

using test::ScratchDir;

struct RawChunk {
  std::string fourcc, name;
  std::uint32_t flags = 0;
  std::string stored;
  std::uint64_t ulen = 0;  // 0: stored.size()
  std::optional<Digest> hash;  // default: BLAKE3 of `raw` (or of stored when raw is empty)
  std::string raw;              // uncompressed payload, for the default hash
};

template <class T>
void put(std::vector<std::uint8_t>& b, std::size_t at, T v) {
  if (b.size() < at + sizeof v) b.resize(at + sizeof v);
  std::memcpy(b.data() + at, &v, sizeof v);
}

std::vector<std::uint8_t> assemble(const std::vector<RawChunk>& chunks) {
  std::string strings;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> refs;
  for (const auto& c : chunks) {
    refs.emplace_back(static_cast<std::uint32_t>(strings.size()), static_cast<std::uint32_t>(c.name.size()));
    strings += c.name + '\0';
  }
  strings.resize((strings.size() + 7) / 8 * 8, '\0');
  const std::uint64_t toc_len = 16 + 80 * chunks.size();
  const std::uint64_t st_off = (96 + toc_len + 7) / 8 * 8;
  std::uint64_t cursor = (st_off + strings.size() + 15) / 16 * 16;
  std::vector<std::uint8_t> b(cursor, 0);
  std::memcpy(b.data(), "AERO", 4);
  put<std::uint16_t>(b, 4, 0);
  put<std::uint16_t>(b, 6, 1);
  put<std::uint32_t>(b, 8, 96);
  put<std::uint64_t>(b, 12, 96);
  put<std::uint64_t>(b, 20, toc_len);
  put<std::uint64_t>(b, 28, st_off);
  put<std::uint64_t>(b, 36, strings.size());
  put<std::uint32_t>(b, 96, static_cast<std::uint32_t>(chunks.size()));
  std::memcpy(b.data() + st_off, strings.data(), strings.size());
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    const auto& c = chunks[i];
    cursor = (cursor + 15) / 16 * 16;
    std::size_t e = 96 + 16 + 80 * i;
    std::memcpy(b.data() + e, c.fourcc.data(), 4);
    put<std::uint32_t>(b, e + 4, c.flags);
    put<std::uint64_t>(b, e + 8, cursor);
    put<std::uint64_t>(b, e + 16, c.stored.size());
    put<std::uint64_t>(b, e + 24, c.ulen ? c.ulen : c.stored.size());
    put<std::uint32_t>(b, e + 32, refs[i].first);
    put<std::uint32_t>(b, e + 36, refs[i].second);
    const std::string& hashed = c.raw.empty() ? c.stored : c.raw;
    Digest h = c.hash ? *c.hash : blake3({reinterpret_cast<const std::uint8_t*>(hashed.data()), hashed.size()});
    std::memcpy(b.data() + e + 48, h.data(), 32);
    b.resize(cursor);
    b.insert(b.end(), c.stored.begin(), c.stored.end());
    cursor += c.stored.size();
  }
  return b;
}

std::string compress(const std::string& raw) {
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), raw.data(), raw.size(), 3));
  return out;
}

std::string tidx_of(const Json& tensors) { return to_msgpack(Json{{"tensors", tensors}}); }

RawChunk tidx_chunk(const std::string& raw) {
  return {"TIDX", "tensors", chunk_flag::kZstd | chunk_flag::kIndex, compress(raw), raw.size(), std::nullopt, raw};
}

Json f32_tensor(const std::string& name, std::uint64_t rows, std::uint64_t off) {
  return Json{{"name", name}, {"dtype", 1}, {"shape", {rows, 4}}, {"shard_id", 0}, {"data_off", off}, {"data_len", rows * 16}, {"flags", 0}};
}

// A well-formed file: meta, TIDX with two tensors, one 64-byte shard.
std::vector<RawChunk> good_chunks() {
  return {{"MJSN", "meta.json", 0, R"({"architecture":"llama","model_name":"t"})"},
          tidx_chunk(tidx_of(Json::array({f32_tensor("a", 2, 0), f32_tensor("b", 2, 32)}))),
          {"WTSH", "weights.shard0", chunk_flag::kMmapCritical, std::string(64, '\x01')}};
}

// Writes `bytes` and expects opening (and validating) to fail with a message containing `needle`.
void expect_rejected(const std::vector<std::uint8_t>& bytes, const std::string& needle) {
  ScratchDir dir;
  test::write_bytes(dir / "bad.aero", bytes);
  try {
    AeroModel::open(dir / "bad.aero");
    ADD_FAILURE() << "opened without error; expected: " << needle;
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find(needle), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "error is not one line: " << message;
  }
  auto report = validate(dir / "bad.aero", ValidationLevel::Full, 1);
  EXPECT_FALSE(report.ok());
}

TEST(AeroBadInput, TheGoodBaselineOpens) {
  ScratchDir dir;
  test::write_bytes(dir / "ok.aero", assemble(good_chunks()));
  auto model = AeroModel::open(dir / "ok.aero");
  EXPECT_EQ(model.tensors().size(), 2u);
  EXPECT_TRUE(validate(dir / "ok.aero", ValidationLevel::Full, 1).ok());
}

TEST(AeroBadInput, BadMagic) {
  auto b = assemble(good_chunks());
  b[0] = 'G';
  expect_rejected(b, "bad magic");
}

TEST(AeroBadInput, WrongVersionAndHeaderSize) {
  auto b = assemble(good_chunks());
  put<std::uint16_t>(b, 6, 2);
  expect_rejected(b, "unsupported AERO version 0.2");
  b = assemble(good_chunks());
  put<std::uint32_t>(b, 8, 128);
  expect_rejected(b, "header_size");
}

TEST(AeroBadInput, TruncatedAnywhere) {
  auto b = assemble(good_chunks());
  expect_rejected(std::vector<std::uint8_t>(b.begin(), b.begin() + 50), "truncated");
  expect_rejected(std::vector<std::uint8_t>(b.begin(), b.begin() + 150), "truncated");
  expect_rejected(std::vector<std::uint8_t>(b.begin(), b.end() - 1), "truncated");
  expect_rejected({}, "truncated");
}

TEST(AeroBadInput, TocPastEndOfFile) {
  auto b = assemble(good_chunks());
  put<std::uint64_t>(b, 12, b.size() + 100);
  expect_rejected(b, "outside the file");
}

TEST(AeroBadInput, ChunkPastEndOfFile) {
  auto b = assemble(good_chunks());
  put<std::uint64_t>(b, 96 + 16 + 80 * 2 + 16, 1u << 30);  // WTSH length
  put<std::uint64_t>(b, 96 + 16 + 80 * 2 + 24, 1u << 30);
  expect_rejected(b, "runs past the end");
}

TEST(AeroBadInput, OverlappingChunks) {
  auto b = assemble(good_chunks());
  std::uint64_t tidx_offset;
  std::memcpy(&tidx_offset, b.data() + 96 + 16 + 80 + 8, 8);
  put<std::uint64_t>(b, 96 + 16 + 80 * 2 + 8, tidx_offset + 4);  // WTSH starts inside TIDX
  expect_rejected(b, "overlaps");
}

TEST(AeroBadInput, EntryCountOverTheCap) {
  auto b = assemble(good_chunks());
  put<std::uint32_t>(b, 96, 1'000'001);
  expect_rejected(b, "exceeds the cap");
}

TEST(AeroBadInput, StringTableOverTheCap) {
  auto b = assemble(good_chunks());
  put<std::uint64_t>(b, 36, (512ull << 20) + 8);
  expect_rejected(b, "string table");
}

TEST(AeroBadInput, ZstdBombIsStoppedAtItsDeclaredSize) {
  // 64 MiB of zeros compress to a few KiB; the TOC claims 1 KiB.
  std::string raw(64 << 20, '\0');
  auto chunks = good_chunks();
  chunks[1] = {"TIDX", "tensors", chunk_flag::kZstd | chunk_flag::kIndex, compress(raw), 1024, Digest{}, "x"};
  expect_rejected(assemble(chunks), "more than its declared");
  // And a ulen over the 2 GiB metadata cap is refused before any decompression.
  chunks[1].ulen = (2ull << 30) + 1;
  expect_rejected(assemble(chunks), "cap");
}

TEST(AeroBadInput, CorruptZstd) {
  auto chunks = good_chunks();
  chunks[1].stored[chunks[1].stored.size() / 2] ^= 0x55;
  expect_rejected(assemble(chunks), "tensor");
}

TEST(AeroBadInput, MalformedMsgpack) {
  auto chunks = good_chunks();
  std::string raw = "\x81\xa7tensors\xdd\xff\xff\xff\xff";  // array32 of 4 billion entries, no content
  chunks[1] = tidx_chunk(raw);
  expect_rejected(assemble(chunks), "malformed MessagePack");
  chunks[1] = tidx_chunk(std::string(100000, '\x91'));  // nested arrays 100k deep
  expect_rejected(assemble(chunks), "nesting");
}

TEST(AeroBadInput, MetadataHashMismatch) {
  auto chunks = good_chunks();
  chunks[1].hash = Digest{};  // not the first MJSN: an all-zero hash is no excuse here
  chunks[1].hash->at(0) = 1;
  expect_rejected(assemble(chunks), "BLAKE3");
}

TEST(AeroBadInput, TensorRangeOutsideItsShard) {
  auto chunks = good_chunks();
  chunks[1] = tidx_chunk(tidx_of(Json::array({f32_tensor("a", 2, 0), f32_tensor("b", 2, 40)})));
  expect_rejected(assemble(chunks), "outside shard");
}

TEST(AeroBadInput, TensorInAMissingShard) {
  auto chunks = good_chunks();
  Json t = f32_tensor("a", 2, 0);
  t["shard_id"] = 7;
  chunks[1] = tidx_chunk(tidx_of(Json::array({t})));
  expect_rejected(assemble(chunks), "shard 7");
}

TEST(AeroBadInput, DataLenDisagreesWithShape) {
  auto chunks = good_chunks();
  Json t = f32_tensor("a", 2, 0);
  t["data_len"] = 31;
  chunks[1] = tidx_chunk(tidx_of(Json::array({t})));
  expect_rejected(assemble(chunks), "does not match shape");
}

TEST(AeroBadInput, UnknownDtypeAndQuantType) {
  auto chunks = good_chunks();
  Json t = f32_tensor("a", 2, 0);
  t["dtype"] = 77;
  chunks[1] = tidx_chunk(tidx_of(Json::array({t})));
  expect_rejected(assemble(chunks), "unknown dtype 77");
  t["dtype"] = 0x8000;
  t["quant_params"] = Json{{"ggml_type", 31}};
  chunks[1] = tidx_chunk(tidx_of(Json::array({t})));
  expect_rejected(assemble(chunks), "unknown quant type 31");
}

TEST(AeroBadInput, DuplicateTensorNames) {
  auto chunks = good_chunks();
  chunks[1] = tidx_chunk(tidx_of(Json::array({f32_tensor("a", 2, 0), f32_tensor("a", 2, 32)})));
  expect_rejected(assemble(chunks), "appears twice");
}

TEST(AeroBadInput, FlippedWeightByteIsCaughtByFullValidation) {
  ScratchDir dir;
  auto b = assemble(good_chunks());
  b[b.size() - 10] ^= 0x80;
  test::write_bytes(dir / "flip.aero", b);
  EXPECT_NO_THROW(AeroModel::open(dir / "flip.aero"));  // weights are not hashed on open
  EXPECT_TRUE(validate(dir / "flip.aero", ValidationLevel::Standard, 1).ok());
  auto report = validate(dir / "flip.aero", ValidationLevel::Full, 1);
  ASSERT_EQ(report.errors.size(), 1u);
  EXPECT_NE(report.errors[0].find("weight data corrupt"), std::string::npos);
}

TEST(AeroBadInput, FlippedWeightByteIsLocatedByItsPage) {
  ScratchDir dir;
  std::vector<std::uint8_t> weights(5000, 3);
  TensorWrite t{"w", DType::U8, -1, std::nullopt, {5000}, 5000, [&](ByteSink& s) { s.write(weights); }};
  WriteOptions options;
  options.integrity = true;
  options.page_size = 1000;
  write_aero(dir / "m.aero", {"m", "llama"}, {t}, options);
  auto b = test::read_bytes(dir / "m.aero");
  const std::uint64_t shard_offset = AeroModel::open(dir / "m.aero").index().find_chunk("WTSH", "")->offset;
  b[shard_offset + 2500] ^= 1;
  test::write_bytes(dir / "m.aero", b);
  auto report = validate(dir / "m.aero", ValidationLevel::Full, 1);
  ASSERT_EQ(report.errors.size(), 2u);
  EXPECT_NE(report.errors[1].find("first at byte 2000"), std::string::npos) << report.errors[1];
}

TEST(AeroBadInput, AlteredControlPlaneFailsTheIhshCheck) {
  ScratchDir dir;
  std::vector<std::uint8_t> weights(100, 3);
  TensorWrite t{"w", DType::U8, -1, std::nullopt, {100}, 100, [&](ByteSink& s) { s.write(weights); }};
  WriteOptions options;
  options.integrity = true;
  write_aero(dir / "m.aero", {"m", "llama"}, {t}, options);
  EXPECT_TRUE(validate(dir / "m.aero", ValidationLevel::Control, 1).ok());
  auto b = test::read_bytes(dir / "m.aero");
  b[60] ^= 1;  // inside the UUID: harmless to a reader, but not the bytes that were signed off
  test::write_bytes(dir / "m.aero", b);
  auto report = validate(dir / "m.aero", ValidationLevel::Control, 1);
  ASSERT_EQ(report.errors.size(), 1u);
  EXPECT_NE(report.errors[0].find("control-plane digest mismatch"), std::string::npos);
}

TEST(AeroBadInput, ControlCheckNeedsAnIhsh) {
  ScratchDir dir;
  test::write_bytes(dir / "ok.aero", assemble(good_chunks()));
  EXPECT_FALSE(validate(dir / "ok.aero", ValidationLevel::Control, 1).ok());
}

TEST(AeroBadInput, UnknownChunksFlagsAndKeysAreIgnored) {
  auto chunks = good_chunks();
  chunks.push_back({"ZZZZ", "future.thing", 0x8 | 0x100, "whatever"});
  chunks[0].flags |= 0x4000;
  Json t = f32_tensor("a", 2, 0);
  t["some_future_key"] = Json{{"x", 1}};
  chunks[1] = tidx_chunk(tidx_of(Json::array({t})));
  ScratchDir dir;
  test::write_bytes(dir / "f.aero", assemble(chunks));
  auto model = AeroModel::open(dir / "f.aero");
  EXPECT_EQ(model.tensors().size(), 1u);
  EXPECT_TRUE(validate(dir / "f.aero", ValidationLevel::Full, 1).ok());
}

}  // namespace
}  // namespace aero::format
