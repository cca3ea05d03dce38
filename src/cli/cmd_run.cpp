// aero run: generate from a prompt, streaming text (or ids) to stdout and speed to stderr.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>

#include "aero/engine/chat.h"
#include "aero/engine/generate.h"
#include "aero/error.h"
#include "aero/json.h"
#include "aero/mapped_file.h"
#include "aero/server/scheduler.h"
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
// Batch mode: every prompt of the file (one a line) through one BatchSession, `parallel` at a
// time in its slots (continuous batching: a finished sequence's slot takes the next prompt), so
// that each pass over the weights serves them all. One JSON line per prompt, in the file's order.
void run_batch_file(const CLI::App& cmd, const ModelOptions& mo, const std::string& path, const std::string& tokenizer_path,
                    int parallel, engine::SamplingParams sampling, bool greedy, std::int64_t max_tokens,
                    std::vector<std::string> stop, bool ignore_eos) {
  std::vector<std::string> prompts;
  const std::string all = read_small_file(path, std::uint64_t{256} << 20);  // (a clear error when missing or larger)
  for (std::size_t at = 0; at < all.size();) {
    std::size_t end = all.find('\n', at);
    if (end == std::string::npos) end = all.size();
    std::string line = all.substr(at, end - at);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) prompts.push_back(std::move(line));
    at = end + 1;
  }
  if (prompts.empty()) fail("--batch-file {}: no prompts in it (one per line)", path);
  auto backend = mo.backend();
  auto model = engine::Model::open(mo.model, mo.config, mo.model_options(backend::choose_device(mo.device)));
  apply_sampling_defaults(cmd, model->source().metadata(), sampling, &stop);  // the model store's, where flags left them
  if (greedy) sampling.temperature = 0;
  sampling.validate();
  const auto tok = tokenizer_path.empty() ? tokenizer::Tokenizer::from_metadata(model->source().metadata())
                                          : tokenizer::Tokenizer::load(tokenizer_path);
  std::vector<std::vector<std::int32_t>> ids;
  std::int64_t longest = 0;
  for (const auto& p : prompts) {
    ids.push_back(engine::tokenize_prompt(tok, p));
    longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(ids.back().size()));
  }
  const int slots = std::clamp<int>(parallel > 0 ? parallel : static_cast<int>(prompts.size()), 1, std::min<int>(64, static_cast<int>(prompts.size())));
  // Each slot's context: the longest prompt and its answer (not the model's whole context per slot).
  const std::int64_t context = mo.context > 0 ? mo.context : std::min<std::int64_t>(longest + max_tokens + 1, model->spec().context);
  server::Scheduler scheduler(*model, *backend, tok,
                              {.slots = slots, .context = context, .max_batch = 512, .kv_type = backend::kv_type_by_name(mo.kv_type)});
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::shared_ptr<server::Job>> jobs;
  for (auto& p : ids)
    jobs.push_back(scheduler.submit({.prompt = std::move(p), .sampling = sampling, .max_tokens = max_tokens, .stop = stop,
                                     .stop_at_eos = !ignore_eos, .top_logprobs = -1}));
  std::int64_t generated = 0;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    std::string text;
    server::JobUpdate u;
    do {
      u = jobs[i]->take(std::chrono::milliseconds(1000));
      text += u.text;
    } while (!u.finished);
    if (u.reason == server::FinishReason::Error) fail("prompt {}: {}", i + 1, u.error);
    generated += u.usage.completion_tokens;
    const Json line = {{"index", i}, {"prompt", prompts[i]}, {"text", text},
                       {"finish_reason", server::finish_reason_name(u.reason)},
                       {"prompt_tokens", u.usage.prompt_tokens}, {"completion_tokens", u.usage.completion_tokens}};
    fmt::print("{}\n", line.dump(-1, ' ', false, Json::error_handler_t::replace));
    std::fflush(stdout);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  fmt::print(stderr, "batch: {} prompts, {} at a time | {} tokens generated in {:.2f} s, {:.1f} tok/s in all | {}\n",
             prompts.size(), slots, generated, seconds, seconds > 0 ? static_cast<double>(generated) / seconds : 0.0,
             backend->name());
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
    std::string batch_file;
    int parallel = 0;
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
  auto* batch = cmd->add_option("--batch-file", opt->batch_file,
                                "batch mode: every line of this file is a prompt, generated together (one JSON line each)");
  batch->excludes(prompt)->excludes(ids);
  cmd->add_option("--parallel", opt->parallel, "with --batch-file: sequences at once (default: every prompt, at most 64)")
      ->check(CLI::Range(1, 1024));
  cmd->callback([opt, cmd] {
    if (opt->model.show_plan) return print_plan(opt->model);
    if (opt->greedy) opt->sampling.temperature = 0;
    opt->sampling.validate();
    if (!opt->batch_file.empty()) {
      if (opt->chat || opt->print_ids) fail("--batch-file takes plain text prompts (no --chat or --print-ids yet)");
      return run_batch_file(*cmd, opt->model, opt->batch_file, opt->tokenizer, opt->parallel, opt->sampling, opt->greedy,
                            opt->max_tokens, opt->stop, opt->ignore_eos);
    }
    if (opt->ids.empty() && opt->prompt.empty()) fail("give a prompt with -p TEXT or token ids with --ids 1,5,9");
    if (opt->chat && opt->prompt.empty()) fail("--chat needs a text prompt (-p TEXT)");
    if (!opt->system.empty() && !opt->chat) fail("--system needs --chat");
    // Ids in and out need no tokenizer (models without one work too); text either way does.
    const bool text = opt->ids.empty() || !opt->print_ids || !opt->stop.empty();
    auto made = opt->model.backend();  // first: a device that cannot be used fails before the model is read
    auto t = TextModel::open(std::move(made), opt->model.model, opt->model.config, opt->tokenizer,
                             opt->model.session(), text,
                             opt->model.model_options(backend::choose_device(opt->model.device)));
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
    if (auto g = streaming_summary(*t.session, stats.prompt_seconds + stats.generation_seconds); !g.empty())
      fmt::print(stderr, "{}\n", g);
    if (auto d = disk_tier_summary(*t.model); !d.empty()) fmt::print(stderr, "{}\n", d);
  });
}

}  // namespace aero::cli
