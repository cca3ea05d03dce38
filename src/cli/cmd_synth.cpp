// aero synth: a random-weight model of a real shape, for benchmarks and first runs.
#include "aero/convert/synth.h"
#include "aero/error.h"
#include "cli/commands.h"
#include "cli/display.h"
#include "cli/progress_bar.h"

namespace aero::cli {

void add_synth_command(CLI::App& app) {
  struct Options {
    convert::SynthOptions synth;
    std::string out, type = "F16";
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("synth", "Write a random-weight model of a real shape (for benchmarks)");
  cmd->add_option("out", opt->out, "output .gguf or .aero")->required();
  cmd->add_option("--arch", opt->synth.arch, "llama, qwen2, qwen3, mixtral or qwen3moe (default llama)")
      ->check(CLI::IsMember({"llama", "qwen2", "qwen3", "mixtral", "qwen3moe"}));
  cmd->add_option("--preset", opt->synth.preset, "tiny, 1b or 8b (default 1b)")->check(CLI::IsMember({"tiny", "1b", "8b"}));
  cmd->add_option("--type", opt->type, "weight type: F16 (default), F32, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1");
  cmd->add_option("--vocab", opt->synth.vocab, "GGUF whose tokenizer to copy (sets the vocabulary size)");
  cmd->add_option("--seed", opt->synth.seed, "random seed for the weights (default 1)");
  cmd->callback([opt] {
    auto traits = quant::type_traits_by_name(opt->type);
    if (!traits) fail("unknown weight type '{}'", opt->type);
    opt->synth.type = traits->type;
    ProgressBar bar("synthesizing");
    opt->synth.on_start = [&](std::uint64_t total) { bar.start(total); };
    opt->synth.on_progress = [&](std::uint64_t n) { bar.add(n); };
    auto summary = convert::synthesize(opt->out, opt->synth);
    bar.finish();
    fmt::print(stderr, "wrote {} ({} tensors, {})\n", opt->out, summary.tensors, human_bytes(summary.file_bytes));
  });
}

}  // namespace aero::cli
