// What the planner works with besides the model: memory budgets (what this machine, or its
// cgroup, has free) and the sizes and work of a real model's layers.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "aero/backend/backend.h"
#include "aero/format/model_source.h"
#include "aero/model/spec.h"
#include "aero/residency/plan.h"

namespace aero::residency {

// Host memory free for a model: /proc/meminfo's MemAvailable, or the cgroup's limit less what
// it holds apart from the page cache (v2 memory.max / v1 memory.limit_in_bytes) when that is
// lower, minus a margin (a tenth, between 128 MiB and 2 GiB) for everything else the process does.
std::uint64_t default_ram_budget();

// The pieces, separately testable: MemAvailable from /proc/meminfo text; a cgroup's free
// memory from its limit, usage and memory.stat text (v2 "file", v1 "total_cache" or "cache").
std::optional<std::uint64_t> meminfo_available(std::string_view meminfo);
std::optional<std::uint64_t> cgroup_free(std::string_view limit, std::string_view usage, std::string_view stat);
std::uint64_t with_margin(std::uint64_t available);

// The costs of a model's layers as its source stores them: every layer tensor's bytes, the
// KV cache at `context` tokens of `kv_type`, the multiply-adds of its matrices, the output
// head and embedding, and activations for passes of up to `max_tokens` tokens.
ModelCosts model_costs(const format::ModelSource& source, const model::ModelSpec& spec, std::int64_t context,
                       backend::KvType kv_type, std::int64_t max_tokens);

}  // namespace aero::residency
