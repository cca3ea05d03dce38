#include "aero/error.h"
#include "aero/format/aero_model.h"
#include "aero/output_file.h"
#include "cli/commands.h"

namespace aero::cli {

void add_extract_command(CLI::App& app) {
  struct Options {
    std::string path, tensor, out;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("extract", "Write one tensor's raw bytes to a file (checked against its hash)");
  cmd->add_option("file", opt->path, "a .aero file or AEROSET")->required();
  cmd->add_option("tensor", opt->tensor, "tensor name")->required();
  cmd->add_option("out", opt->out, "output file ('-' for standard output)")->required();
  cmd->callback([opt] {
    auto model = format::AeroModel::open(opt->path);
    const format::Tensor* t = model.find_tensor(opt->tensor);
    if (!t) fail("{}: no tensor named '{}'", opt->path, opt->tensor);
    auto data = model.tensor_data(*t);
    if (!t->hash_b3.empty() && to_hex(blake3(data)) != t->hash_b3)
      fail("{}: tensor '{}' fails its BLAKE3 check (corrupt data)", opt->path, opt->tensor);
    if (opt->out == "-") {
      if (std::fwrite(data.data(), 1, data.size(), stdout) != data.size()) fail("cannot write to standard output");
      return;
    }
    OutputFile out(opt->out);
    out.write(data);
    out.commit();
  });
}

}  // namespace aero::cli
