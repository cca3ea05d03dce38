// The ggml block formats on the device: for each format the dot product of one block with
// q8_1 activations of up to NT tokens (the decode kernels, matmul_gemv.cu) and the decoding
// of 32 of its weights to f32 (the prefill path's dequantization, matmul_dequant.cu). The bit
// layouts are those of src/quant/decode_scalar.cpp, whose decoders are the reference.
//
// A block is read through a reader: r.w(off) is the little-endian 32-bit word at byte `off`
// of the block (off even, off + 4 within the block), r.h(off) the 16-bit one.
// Offsets are compile-time constants once the loops below are unrolled, so a reader whose block
// place is known at compile time (SmemStaticReader) compiles to aligned 16-byte shared-memory
// loads and constant shifts.
#pragma once

#include <cstdint>
#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace aero::backend::cuda::kernels::dev {

// ---- readers ---------------------------------------------------------------------------------

__device__ __forceinline__ std::uint32_t pick(const uint4& p, int i) {
  return i == 0 ? p.x : i == 1 ? p.y : i == 2 ? p.z : p.w;
}

// A block at compile-time byte offset OFF of a 16-byte aligned shared-memory slot.
template <int OFF>
struct SmemStaticReader {
  const uint4* slot;
  __device__ __forceinline__ std::uint32_t w(int off) const {
    const int x = OFF + off;
    const std::uint32_t lo = pick(slot[x >> 4], (x >> 2) & 3);
    if ((x & 3) == 0) return lo;
    const int x2 = x + 4;
    const std::uint32_t hi = pick(slot[x2 >> 4], (x2 >> 2) & 3);
    return __funnelshift_r(lo, hi, (x & 3) * 8);
  }
  __device__ __forceinline__ std::uint32_t h(int off) const { return w(off) & 0xFFFF; }
};

// A block at a run-time (even) byte offset of shared memory: two aligned word loads and a
// funnel shift per word; consecutive words share their loads.
struct SmemDynamicReader {
  const std::uint32_t* s;
  std::uint32_t w0, sh0, w2, sh2;  // for offsets ≡ 0 and ≡ 2 (mod 4)
  __device__ __forceinline__ SmemDynamicReader(const std::uint32_t* smem, std::uint32_t base) : s(smem) {
    w0 = base >> 2;
    sh0 = (base & 3) * 8;
    w2 = (base + 2) >> 2;
    sh2 = ((base + 2) & 3) * 8;
  }
  __device__ __forceinline__ std::uint32_t w(int off) const {
    if ((off & 3) == 0) {
      const std::uint32_t i = w0 + (off >> 2);
      return __funnelshift_r(s[i], s[i + 1], sh0);
    }
    const std::uint32_t i = w2 + ((off - 2) >> 2);
    return __funnelshift_r(s[i], s[i + 1], sh2);
  }
  __device__ __forceinline__ std::uint32_t h(int off) const { return w(off) & 0xFFFF; }
};

// A block in global memory at an even address (two 16-bit loads through L1 per word).
struct GlobalReader {
  const std::uint8_t* p;
  __device__ __forceinline__ std::uint32_t w(int off) const {
    const auto* u = reinterpret_cast<const unsigned short*>(p + off);
    return static_cast<std::uint32_t>(__ldg(u)) | static_cast<std::uint32_t>(__ldg(u + 1)) << 16;
  }
  __device__ __forceinline__ std::uint32_t h(int off) const { return __ldg(reinterpret_cast<const unsigned short*>(p + off)); }
};

// ---- helpers ---------------------------------------------------------------------------------

template <int I, int N, class Fn>
__device__ __forceinline__ void static_for(Fn&& fn) {
  if constexpr (I < N) {
    fn(std::integral_constant<int, I>{});
    static_for<I + 1, N>(fn);
  }
}

