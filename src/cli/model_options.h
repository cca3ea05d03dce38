// Flags shared by the commands that run a model (run, chat, logits, bench): which model, which
// metadata, which device, how many threads, how long a context, which KV cache type; and for
// run, chat and bench the memory budgets the layers are placed within (cli/placement.h).
#pragma once

#include <memory>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "aero/backend/backend.h"
#include "aero/engine/sampler.h"
#include "aero/engine/placement.h"
#include "aero/engine/session.h"
#include "aero/error.h"
#include "aero/format/model_source.h"

namespace aero::cli {

struct ModelOptions {
  std::string model;
  std::string config;
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::int64_t context = 0;
  std::string kv_type = "f16";
  std::string device = "auto";
  std::string gpu_mem, ram;  // budgets as typed ("4GiB"); empty: what the device has free
  bool show_plan = false;
  bool verify = false;

  void add_to(CLI::App& cmd) {
    cmd.add_option("model", model,
                   "model: .aero, AEROSET folder, .gguf, .safetensors, HF folder, hf:ORG/NAME or ollama:NAME[:TAG]")
        ->required();
    cmd.add_option("--config", config, "HF folder or GGUF supplying metadata the model file lacks");
    cmd.add_option("--device", device, "auto (a CUDA GPU when there is one, else the CPU), cpu, cuda or cuda:N");
    cmd.add_option("-t,--threads", threads, "CPU compute threads (default: all cores)")->check(CLI::Range(1u, 1024u));
    cmd.add_option("-c,--ctx", context, "context length in tokens (default: the model's, at most 4096)")
        ->check(CLI::NonNegativeNumber);
    cmd.add_option("--kv-type", kv_type, "KV cache element type: f16, f32 or q8_0")->check(CLI::IsMember({"f16", "f32", "q8_0"}));
  }

  void add_budgets_to(CLI::App& cmd) {
    cmd.add_option("--gpu-mem", gpu_mem, "GPU memory the model may use, e.g. 4GiB (default: what is free, less a margin)");
    cmd.add_option("--ram", ram,
                   "host memory the model may use, e.g. 16GiB (default: what is free, less a margin); layers beyond "
                   "it are read from disk each pass");
    cmd.add_flag("--plan", show_plan, "print where each layer goes and the predicted time per token, then exit");
    cmd.add_flag("--verify", verify,
                 "check the .aero file's page digests (written by convert --integrity): every page read from disk, "
                 "or every page once at load");
  }

  // The backend --device names (checked before any model is read: a bad name fails at once).
  std::unique_ptr<backend::Backend> backend() const { return backend::make_backend(device, threads); }
  engine::SessionOptions session() const { return {.context = context, .kv_type = backend::kv_type_by_name(kv_type)}; }
  // How engine::Model opens the model: the planner for these budgets on `device`, and --verify.
  engine::ModelOptions model_options(const backend::Device& dev) const;
  engine::PlacementOptions placement() const {
    return {.gpu_mem = gpu_mem, .ram = ram, .context = context, .kv_type = backend::kv_type_by_name(kv_type)};
  }
};

// Sampling flags, named as llama.cpp names them.
// `short_seed`: -s for --seed as llama.cpp has it (chat takes -s for its system message).
inline void add_sampling_options(CLI::App& cmd, engine::SamplingParams& p, bool& greedy, bool short_seed = true) {
  cmd.add_option("--temp", p.temperature, "temperature; 0 is greedy (default 0.8)");
  cmd.add_option("--top-k", p.top_k, "keep the K most likely tokens; 0 = off (default 40)");
  cmd.add_option("--top-p", p.top_p, "keep the smallest set with probability P; 1 = off (default 0.95)");
  cmd.add_option("--min-p", p.min_p, "drop tokens below P x the best one's probability (default 0.05)");
  cmd.add_option("--repeat-penalty", p.repeat_penalty, "penalize repeated tokens; 1 = off (default 1.0)");
  cmd.add_option("--presence-penalty", p.presence_penalty, "subtract once from repeated tokens (default 0)");
  cmd.add_option("--frequency-penalty", p.frequency_penalty, "subtract per repetition (default 0)");
  cmd.add_option("--repeat-last-n", p.repeat_last_n, "tokens the penalties look back on; -1 = all (default 64)");
  cmd.add_option(short_seed ? "-s,--seed" : "--seed", p.seed, "random seed; the same seed gives the same text (default: random)");
  cmd.add_flag("--greedy", greedy, "always take the most likely token (same as --temp 0)");
}

// The sampling defaults the model's store gives (Ollama's params layer) for each flag of
// add_sampling_options the user left out; `stop` (optional) takes its stop strings when no
// --stop was given. Applied before --greedy, which still wins.
inline void apply_sampling_defaults(const CLI::App& cmd, const format::ModelMetadata& metadata, engine::SamplingParams& p,
                                    std::vector<std::string>* stop = nullptr) {
  const Json& d = metadata.sampling_defaults;
  auto number = [&](const char* key, const char* flag, auto& field) {
    auto it = d.find(key);
    const CLI::Option* given = cmd.get_option_no_throw(flag);
    if (it == d.end() || (given && given->count() > 0)) return;
    if (!it->is_number()) fail("{}: parameter '{}' is not a number", metadata.name, key);
    field = it->get<std::remove_reference_t<decltype(field)>>();
  };
  number("temperature", "--temp", p.temperature);
  number("top_k", "--top-k", p.top_k);
  number("top_p", "--top-p", p.top_p);
  number("min_p", "--min-p", p.min_p);
  number("repeat_penalty", "--repeat-penalty", p.repeat_penalty);
  number("presence_penalty", "--presence-penalty", p.presence_penalty);
  number("frequency_penalty", "--frequency-penalty", p.frequency_penalty);
  number("repeat_last_n", "--repeat-last-n", p.repeat_last_n);
  // Ollama's seed -1 is "random", as aero's default is.
  if (auto it = d.find("seed"); it == d.end() || !it->is_number_integer() || it->get<std::int64_t>() >= 0)
    number("seed", "--seed", p.seed);
  if (auto it = d.find("stop"); stop && stop->empty() && it != d.end()) {
    if (!it->is_array()) fail("{}: parameter 'stop' is not a list of strings", metadata.name);
    for (const auto& s : *it) {
      if (!s.is_string()) fail("{}: parameter 'stop' is not a list of strings", metadata.name);
      stop->push_back(s.get<std::string>());
    }
  }
}

}  // namespace aero::cli
