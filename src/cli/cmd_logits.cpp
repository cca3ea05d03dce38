// aero logits: the logits of every position of a token sequence, for checking aero against
// other implementations (f32 safetensors, tensor "logits" of shape [positions, vocab]).
#include <cstring>

#include "aero/engine/generate.h"
#include "aero/error.h"
#include "aero/format/safetensors.h"
#include "cli/commands.h"
#include "cli/model_options.h"

namespace aero::cli {

void add_logits_command(CLI::App& app) {
  struct Options {
    ModelOptions model;
    std::string ids, out;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("logits", "Write the logits of every position of a token sequence");
  opt->model.add_to(*cmd);
  cmd->add_option("--ids", opt->ids, "token ids, e.g. 1,5,9")->required();
  cmd->add_option("--out", opt->out, "output .safetensors file")->required();
  cmd->callback([opt] {
    const auto ids = engine::parse_token_ids(opt->ids);
    auto backend = opt->model.backend();
    auto model = engine::Model::open(opt->model.model, opt->model.config);
    engine::Session session(*model, *backend, opt->model.session());
    const auto logits = session.eval(ids, /*all_logits=*/true);
    format::SafetensorsTensorWrite t{
        .name = "logits",
        .dtype = format::DType::F32,
        .shape = {ids.size(), static_cast<std::uint64_t>(model->spec().vocab)},
        .data = {reinterpret_cast<const std::uint8_t*>(logits.data()), logits.size() * sizeof(float)},
    };
    format::write_safetensors(opt->out, {t}, Json::object());
    fmt::print(stderr, "wrote {} ({} positions x {} logits)\n", opt->out, ids.size(), model->spec().vocab);
  });
}

}  // namespace aero::cli