__device__ __forceinline__ float f16_lo(std::uint32_t w) { return __half2float(__ushort_as_half(static_cast<unsigned short>(w & 0xFFFF))); }
__device__ __forceinline__ float f16_hi(std::uint32_t w) { return __half2float(__ushort_as_half(static_cast<unsigned short>(w >> 16))); }
__device__ __forceinline__ int dp4a(int a, int b, int c) { return __dp4a(a, b, c); }
__device__ __forceinline__ int dp4a(std::uint32_t a, int b, int c) { return __dp4a(static_cast<int>(a), b, c); }
__device__ __forceinline__ int word(const int4& v, int i) { return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w; }
// Bits 0..3 of b to bit 4 of bytes 0..3 (the fifth bit of four 5-bit codes).
__device__ __forceinline__ std::uint32_t spread4_to_bit4(std::uint32_t b) { return ((b & 0xF) * 0x02040810u) & 0x10101010u; }
// Bytes v - bias as int8 for bytes v with v + (128 - bias) < 256: no borrow between bytes.
template <std::uint32_t kBias>
__device__ __forceinline__ int bias_bytes(std::uint32_t v) {
  constexpr std::uint32_t k = (128u - kBias) * 0x01010101u;
  return static_cast<int>((v + k) ^ 0x80808080u);
}
// Element i of a small register array without a run-time index (which would put it in memory).
template <int N>
__device__ __forceinline__ std::uint32_t pick_of(const std::uint32_t (&a)[N], int i) {
  std::uint32_t v = a[0];
#pragma unroll
  for (int k = 1; k < N; ++k) v = i == k ? a[k] : v;
  return v;
}
__device__ __forceinline__ int byte_of(std::uint32_t w, int i) { return static_cast<int>((w >> (8 * i)) & 0xFF); }
__device__ __forceinline__ int sbyte_of(std::uint32_t w, int i) { return static_cast<int>(static_cast<std::int8_t>((w >> (8 * i)) & 0xFF)); }

// ---- activations -----------------------------------------------------------------------------

// q8_1 activations of n tokens: 16 int8 at a time (columns c, c + 16 ... multiples of 16) and
// the {d, d·Σq} of a 32-column block. Every lane of a warp reads the same ones (broadcast).
struct IntAct {
  const std::int8_t* q;
  const float2* ds;
  std::int64_t cols;
  int n;
  __device__ __forceinline__ int4 q16(int t, std::int64_t c) const {
    return __ldg(reinterpret_cast<const int4*>(q + t * cols + c));
  }
  __device__ __forceinline__ float2 d(int t, std::int64_t c) const { return __ldg(ds + t * (cols >> 5) + (c >> 5)); }
};

// f32 activations: E at a time from column c. VEC: 16-byte loads (rows 16-byte aligned, c a
// multiple of 4, no row end inside); otherwise element loads, zero past the row end.
template <bool VEC>
struct FloatAct {
  const float* x;
  std::int64_t cols;
  int n;
  template <int E>
  __device__ __forceinline__ void load(int t, std::int64_t c, float (&v)[E]) const {
    const float* p = x + t * cols + c;
    if constexpr (VEC) {
#pragma unroll
      for (int i = 0; i < E; i += 4) {
        const float4 f = __ldg(reinterpret_cast<const float4*>(p + i));
        v[i] = f.x, v[i + 1] = f.y, v[i + 2] = f.z, v[i + 3] = f.w;
      }
    } else {
#pragma unroll
      for (int i = 0; i < E; ++i) v[i] = c + i < cols ? __ldg(p + i) : 0.0f;
    }
  }
};

// ---- float formats: pseudo-blocks of 16 bytes -------------------------------------------------

template <int kElementBytes>
struct FloatFormat {
  static constexpr bool kInteger = false;
  static constexpr int BB = 16;                   // bytes of a pseudo-block
  static constexpr int BE = 16 / kElementBytes;   // elements of a pseudo-block
  static constexpr int B = 4;                     // pseudo-blocks per pipeline stage (64 bytes)
};

struct FF32 : FloatFormat<4> {
  __device__ __forceinline__ static void unpack(const std::uint32_t (&w)[4], float (&v)[4]) {
#pragma unroll
    for (int i = 0; i < 4; ++i) v[i] = __uint_as_float(w[i]);
  }
};
struct FF16 : FloatFormat<2> {
  __device__ __forceinline__ static void unpack(const std::uint32_t (&w)[4], float (&v)[8]) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w[i]));
      v[2 * i] = f.x, v[2 * i + 1] = f.y;
    }
  }
};
struct FBF16 : FloatFormat<2> {
  __device__ __forceinline__ static void unpack(const std::uint32_t (&w)[4], float (&v)[8]) {
#pragma unroll
    for (int i = 0; i < 4; ++i) v[2 * i] = __uint_as_float(w[i] << 16), v[2 * i + 1] = __uint_as_float(w[i] & 0xFFFF0000u);
  }
};

