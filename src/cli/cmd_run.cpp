// aero run: generate from a prompt, streaming text (or ids) to stdout and speed to stderr.
#include <cstdio>
#include <optional>

#include "aero/engine/chat.h"
#include "aero/engine/generate.h"
#include "aero/error.h"
#include "cli/commands.h"
#include "cli/model_options.h"
#include "cli/placement.h"
#include "cli/text_model.h"

namespace aero::cli {

namespace {
void print_speed(const engine::GenerationStats& stats, const backend::Backend& backend) {
  auto rate = [](std::int64_t n, double s) { return s > 0 ? static_cast<double>(n) / s : 0.0; };
  fmt::print(stderr, "prompt: {} tokens, {:.1f} tok/s | generation: {} tokens, {:.1f} tok/s | {}{}\n",
             stats.prompt_tokens, rate(stats.prompt_tokens, stats.prompt_seconds), stats.generated_tokens,
             rate(stats.generated_tokens, stats.generation_seconds), backend.name(),
             stats.stopped_by_eos ? " | stopped at end-of-generation" : "");
}
}  // namespace

void add_run_command(CLI::App& app) {
  struct Options {
    ModelOptions model;
    std::string prompt, ids, tokenizer, system;
    std::vector<std::string> stop;
    std::int64_t max_tokens = 128;
    engine::SamplingParams sampling;
    bool greedy = false, print_ids = false, ignore_eos = false, chat = false;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("run", "Generate text from a prompt");
  opt->model.add_to(*cmd);
  opt->model.add_budgets_to(*cmd);
  auto* prompt = cmd->add_option("-p,--prompt", opt->prompt, "prompt text");
  auto* ids = cmd->add_option("--ids", opt->ids, "prompt as token ids, e.g. 1,5,9 (no tokenizer needed)");
  prompt->excludes(ids);
  cmd->add_flag("--chat", opt->chat, "wrap the prompt in the model's chat template as one user message");
  cmd->add_option("--system", opt->system, "system message (with --chat)");
  cmd->add_option("--stop", opt->stop, "stop when the output contains this text (repeatable)");
  cmd->add_option("--tokenizer", opt->tokenizer, "tokenizer.json, folder or GGUF to use instead of the model's");
  cmd->add_option("-n,--max-tokens", opt->max_tokens, "tokens to generate (default 128)")->check(CLI::NonNegativeNumber);
  add_sampling_options(*cmd, opt->sampling, opt->greedy);
  cmd->add_flag("--print-ids", opt->print_ids, "print generated token ids (comma-separated) instead of text");
  cmd->add_flag("--ignore-eos", opt->ignore_eos, "keep generating past end-of-generation tokens");
  cmd->callback([opt, cmd] {
    if (opt->model.show_plan) return print_plan(opt->model);
    if (opt->greedy) opt->sampling.temperature = 0;
    opt->sampling.validate();
    if (opt->ids.empty() && opt->prompt.empty()) fail("give a prompt with -p TEXT or token ids with --ids 1,5,9");
    if (opt->chat && opt->prompt.empty()) fail("--chat needs a text prompt (-p TEXT)");
    if (!opt->system.empty() && !opt->chat) fail("--system needs --chat");
    // Ids in and out need no tokenizer (models without one work too); text either way does.
    const bool text = opt->ids.empty() || !opt->print_ids || !opt->stop.empty();
    auto made = opt->model.backend();  // first: a device that cannot be used fails before the model is read
    auto t = TextModel::open(std::move(made), opt->model.model, opt->model.config, opt->tokenizer,
                             opt->model.session(), text,
                             {.planner = run_planner(opt->model, backend::choose_device(opt->model.device)), .disk = {}});
    apply_sampling_defaults(*cmd, t.model->source().metadata(), opt->sampling, &opt->stop);
    if (opt->greedy) opt->sampling.temperature = 0;
    opt->sampling.validate();
    engine::Sampler sampler(opt->sampling);
    if (opt->chat) {
      engine::Chat chat(*t.session, sampler, *t.tokenizer,
                        {.system = opt->system, .max_tokens = opt->max_tokens, .stop = opt->stop,
                         .template_variables = Json::object()});
      const auto stats = chat.respond(opt->prompt, show_text);
      std::printf("\n");
      print_speed(stats, *t.backend);
      if (auto d = disk_tier_summary(*t.model); !d.empty()) fmt::print(stderr, "{}\n", d);
      return;
    }
    const auto prompt_ids =
        opt->ids.empty() ? engine::tokenize_prompt(*t.tokenizer, opt->prompt) : engine::parse_token_ids(opt->ids);
    std::optional<tokenizer::StreamDecoder> decoder;
    if (t.tokenizer) decoder.emplace(*t.tokenizer);
    engine::StopStrings stops(opt->stop);
    bool first = true;
    auto options = engine::GenerateOptions{.max_tokens = opt->max_tokens, .stop_at_eos = !opt->ignore_eos,
                                           .extra_stop_ids = opt->ignore_eos || !t.tokenizer
                                                                 ? std::vector<std::int32_t>{}
                                                                 : t.tokenizer->vocab().end_of_generation};
    const auto stats = engine::generate(*t.session, sampler, prompt_ids, options, [&](std::int32_t token) {
      if (opt->print_ids) {
        std::printf(first ? "%d" : ",%d", token);
        first = false;
        if (decoder) stops.push(decoder->push(token));  // only to see stop strings
      } else {
        show_text(stops.push(decoder->push(token)));
      }
      std::fflush(stdout);
      return !stops.stopped();
    });
    if (!opt->print_ids && !stops.stopped()) show_text(stops.push(decoder->finish()) + stops.finish());
    std::printf("\n");
    std::fflush(stdout);
    print_speed(stats, *t.backend);
    if (auto d = disk_tier_summary(*t.model); !d.empty()) fmt::print(stderr, "{}\n", d);
  });
}

}  // namespace aero::cli
