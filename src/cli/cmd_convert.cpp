#include "aero/convert/convert.h"
#include "cli/commands.h"
#include "cli/display.h"

namespace aero::cli {

void add_convert_command(CLI::App& app) {
  struct Options {
    std::string in, out, to;
    convert::ConvertOptions convert;
    std::uint64_t page_size = format::kDefaultPhshPageSize;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("convert", "Convert a model: .aero, AEROSET or safetensors in; .aero or AEROSET out");
  cmd->add_option("in", opt->in, "source model")->required();
  cmd->add_option("out", opt->out, "destination (.aero file, or a folder / model.aeroset.json for AEROSET)")->required();
  cmd->add_option("--to", opt->to, "output format: aero or aeroset (default: from the output name)");
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
    auto kind = convert::output_kind(opt->out, opt->to);
    auto summary = convert::convert(opt->in, opt->out, kind, opt->convert);
    fmt::print(stderr, "wrote {} ({}, {} shard{})\n", opt->out, human_bytes(summary.file_bytes), summary.shards,
               summary.shards == 1 ? "" : "s");
  });
}

}  // namespace aero::cli