// One pseudo-block (columns c .. c + BE - 1) against n ≤ NT tokens of f32 activations.
template <class F, int NT, class R, class A>
__device__ __forceinline__ void float_dot(const R& r, const A& act, std::int64_t c, float (&acc)[NT]) {
  constexpr int E = F::BE;
  std::uint32_t w[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) w[i] = r.w(4 * i);
  float v[E];
  F::unpack(w, v);
  // Past the row end (only in a last partial pseudo-block) the bytes are another row's or
  // stale: keep them out of the sum even when they are NaN.
  const bool whole = c + E <= act.cols;
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    if (t < act.n) {
      float x[E];
      act.template load<E>(t, c, x);
      float s = 0.0f;
      if (whole) {
#pragma unroll
        for (int i = 0; i < E; ++i) s = fmaf(v[i], x[i], s);
      } else {
#pragma unroll
        for (int i = 0; i < E; ++i)
          if (c + i < act.cols) s = fmaf(v[i], x[i], s);
      }
      acc[t] += s;
    }
  }
}

// ---- legacy formats: 32 weights a block -------------------------------------------------------

// The 32 weights of a legacy block as two 16-weight halves in 4 words each: lo[i] are weights
// 4i..4i+3, hi[i] weights 16+4i..16+4i+3 (bytes, unsigned codes), dotted with one token's 32
// activations.
__device__ __forceinline__ int dot32(const int (&lo)[4], const int (&hi)[4], const int4& a0, const int4& a1) {
  int s = 0;
  s = dp4a(lo[0], a0.x, s), s = dp4a(lo[1], a0.y, s), s = dp4a(lo[2], a0.z, s), s = dp4a(lo[3], a0.w, s);
  s = dp4a(hi[0], a1.x, s), s = dp4a(hi[1], a1.y, s), s = dp4a(hi[2], a1.z, s), s = dp4a(hi[3], a1.w, s);
  return s;
}

// Q4_0: d f16 · qs[16] (low nibbles are weights 0..15, high nibbles 16..31), w = (q - 8)·d
struct FQ4_0 {
  static constexpr bool kInteger = true;
  static constexpr int BB = 18, BE = 32, B = 4;
  template <int NT, class R>
  __device__ __forceinline__ static void dot(const R& r, const IntAct& a, std::int64_t c, float (&acc)[NT]) {
    const float d = f16_lo(r.w(0));
    int lo[4], hi[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const std::uint32_t q = r.w(2 + 4 * i);
      lo[i] = static_cast<int>(q & 0x0F0F0F0F), hi[i] = static_cast<int>((q >> 4) & 0x0F0F0F0F);
    }
#pragma unroll
    for (int t = 0; t < NT; ++t)
      if (t < a.n) {
        const float2 ds = a.d(t, c);
        const int s = dot32(lo, hi, a.q16(t, c), a.q16(t, c + 16));
        acc[t] += d * (ds.x * static_cast<float>(s) - 8.0f * ds.y);
      }
  }
  template <class R>
  __device__ __forceinline__ static void decode32(const R& r, int, float (&y)[32]) {
    const float d = f16_lo(r.w(0));
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const std::uint32_t q = r.w(2 + 4 * i);
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        y[4 * i + b] = static_cast<float>(static_cast<int>((q >> (8 * b)) & 0xF) - 8) * d;
        y[16 + 4 * i + b] = static_cast<float>(static_cast<int>((q >> (8 * b + 4)) & 0xF) - 8) * d;
      }
    }
  }
};

