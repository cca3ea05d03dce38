#include "aero/format/aero_model.h"
#include "cli/commands.h"
#include "cli/display.h"

namespace aero::cli {

void add_list_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("list", "List tensors: name, type, shape (row-major), bytes");
  cmd->add_option("file", *path, "a .aero file or AEROSET")->required();
  cmd->callback([path] {
    auto model = format::AeroModel::open(*path);
    for (const auto& t : model.tensors())
      fmt::print("{}\t{}\t{}\t{}\n", t.name, element_type_text(t), shape_text(t.shape), t.data_len);
  });
}

}  // namespace aero::cli
