#include "aero/convert/convert.h"
#include "aero/error.h"
#include "cli/commands.h"
#include "cli/display.h"
#include "cli/progress_bar.h"

namespace aero::cli {

void add_quantize_command(CLI::App& app) {
  struct Options {
    std::string in, out, type, to, config;
    convert::ConvertOptions convert;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("quantize", "Quantize a model's weight matrices (Q8_0 ... Q4_K_M, as llama-quantize)");
  cmd->add_option("in", opt->in, "source model (.aero, AEROSET, GGUF, safetensors, HF folder)")->required();
  cmd->add_option("out", opt->out, "destination: .aero, .gguf, or a folder for AEROSET")->required();
  cmd->add_option("type", opt->type, std::string("block format or mix: ") + convert::kQuantRecipeNames)
      ->required();
  cmd->add_option("--to", opt->to, "output format: aero, aeroset or gguf (default: from OUT's name)");
  cmd->add_option("--config", opt->config, "HF folder or GGUF supplying metadata the source lacks");
  cmd->add_flag("--integrity", opt->convert.write.integrity, "write IHSH and per-page PHSH digests");
  cmd->callback([opt] {
    const auto recipe = convert::quant_recipe(opt->type);
    opt->convert.config = opt->config;
    ProgressBar bar("quantizing");
    opt->convert.on_start = [&](std::uint64_t total) { bar.start(total); };
    opt->convert.on_progress = [&](std::uint64_t n) { bar.add(n); };
    auto summary = convert::quantize(opt->in, opt->out, convert::output_kind(opt->out, opt->to), recipe,
                                     opt->convert);
    bar.finish();
    fmt::print(stderr, "wrote {} ({} tensors, {})\n", opt->out, summary.tensors, human_bytes(summary.file_bytes));
  });
}

}  // namespace aero::cli