// Q4_1: d f16 · m f16 · qs[16], w = q·d + m
struct FQ4_1 {
  static constexpr bool kInteger = true;
  static constexpr int BB = 20, BE = 32, B = 4;
  template <int NT, class R>
  __device__ __forceinline__ static void dot(const R& r, const IntAct& a, std::int64_t c, float (&acc)[NT]) {
    const std::uint32_t dm = r.w(0);
    const float d = f16_lo(dm), m = f16_hi(dm);
    int lo[4], hi[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const std::uint32_t q = r.w(4 + 4 * i);
      lo[i] = static_cast<int>(q & 0x0F0F0F0F), hi[i] = static_cast<int>((q >> 4) & 0x0F0F0F0F);
    }
#pragma unroll
    for (int t = 0; t < NT; ++t)
      if (t < a.n) {
        const float2 ds = a.d(t, c);
        const int s = dot32(lo, hi, a.q16(t, c), a.q16(t, c + 16));
        acc[t] += d * ds.x * static_cast<float>(s) + m * ds.y;
      }
  }
  template <class R>
  __device__ __forceinline__ static void decode32(const R& r, int, float (&y)[32]) {
    const std::uint32_t dm = r.w(0);
    const float d = f16_lo(dm), m = f16_hi(dm);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const std::uint32_t q = r.w(4 + 4 * i);
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        y[4 * i + b] = static_cast<float>((q >> (8 * b)) & 0xF) * d + m;
        y[16 + 4 * i + b] = static_cast<float>((q >> (8 * b + 4)) & 0xF) * d + m;
      }
    }
  }
};

// The 5-bit codes of Q5_0 / Q5_1: qs words at QS, the fifth bits in qh (bit j: weight j).
template <int QS, class R>
__device__ __forceinline__ void q5_codes(const R& r, std::uint32_t qh, int (&lo)[4], int (&hi)[4]) {
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const std::uint32_t q = r.w(QS + 4 * i);
    lo[i] = static_cast<int>((q & 0x0F0F0F0F) | spread4_to_bit4(qh >> (4 * i)));
    hi[i] = static_cast<int>(((q >> 4) & 0x0F0F0F0F) | spread4_to_bit4(qh >> (16 + 4 * i)));
  }
}

// Q5_0: d f16 · qh u32 · qs[16], w = (q - 16)·d
struct FQ5_0 {
  static constexpr bool kInteger = true;
  static constexpr int BB = 22, BE = 32, B = 4;
  template <int NT, class R>
  __device__ __forceinline__ static void dot(const R& r, const IntAct& a, std::int64_t c, float (&acc)[NT]) {
    const float d = f16_lo(r.w(0));
    int lo[4], hi[4];
    q5_codes<6>(r, r.w(2), lo, hi);
#pragma unroll
    for (int t = 0; t < NT; ++t)
      if (t < a.n) {
        const float2 ds = a.d(t, c);
        const int s = dot32(lo, hi, a.q16(t, c), a.q16(t, c + 16));
        acc[t] += d * (ds.x * static_cast<float>(s) - 16.0f * ds.y);
      }
  }
  template <class R>
  __device__ __forceinline__ static void decode32(const R& r, int, float (&y)[32]) {
    const float d = f16_lo(r.w(0));
    int lo[4], hi[4];
    q5_codes<6>(r, r.w(2), lo, hi);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        y[4 * i + b] = static_cast<float>(byte_of(lo[i], b) - 16) * d;
        y[16 + 4 * i + b] = static_cast<float>(byte_of(hi[i], b) - 16) * d;
      }
  }
};

// Q5_1: d f16 · m f16 · qh u32 · qs[16], w = q·d + m
struct FQ5_1 {
  static constexpr bool kInteger = true;
  static constexpr int BB = 24, BE = 32, B = 4;
  template <int NT, class R>
  __device__ __forceinline__ static void dot(const R& r, const IntAct& a, std::int64_t c, float (&acc)[NT]) {
    const std::uint32_t dm = r.w(0);
    const float d = f16_lo(dm), m = f16_hi(dm);
    int lo[4], hi[4];
    q5_codes<8>(r, r.w(4), lo, hi);
#pragma unroll
    for (int t = 0; t < NT; ++t)
      if (t < a.n) {
        const float2 ds = a.d(t, c);
        const int s = dot32(lo, hi, a.q16(t, c), a.q16(t, c + 16));
        acc[t] += d * ds.x * static_cast<float>(s) + m * ds.y;
      }
  }
  template <class R>
  __device__ __forceinline__ static void decode32(const R& r, int, float (&y)[32]) {
    const std::uint32_t dm = r.w(0);
    const float d = f16_lo(dm), m = f16_hi(dm);
    int lo[4], hi[4];
    q5_codes<8>(r, r.w(4), lo, hi);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        y[4 * i + b] = static_cast<float>(byte_of(lo[i], b)) * d + m;
        y[16 + 4 * i + b] = static_cast<float>(byte_of(hi[i], b)) * d + m;
      }
  }
};

