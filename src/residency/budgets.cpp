#include "aero/residency/budgets.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <string>

#include "aero/model/weights.h"

namespace aero::residency {
namespace {

std::optional<std::uint64_t> number(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// The value of `key` in "key value" lines (memory.stat), or of "key: value kB" (meminfo).
std::optional<std::uint64_t> keyed(std::string_view text, std::string_view key, std::uint64_t scale) {
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    std::string_view l = line;
    if (l.substr(0, key.size()) != key || l.size() == key.size() || (l[key.size()] != ' ' && l[key.size()] != ':'))
      continue;
    l.remove_prefix(key.size() + (l[key.size()] == ':' ? 1 : 0));
    if (l.size() > 3 && l.substr(l.size() - 3) == " kB") l.remove_suffix(3);
    if (auto v = number(l)) return *v * scale;
  }
  return std::nullopt;
}

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// This process's cgroup folder for `controller` (v1) or the unified one (v2, controller "").
std::optional<std::string> cgroup_dir(bool v2) {
  std::istringstream in(file_text("/proc/self/cgroup"));
  std::string line;
  while (std::getline(in, line)) {
    // "hierarchy-id:controllers:path"
    const auto a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (v2 && controllers.empty()) {
      for (const char* root : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"})
        if (std::ifstream(std::string(root) + path + "/memory.max")) return std::string(root) + path;
    }
    if (!v2 && controllers.find("memory") != std::string::npos) return "/sys/fs/cgroup/memory" + path;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::uint64_t> meminfo_available(std::string_view meminfo) { return keyed(meminfo, "MemAvailable", 1024); }

std::optional<std::uint64_t> cgroup_free(std::string_view limit, std::string_view usage, std::string_view stat) {
  const auto l = number(limit), u = number(usage);
  if (!l || !u) return std::nullopt;  // "max" (v2) or unreadable: no limit
  std::uint64_t cache = 0;
  for (const char* key : {"file", "total_cache", "cache"})
    if (auto c = keyed(stat, key, 1)) {
      cache = *c;
      break;
    }
  const std::uint64_t held = *u > cache ? *u - cache : 0;
  return *l > held ? *l - held : 0;
}

std::uint64_t with_margin(std::uint64_t available) {
  const std::uint64_t margin = std::clamp<std::uint64_t>(available / 10, 128ull << 20, 2ull << 30);
  return available > margin ? available - margin : 0;
}

std::uint64_t default_ram_budget() {
  std::uint64_t available = meminfo_available(file_text("/proc/meminfo")).value_or(0);
  for (bool v2 : {true, false}) {
    const auto dir = cgroup_dir(v2);
    if (!dir) continue;
    const auto free = v2 ? cgroup_free(file_text(*dir + "/memory.max"), file_text(*dir + "/memory.current"),
                                       file_text(*dir + "/memory.stat"))
                         : cgroup_free(file_text(*dir + "/memory.limit_in_bytes"),
                                       file_text(*dir + "/memory.usage_in_bytes"), file_text(*dir + "/memory.stat"));
    if (free && (available == 0 || *free < available)) available = *free;
  }
  return with_margin(available);
}

ModelCosts model_costs(const format::ModelSource& source, const model::ModelSpec& s, std::int64_t context,
                       backend::KvType kv_type, std::int64_t max_tokens) {
  ModelCosts c;
  const std::int64_t q_width = s.heads * s.head_dim, kv_width = s.kv_heads * s.head_dim;
  // Keys and values of every position; q8_0 rows are 34-byte blocks of 32.
  const double kv_element = kv_type == backend::KvType::F32 ? 4.0 : kv_type == backend::KvType::F16 ? 2.0 : 34.0 / 32.0;
  const auto kv_bytes = static_cast<std::uint64_t>(2.0 * static_cast<double>(kv_width) * static_cast<double>(context) * kv_element);
  // A sparse layer's token runs the router and its routed experts only.
  const std::int64_t ffn_macs = s.moe() ? s.hidden * (s.experts + 3 * s.experts_used * s.expert_ffn) : 3 * s.hidden * s.ffn;
  const double layer_flops = 2.0 * static_cast<double>(s.hidden * (2 * q_width + 2 * kv_width) + ffn_macs);
  for (std::int64_t i = 0; i < s.layers; ++i) {
    LayerCost l{.weight_bytes = 0, .kv_bytes = kv_bytes, .flops_per_token = layer_flops, .expert_bytes = 0, .experts = 0,
                .experts_used = 0};
    for (const auto* t : model::layer_tensors(source, i, s.family)) l.weight_bytes += t->data.size();
    if (s.moe()) {
      // The experts' share: every sparse tensor but the router (the first expert_tensors lists).
      const auto sparse = model::expert_tensors(source, i);
      std::uint64_t experts = 0;
      for (std::size_t k = 1; k < sparse.size(); ++k) experts += sparse[k]->data.size();
      l.experts = s.experts, l.experts_used = s.experts_used;
      l.expert_bytes = experts / static_cast<std::uint64_t>(s.experts);
    }
    c.layers.push_back(l);
  }
  const bool gguf = source.find(model::kGgufEmbedding) != nullptr;
  const auto* embedding = source.find(gguf ? model::kGgufEmbedding : model::kHfEmbedding);
  const auto* head = source.find(gguf ? model::kGgufOutput : model::kHfOutput);
  c.embedding_bytes = embedding ? embedding->data.size() : 0;
  c.output_tied = head == nullptr;
  c.output.weight_bytes = head ? head->data.size() : c.embedding_bytes;
  c.output.flops_per_token = 2.0 * static_cast<double>(s.hidden * s.vocab);
  // Session's buffers: x, xb, q, k, v, attention out, gate, up, logits per token.
  const std::int64_t per_token = s.hidden + std::max(s.hidden, q_width) + 2 * q_width + 2 * kv_width + 2 * s.ffn + s.vocab;
  c.activation_bytes = static_cast<std::uint64_t>(std::max<std::int64_t>(max_tokens, 1) * per_token) * sizeof(float);
  c.activation_tokens = std::max<std::int64_t>(max_tokens, 1);
  return c;
}

}  // namespace aero::residency
