// aero chat MODEL [-s SYSTEM]: an interactive conversation using the model's chat template.
#include "aero/engine/chat.h"
#include "cli/chat_loop.h"
#include "cli/commands.h"
#include "cli/model_options.h"
#include "cli/placement.h"
#include "cli/text_model.h"

namespace aero::cli {

void add_chat_command(CLI::App& app) {
  struct Options {
    ModelOptions model;
    std::string tokenizer, system;
    std::int64_t max_tokens = -1;
    engine::SamplingParams sampling;
    bool greedy = false;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("chat", "Talk with a model: its chat template, history kept, answers streamed");
  opt->model.add_to(*cmd);
  opt->model.add_budgets_to(*cmd);
  cmd->add_option("-s,--system", opt->system, "system message");
  cmd->add_option("--tokenizer", opt->tokenizer, "tokenizer.json, folder or GGUF to use instead of the model's");
  cmd->add_option("-n,--max-tokens", opt->max_tokens, "most tokens per answer; -1 = until the end of the turn (default)")
      ->check(CLI::Range(std::int64_t{-1}, std::int64_t{1} << 40));
  add_sampling_options(*cmd, opt->sampling, opt->greedy, /*short_seed=*/false);
  cmd->callback([opt, cmd] {
    if (opt->model.show_plan) return print_plan(opt->model);
    if (opt->greedy) opt->sampling.temperature = 0;
    opt->sampling.validate();
    auto t = TextModel::open(opt->model.backend(), opt->model.model, opt->model.config, opt->tokenizer, opt->model.session(),
                             true, opt->model.model_options(backend::choose_device(opt->model.device)));
    std::vector<std::string> stop;
    apply_sampling_defaults(*cmd, t.model->source().metadata(), opt->sampling, &stop);
    if (opt->greedy) opt->sampling.temperature = 0;
    opt->sampling.validate();
    engine::Sampler sampler(opt->sampling);
    engine::Chat chat(*t.session, sampler, *t.tokenizer,
                      {.system = opt->system, .max_tokens = opt->max_tokens, .stop = stop, .template_variables = Json::object()});
    run_chat_loop(chat);
  });
}

}  // namespace aero::cli