// Q8_0: d f16 · qs[32] int8, w = q·d
struct FQ8_0 {
  static constexpr bool kInteger = true;
  static constexpr int BB = 34, BE = 32, B = 2;
  template <int NT, class R>
  __device__ __forceinline__ static void dot(const R& r, const IntAct& a, std::int64_t c, float (&acc)[NT]) {
    const float d = f16_lo(r.w(0));
    int lo[4], hi[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) lo[i] = static_cast<int>(r.w(2 + 4 * i)), hi[i] = static_cast<int>(r.w(18 + 4 * i));
#pragma unroll
    for (int t = 0; t < NT; ++t)
      if (t < a.n) {
        const float2 ds = a.d(t, c);
        const int s = dot32(lo, hi, a.q16(t, c), a.q16(t, c + 16));
        acc[t] += d * ds.x * static_cast<float>(s);
      }
  }
  template <class R>
  __device__ __forceinline__ static void decode32(const R& r, int, float (&y)[32]) {
    const float d = f16_lo(r.w(0));
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const std::uint32_t q = r.w(2 + 4 * i);
#pragma unroll
      for (int b = 0; b < 4; ++b) y[4 * i + b] = static_cast<float>(sbyte_of(q, b)) * d;
    }
  }
};

// ---- K formats: 256 weights a super-block, 8 sub-blocks of 32 (one q8_1 block each) -----------

// Sixteen codes (bytes) dotted with 16 activations, as two halves of 8 sharing nothing.
__device__ __forceinline__ int dot16(const int (&v)[4], const int4& a) {
  int s = 0;
  s = dp4a(v[0], a.x, s), s = dp4a(v[1], a.y, s), s = dp4a(v[2], a.z, s), s = dp4a(v[3], a.w, s);
  return s;
}
__device__ __forceinline__ int sum16(const int4& a) {
  int s = 0;
  s = dp4a(0x01010101, a.x, s), s = dp4a(0x01010101, a.y, s), s = dp4a(0x01010101, a.z, s), s = dp4a(0x01010101, a.w, s);
  return s;
}

// Q2_K: scales[16] (4-bit scale | 4-bit min) · qs[64] · d f16 · dmin f16. Sub-block sb (weights
// 32sb..32sb+31): half h = sb / 4, shift 2j (j = sb % 4), bytes qs[32h + l]; its two 16-weight
// parts have scale bytes 2sb and 2sb + 1; w = d·sc·q - dmin·m.
struct FQ2_K {
  static constexpr bool kInteger = true;
  static constexpr int BB = 84, BE = 256, B = 1;
  template <int NT, class R>
  __device__ __forceinline__ static void dot(const R& r, const IntAct& a, std::int64_t c, float (&acc)[NT]) {
    const std::uint32_t dm = r.w(80);
    const float d = f16_lo(dm), dmin = f16_hi(dm);
    std::uint32_t sc[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) sc[i] = r.w(4 * i);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      std::uint32_t q[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) q[i] = r.w(16 + 32 * h + 4 * i);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int sb = 4 * h + j;
        int v0[4], v1[4];
#pragma unroll
        for (int i = 0; i < 4; ++i)
          v0[i] = static_cast<int>((q[i] >> (2 * j)) & 0x03030303), v1[i] = static_cast<int>((q[4 + i] >> (2 * j)) & 0x03030303);
        const int b0 = byte_of(sc[(2 * sb) >> 2], (2 * sb) & 3), b1 = byte_of(sc[(2 * sb + 1) >> 2], (2 * sb + 1) & 3);
        const std::int64_t cs = c + 32 * sb;
#pragma unroll
        for (int t = 0; t < NT; ++t)
          if (t < a.n) {
            const int4 a0 = a.q16(t, cs), a1 = a.q16(t, cs + 16);
            const int isum = (b0 & 0xF) * dot16(v0, a0) + (b1 & 0xF) * dot16(v1, a1);
            const int msum = (b0 >> 4) * sum16(a0) + (b1 >> 4) * sum16(a1);
            acc[t] += a.d(t, cs).x * (d * static_cast<float>(isum) - dmin * static_cast<float>(msum));
          }
      }
    }
  }
  template <class R>
  __device__ __forceinline__ static void decode32(const R& r, int sb, float (&y)[32]) {
    const std::uint32_t dm = r.w(80);
    const float d = f16_lo(dm), dmin = f16_hi(dm);
    const int h = sb >> 2, j = sb & 3;
    const std::uint32_t scw = r.w(4 * (sb >> 1));
    const int b0 = byte_of(scw, (2 * sb) & 3), b1 = byte_of(scw, (2 * sb + 1) & 3);
    const float dl0 = d * static_cast<float>(b0 & 0xF), ml0 = dmin * static_cast<float>(b0 >> 4);
    const float dl1 = d * static_cast<float>(b1 & 0xF), ml1 = dmin * static_cast<float>(b1 >> 4);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const std::uint32_t q = r.w(16 + 32 * h + 4 * i);
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        const float v = static_cast<float>((q >> (8 * b + 2 * j)) & 3);
        y[4 * i + b] = i < 4 ? dl0 * v - ml0 : dl1 * v - ml1;
      }
    }
  }
};

