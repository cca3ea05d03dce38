// aero pull hf:ORG/NAME [--revision R] [--include GLOB]: downloads a Hugging Face model into the
// Hugging Face cache (see aero/hub/hf_pull.h), where `hf:ORG/NAME` then finds it.
#include <memory>
#include <optional>

#include "aero/error.h"
#include "aero/format/model_name.h"
#include "aero/hub/hf_pull.h"
#include "cli/commands.h"
#include "cli/display.h"
#include "cli/progress_bar.h"

namespace aero::cli {

void add_pull_command(CLI::App& app) {
  struct Options {
    std::string name;
    hub::PullOptions pull;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("pull", "Download a Hugging Face model into the Hugging Face cache (resumable, checked)");
  cmd->add_option("model", opt->name, "hf:ORG/NAME (or ORG/NAME)")->required();
  cmd->add_option("--revision", opt->pull.revision, "branch, tag or commit (default main)");
  cmd->add_option("--include", opt->pull.include,
                  "only files matching this glob (repeatable; default: all but weights aero cannot read)");
  cmd->callback([opt] {
    std::string_view id = opt->name;
    if (id.rfind("hf:", 0) == 0) id.remove_prefix(3);
    else if (id.find(':') != std::string_view::npos) fail("aero pull takes hf:ORG/NAME (Ollama models come with `ollama pull`)");
    std::optional<ProgressBar> bar;
    opt->pull.on_file = [&bar](const hub::HubFile& f, std::uint64_t already) {
      bar.reset();
      bar.emplace(f.path);
      bar->start(f.size);
      bar->add(already);
    };
    opt->pull.on_bytes = [&bar](std::uint64_t bytes) {
      if (bar) bar->add(bytes);
    };
    const auto r = hub::pull_hf(id, opt->pull);
    bar.reset();
    fmt::print("hf:{}: {} files in {} ({} fetched, {} already there)\n", id, r.files, r.snapshot.string(),
               human_bytes(r.downloaded), r.already_present);
  });
}

}  // namespace aero::cli
