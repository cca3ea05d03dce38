#include "aero/convert/convert.h"
#include "cli/commands.h"
#include "cli/display.h"
#include "cli/progress_bar.h"

namespace aero::cli {

void add_convert_command(CLI::App& app) {
  struct Options {
    std::string in, out, to, config;
    convert::ConvertOptions convert;
    std::uint64_t page_size = format::kDefaultPhshPageSize;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "convert", "Convert a model between .aero, AEROSET, GGUF, safetensors and Hugging Face folders");
  cmd->add_option("in", opt->in, "source: .aero, AEROSET, .gguf, .safetensors or an HF folder")->required();
  cmd->add_option("out", opt->out, "destination: .aero, .gguf, .safetensors, or a folder for AEROSET")->required();
  cmd->add_option("--to", opt->to, "output format: aero, aeroset, gguf or safetensors (default: from OUT's name)");
  cmd->add_option("--config", opt->config, "HF folder or GGUF supplying metadata the source lacks");
  cmd->add_option("--max-shard-bytes", opt->convert.write.max_shard_bytes, "start a new weight shard past this size")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--integrity", opt->convert.write.integrity, "write IHSH and per-page PHSH digests");
  cmd->add_option("--page-size", opt->page_size, "PHSH page size in bytes")->check(CLI::PositiveNumber);
  cmd->add_flag("--tensor-hash", opt->convert.write.tensor_hash, "store a BLAKE3 for every tensor");
  cmd->add_option("--part-shards", opt->convert.part_shards, "AEROSET: weight shards per part file")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--name", opt->convert.model_name, "model name to record");
  cmd->add_option("--arch", opt->convert.architecture, "architecture to record");
  cmd->callback([opt] {
    opt->convert.write.page_size = opt->page_size;
    opt->convert.config = opt->config;
    ProgressBar bar("converting");
    opt->convert.on_start = [&](std::uint64_t total) { bar.start(total); };
    opt->convert.on_progress = [&](std::uint64_t n) { bar.add(n); };
    auto kind = convert::output_kind(opt->out, opt->to);
    auto summary = convert::convert(opt->in, opt->out, kind, opt->convert);
    bar.finish();
    fmt::print(stderr, "wrote {} ({} tensors, {})\n", opt->out, summary.tensors, human_bytes(summary.file_bytes));
  });
}

}  // namespace aero::cli
