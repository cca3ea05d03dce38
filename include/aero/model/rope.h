// Rotary position embedding facts shared by the model description and the backends.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

namespace aero::model {

// Which elements of a head rotate together. Hugging Face weights pair element i with
// i + head_dim/2 ("half split", GPT-NeoX style). llama.cpp's converter permutes the Q and K
// rows of llama-family weights so that pairs are adjacent (2i, 2i+1). Each layout is
// computed as stored; weights are never rewritten at load.
enum class RopeLayout { HalfSplit, Interleaved };

// cos and sin of every (token, pair) angle position · inv_freq, as [token][pair][cos, sin]:
// computed once per forward pass and shared by every layer's q and k.
inline std::vector<float> rope_table(std::span<const std::int32_t> positions, std::span<const double> inv_freq) {
  std::vector<float> table(positions.size() * inv_freq.size() * 2);
  std::size_t at = 0;
  for (std::int32_t pos : positions)
    for (double f : inv_freq) {
      const double angle = pos * f;  // in double: positions reach 10^5, frequencies 10^-6
      table[at++] = static_cast<float>(std::cos(angle));
      table[at++] = static_cast<float>(std::sin(angle));
    }
  return table;
}

}  // namespace aero::model