// Q3_K's sixteen 6-bit scales (stored + 32) as four words of four scale bytes (scale i in byte
// i % 4 of word i / 4), as quant::k3_scale_words.
template <class R>
__device__ __forceinline__ void q3k_scales(const R& r, std::uint32_t (&s)[4]) {
  const std::uint32_t u0 = r.w(96), u1 = r.w(100), u2 = r.w(104);
  s[0] = (u0 & 0x0F0F0F0F) | (((u2 >> 0) & 0x03030303) << 4);
  s[1] = (u1 & 0x0F0F0F0F) | (((u2 >> 2) & 0x03030303) << 4);
  s[2] = ((u0 >> 4) & 0x0F0F0F0F) | (((u2 >> 4) & 0x03030303) << 4);
  s[3] = ((u1 >> 4) & 0x0F0F0F0F) | (((u2 >> 6) & 0x03030303) << 4);
}

// Q3_K: hmask[32] · qs[64] · scales[12] · d f16. Sub-block sb: half h = sb / 4, shift 2j, bytes
// qs[32h + l] and hmask[l] bit 4h + j (clear: subtract 4); parts' scales 2sb, 2sb + 1 (- 32).
struct FQ3_K {
  static constexpr bool kInteger = true;
  static constexpr int BB = 110, BE = 256, B = 1;
  template <int NT, class R>
  __device__ __forceinline__ static void dot(const R& r, const IntAct& a, std::int64_t c, float (&acc)[NT]) {
    const float d = f16_lo(r.h(108));
    std::uint32_t sc[4];
    q3k_scales(r, sc);
    std::uint32_t hm[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) hm[i] = r.w(4 * i);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      std::uint32_t q[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) q[i] = r.w(32 + 32 * h + 4 * i);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int sb = 4 * h + j;
        int v0[4], v1[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          v0[i] = bias_bytes<4>(((q[i] >> (2 * j)) & 0x03030303) | (((hm[i] >> (4 * h + j)) & 0x01010101) << 2));
          v1[i] = bias_bytes<4>(((q[4 + i] >> (2 * j)) & 0x03030303) | (((hm[4 + i] >> (4 * h + j)) & 0x01010101) << 2));
        }
        const int s0 = byte_of(sc[(2 * sb) >> 2], (2 * sb) & 3) - 32, s1 = byte_of(sc[(2 * sb + 1) >> 2], (2 * sb + 1) & 3) - 32;
        const std::int64_t cs = c + 32 * sb;
#pragma unroll
        for (int t = 0; t < NT; ++t)
          if (t < a.n) {
            const int isum = s0 * dot16(v0, a.q16(t, cs)) + s1 * dot16(v1, a.q16(t, cs + 16));
            acc[t] += d * a.d(t, cs).x * static_cast<float>(isum);
          }
      }
    }
  }
  template <class R>
  __device__ __forceinline__ static void decode32(const R& r, int sb, float (&y)[32]) {
    const float d = f16_lo(r.h(108));
    std::uint32_t sc[4];
    q3k_scales(r, sc);
    const int h = sb >> 2, j = sb & 3;
    const float dl0 = d * static_cast<float>(byte_of(pick_of(sc, (2 * sb) >> 2), (2 * sb) & 3) - 32);
    const float dl1 = d * static_cast<float>(byte_of(pick_of(sc, (2 * sb + 1) >> 2), (2 * sb + 1) & 3) - 32);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const std::uint32_t q = r.w(32 + 32 * h + 4 * i), hm = r.w(4 * i);
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        const int v = static_cast<int>((q >> (8 * b + 2 * j)) & 3) - (((hm >> (8 * b + 4 * h + j)) & 1) ? 0 : 4);
        y[4 * i + b] = (i < 4 ? dl0 : dl1) * static_cast<float>(v);
      }
    }
  }
};

