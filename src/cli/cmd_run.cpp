// aero run: generate from a prompt, streaming tokens to stdout and speed to stderr.
#include <cstdio>

#include "aero/engine/generate.h"
#include "aero/error.h"
#include "cli/commands.h"
#include "cli/model_options.h"

namespace aero::cli {

void add_run_command(CLI::App& app) {
  struct Options {
    ModelOptions model;
    std::string prompt, ids;
    std::int64_t max_tokens = 128;
    engine::SamplingParams sampling;
    bool greedy = false, print_ids = false, ignore_eos = false;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("run", "Generate text from a prompt");
  opt->model.add_to(*cmd);
  auto* prompt = cmd->add_option("-p,--prompt", opt->prompt, "prompt text");
  auto* ids = cmd->add_option("--ids", opt->ids, "prompt as token ids, e.g. 1,5,9 (no tokenizer needed)");
  prompt->excludes(ids);
  cmd->add_option("-n,--max-tokens", opt->max_tokens, "tokens to generate (default 128)")->check(CLI::NonNegativeNumber);
  add_sampling_options(*cmd, opt->sampling, opt->greedy);
  cmd->add_flag("--print-ids", opt->print_ids, "print generated token ids (comma-separated) instead of text");
  cmd->add_flag("--ignore-eos", opt->ignore_eos, "keep generating past end-of-generation tokens");
  cmd->callback([opt] {
    if (opt->greedy) opt->sampling.temperature = 0;
    opt->sampling.validate();
    if (opt->ids.empty()) {
      if (opt->prompt.empty()) fail("give a prompt with -p TEXT or token ids with --ids 1,5,9");
      fail("text prompts need the tokenizer, which aero does not have yet; give token ids with --ids");
    }
    if (!opt->print_ids) fail("printing text needs the tokenizer, which aero does not have yet; add --print-ids");
    const auto prompt_ids = engine::parse_token_ids(opt->ids);

    auto model = engine::Model::open(opt->model.model, opt->model.config);
    auto cpu = backend::make_cpu_backend(opt->model.threads);
    engine::Session session(*model, *cpu, opt->model.session());
    engine::Sampler sampler(opt->sampling);
    bool first = true;
    const auto stats = engine::generate(session, sampler, prompt_ids,
                                        {.max_tokens = opt->max_tokens, .stop_at_eos = !opt->ignore_eos, .extra_stop_ids = {}},
                                        [&](std::int32_t token) {
                                          std::printf(first ? "%d" : ",%d", token);
                                          std::fflush(stdout);
                                          first = false;
                                          return true;
                                        });
    std::printf("\n");
    std::fflush(stdout);
    auto rate = [](std::int64_t n, double s) { return s > 0 ? static_cast<double>(n) / s : 0.0; };
    fmt::print(stderr, "prompt: {} tokens, {:.1f} tok/s | generation: {} tokens, {:.1f} tok/s | {}{}\n",
               stats.prompt_tokens, rate(stats.prompt_tokens, stats.prompt_seconds), stats.generated_tokens,
               rate(stats.generated_tokens, stats.generation_seconds), cpu->name(),
               stats.stopped_by_eos ? " | stopped at end-of-generation" : "");
  });
}

}  // namespace aero::cli
