#include "aero/hash.h"
#include "test_support.h"

namespace aero {
namespace {

std::span<const std::uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

TEST(Hash, Blake3KnownAnswers) {
  // From the BLAKE3 specification's test vectors / b3sum.
  EXPECT_EQ(to_hex(blake3({})), "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
  EXPECT_EQ(to_hex(blake3(bytes("abc"))), "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85");
}

TEST(Hash, IncrementalEqualsOneShotAcrossSimdBoundaries) {
  auto data = test::random_bytes(1 << 20, 9);
  Blake3 h;
  for (std::size_t at = 0, step = 1; at < data.size(); at += step, step = step * 2 + 1)
    h.update(std::span(data).subspan(at, std::min(step, data.size() - at)));
  EXPECT_EQ(h.finish(), blake3(data));
}

TEST(Hash, HexParsing) {
  auto d = blake3(bytes("x"));
  EXPECT_EQ(digest_from_hex(to_hex(d)), d);
  EXPECT_FALSE(digest_from_hex("abc"));
  EXPECT_FALSE(digest_from_hex(std::string(64, 'g')));
}

TEST(Hash, Sha256OfAFile) {
  test::ScratchDir dir;
  test::write_bytes(dir / "f", {'a', 'b', 'c'});
  EXPECT_EQ(sha256_file_hex(dir / "f"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace aero