// The eight 6-bit scales and mins of Q4_K / Q5_K (scale j in byte j % 4 of sc[j / 4]), from the
// 12 bytes at offset 4, as quant::k4_scales_mins.
template <class R>
__device__ __forceinline__ void k4_scales(const R& r, std::uint32_t (&sc)[2], std::uint32_t (&mn)[2]) {
  const std::uint32_t u0 = r.w(4), u1 = r.w(8), u2 = r.w(12);
  sc[0] = u0 & 0x3f3f3f3f;
  sc[1] = (u2 & 0x0F0F0F0F) | (((u0 >> 6) & 0x03030303) << 4);
  mn[0] = u1 & 0x3f3f3f3f;
  mn[1] = ((u2 >> 4) & 0x0F0F0F0F) | (((u1 >> 6) & 0x03030303) << 4);
}

// Q4_K (QH = 0) and Q5_K (fifth bits at QH = 16): d f16 · dmin f16 · scales[12] · [qh[32]] ·
// qs[128] at QS. Sub-blocks 2p and 2p + 1 are the low and high nibbles of qs[32p .. 32p + 31]
// (fifth bits: qh[l] bits 2p and 2p + 1); w = d·sc·q - dmin·m.
template <int QH, int QS, int kBytes>
struct KQuant45 {
  static constexpr bool kInteger = true;
  static constexpr int BB = kBytes, BE = 256, B = 1;
  template <int NT, class R>
  __device__ __forceinline__ static void dot(const R& r, const IntAct& a, std::int64_t c, float (&acc)[NT]) {
    const std::uint32_t dm = r.w(0);
    const float d = f16_lo(dm), dmin = f16_hi(dm);
    std::uint32_t sc[2], mn[2];
    k4_scales(r, sc, mn);
    std::uint32_t qh[8];
    if constexpr (QH > 0) {
#pragma unroll
      for (int i = 0; i < 8; ++i) qh[i] = r.w(QH + 4 * i);
    }
#pragma unroll
    for (int p = 0; p < 4; ++p) {
      int lo0[4], lo1[4], hi0[4], hi1[4];
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const std::uint32_t q = r.w(QS + 32 * p + 4 * i);
        std::uint32_t l = q & 0x0F0F0F0F, h = (q >> 4) & 0x0F0F0F0F;
        if constexpr (QH > 0) {
          l |= ((qh[i] >> (2 * p)) & 0x01010101) << 4;
          h |= ((qh[i] >> (2 * p + 1)) & 0x01010101) << 4;
        }
        (i < 4 ? lo0[i & 3] : lo1[i & 3]) = static_cast<int>(l);
        (i < 4 ? hi0[i & 3] : hi1[i & 3]) = static_cast<int>(h);
      }
      const float dl = d * static_cast<float>(byte_of(sc[p >> 1], 2 * (p & 1)));
      const float dh = d * static_cast<float>(byte_of(sc[p >> 1], 2 * (p & 1) + 1));
      const float ml = dmin * static_cast<float>(byte_of(mn[p >> 1], 2 * (p & 1)));
      const float mh = dmin * static_cast<float>(byte_of(mn[p >> 1], 2 * (p & 1) + 1));
      const std::int64_t cl = c + 64 * p, ch = cl + 32;
#pragma unroll
      for (int t = 0; t < NT; ++t)
        if (t < a.n) {
          const float2 dsl = a.d(t, cl), dsh = a.d(t, ch);
          const int sl = dot16(lo0, a.q16(t, cl)) + dot16(lo1, a.q16(t, cl + 16));
          const int sh = dot16(hi0, a.q16(t, ch)) + dot16(hi1, a.q16(t, ch + 16));
          acc[t] += dl * dsl.x * static_cast<float>(sl) - ml * dsl.y + dh * dsh.x * static_cast<float>(sh) - mh * dsh.y;
        }
    }
  }
  template <class R>
  __device__ __forceinline__ static void decode32(const R& r, int sb, float (&y)[32]) {
    const std::uint32_t dm = r.w(0);
    const float d = f16_lo(dm), dmin = f16_hi(dm);
    std::uint32_t sc[2], mn[2];
    k4_scales(r, sc, mn);
    const float dl = d * static_cast<float>(byte_of(pick_of(sc, sb >> 2), sb & 3));
    const float ml = dmin * static_cast<float>(byte_of(pick_of(mn, sb >> 2), sb & 3));
    const int p = sb >> 1, shift = 4 * (sb & 1);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const std::uint32_t q = r.w(QS + 32 * p + 4 * i);
      std::uint32_t h = 0;
      if constexpr (QH > 0) h = r.w(QH + 4 * i);
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        int v = static_cast<int>((q >> (8 * b + shift)) & 0xF);
        if constexpr (QH > 0) v |= static_cast<int>(((h >> (8 * b + sb)) & 1) << 4);
        y[4 * i + b] = dl * static_cast<float>(v) - ml;
      }
    }
  }
};
using FQ4_K = KQuant45<0, 16, 144>;
using FQ5_K = KQuant45<16, 48, 176>;

