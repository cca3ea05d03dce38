#include "aero/error.h"
#include "aero/json.h"
#include "test_support.h"

namespace aero {
namespace {

std::span<const std::uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

TEST(Json, MsgpackRoundTripKeepsKeyOrderAndBinary) {
  Json j = Json::object();
  j["zeta"] = 1;
  j["alpha"] = Json::binary({1, 2, 3});
  j["list"] = {1, -2, 300000, "s"};
  std::string packed = to_msgpack(j);
  Json back = parse_msgpack(bytes(packed), "test");
  EXPECT_EQ(back, j);
  EXPECT_EQ(back.begin().key(), "zeta");
  // Python's msgpack.packb({"a": 1}) is 81 a1 61 01: the encodings agree.
  EXPECT_EQ(to_msgpack(Json{{"a", 1}}), std::string("\x81\xa1" "a\x01", 4));
}

TEST(Json, RejectsDeepNestingTrailingBytesAndTruncation) {
  EXPECT_THROW(parse_msgpack(bytes(std::string(kMaxMetadataDepth + 1, '\x91') + '\x01'), "t"), Error);
  EXPECT_NO_THROW(parse_msgpack(bytes(std::string(kMaxMetadataDepth, '\x91') + '\x01'), "t"));
  EXPECT_THROW(parse_msgpack(bytes("\x01\x02"), "t"), Error);
  EXPECT_THROW(parse_msgpack(bytes("\x92\x01"), "t"), Error);
  EXPECT_THROW(parse_json(std::string(200, '[') + std::string(200, ']'), "t"), Error);
}

TEST(Json, ZeroPaddedPayloadsParseButOtherTrailersDoNot) {
  std::string packed = to_msgpack(Json{{"a", 1}});
  EXPECT_EQ(parse_msgpack(bytes(packed + std::string(10, '\0')), "t", true)["a"], 1);
  EXPECT_THROW(parse_msgpack(bytes(packed + "\x05"), "t", true), Error);
}

TEST(Json, SortedCompactJsonMatchesPythonsDumps) {
  // json.dumps({"b": 1, "a": "é"}, separators=(",", ":"), sort_keys=True)
  Json j = Json::object();
  j["b"] = 1;
  j["a"] = "\xc3\xa9";
  EXPECT_EQ(to_sorted_compact_json(j), R"({"a":"\u00e9","b":1})");
}

}  // namespace
}  // namespace aero
