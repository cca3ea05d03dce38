#include <zstd.h>

#include "aero/error.h"
#include "aero/format/aero.h"

namespace aero::format {

std::vector<std::uint8_t> zstd_decompress(std::span<const std::uint8_t> frame, std::uint64_t expected_size,
                                          std::string_view what) {
  if (expected_size > kMaxMetadataChunk)
    fail("{}: uncompressed size {} exceeds the {}-byte cap", what, expected_size, kMaxMetadataChunk);
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!ctx) fail("{}: out of memory for zstd", what);
  // Window limit: a frame may not demand a larger history buffer than its declared output.
  ZSTD_DCtx_setParameter(ctx.get(), ZSTD_d_windowLogMax, 31);

  // Grow the output with what the frame really yields instead of trusting any size field,
  // and stop as soon as it passes expected_size: a bomb costs at most expected_size + 128 KiB.
  std::vector<std::uint8_t> out;
  out.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(expected_size, 1u << 20)));
  ZSTD_inBuffer in{frame.data(), frame.size(), 0};
  std::vector<std::uint8_t> block(ZSTD_DStreamOutSize());
  std::size_t remaining_hint = 1;
  while (true) {
    ZSTD_outBuffer piece{block.data(), block.size(), 0};
    remaining_hint = ZSTD_decompressStream(ctx.get(), &piece, &in);
    if (ZSTD_isError(remaining_hint)) fail("{}: corrupt zstd data ({})", what, ZSTD_getErrorName(remaining_hint));
    if (out.size() + piece.pos > expected_size)
      fail("{}: decompresses to more than its declared {} bytes", what, expected_size);
    out.insert(out.end(), block.data(), block.data() + piece.pos);
    if (remaining_hint == 0) break;                       // frame complete
    if (in.pos == in.size && piece.pos < piece.size) break;  // input exhausted mid-frame
  }
  if (remaining_hint != 0) fail("{}: truncated zstd frame", what);
  if (in.pos != in.size) fail("{}: trailing bytes after the zstd frame", what);
  if (out.size() != expected_size)
    fail("{}: decompresses to {} bytes, declared {}", what, out.size(), expected_size);
  return out;
}

}  // namespace aero::format