// Q6_K: ql[128] · qh[64] · scales[16] int8 · d f16. Half h (weights 128h..): sub-block k of it
// takes the low (k = 0, 1) or high (k = 2, 3) nibbles of ql[64h + 32(k & 1) + l] and bits 2k,
// 2k + 1 of qh[32h + l]; its 16-weight parts' scales are sc[8h + 2k], sc[8h + 2k + 1];
// w = d·sc·(q - 32).
struct FQ6_K {
  static constexpr bool kInteger = true;
  static constexpr int BB = 210, BE = 256, B = 1;
  template <int NT, class R>
  __device__ __forceinline__ static void dot(const R& r, const IntAct& a, std::int64_t c, float (&acc)[NT]) {
    const float d = f16_lo(r.h(208));
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const std::uint32_t sw0 = r.w(192 + 8 * h), sw1 = r.w(196 + 8 * h);
      std::uint32_t qh[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) qh[i] = r.w(128 + 32 * h + 4 * i);
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        int v0[4], v1[4];
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          const std::uint32_t ql = r.w(64 * h + 32 * (k & 1) + 4 * i);
          const std::uint32_t nib = (k < 2 ? ql : ql >> 4) & 0x0F0F0F0F;
          const int v = bias_bytes<32>(nib | (((qh[i] >> (2 * k)) & 0x03030303) << 4));
          (i < 4 ? v0[i & 3] : v1[i & 3]) = v;
        }
        const std::uint32_t sw = k < 2 ? sw0 : sw1;
        const int s0 = sbyte_of(sw, (2 * k) & 3), s1 = sbyte_of(sw, (2 * k + 1) & 3);
        const std::int64_t cs = c + 128 * h + 32 * k;
#pragma unroll
        for (int t = 0; t < NT; ++t)
          if (t < a.n) {
            const int isum = s0 * dot16(v0, a.q16(t, cs)) + s1 * dot16(v1, a.q16(t, cs + 16));
            acc[t] += d * a.d(t, cs).x * static_cast<float>(isum);
          }
      }
    }
  }
  template <class R>
  __device__ __forceinline__ static void decode32(const R& r, int sb, float (&y)[32]) {
    const float d = f16_lo(r.h(208));
    const int h = sb >> 2, k = sb & 3;
    const std::uint32_t sw = r.w(192 + 8 * h + 4 * (k >> 1));
    const float d0 = d * static_cast<float>(sbyte_of(sw, (2 * k) & 3));
    const float d1 = d * static_cast<float>(sbyte_of(sw, (2 * k + 1) & 3));
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const std::uint32_t ql = r.w(64 * h + 32 * (k & 1) + 4 * i), qh = r.w(128 + 32 * h + 4 * i);
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        const int v = static_cast<int>(((ql >> (8 * b + 4 * (k >> 1))) & 0xF) | (((qh >> (8 * b + 2 * k)) & 3) << 4)) - 32;
        y[4 * i + b] = (i < 4 ? d0 : d1) * static_cast<float>(v);
      }
    }
  }
};

}  // namespace aero::backend::cuda::kernels::dev
