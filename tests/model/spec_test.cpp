// The work a forward pass does, as aero bench reports it against the machine's f32 peak.
#include <gtest/gtest.h>

#include "aero/model/spec.h"

namespace aero::model {
namespace {

TEST(Spec, ForwardMacsCountEveryMatrixAndCausalAttention) {
  ModelSpec s;
  s.vocab = 10, s.hidden = 8, s.layers = 3, s.heads = 2, s.kv_heads = 1, s.head_dim = 4, s.ffn = 16;
  // Per token and layer: q 8·8, k and v 8·4 each, out 8·8, gate, up and down 8·16 each = 576;
  // three layers: 1728, three tokens: 5184. The 8 × 10 head for the last token: 80. Attention:
  // token t (0..2) scores t + 1 keys and sums as many values, 4 multiply-adds each:
  // (1 + 2 + 3)·2·4 = 48 per head and layer, 2 heads, 3 layers: 288.
  EXPECT_EQ(s.forward_macs(1), 1728 + 80 + 3 * 2 * 2 * 4);
  EXPECT_EQ(s.forward_macs(3), 5184 + 80 + 288);
}

TEST(Spec, ForwardMacsOfTinyLlamaShape) {
  ModelSpec s;
  s.vocab = 32000, s.hidden = 2048, s.layers = 22, s.heads = 32, s.kv_heads = 4, s.head_dim = 64, s.ffn = 5632;
  // 1,034,420,224 weights in the matrices (TinyLlama-1.1B without its embedding), and one
  // position of attention: 22 layers · 32 heads · 64 · 2.
  EXPECT_EQ(s.forward_macs(1), 1034420224 + 22 * 32 * 64 * 2);
}

}  // namespace
}  // namespace aero::model
