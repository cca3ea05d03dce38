#include "aero/error.h"
#include "aero/format/aero_model.h"
#include "aero/format/model_name.h"
#include "cli/commands.h"
#include "cli/display.h"

namespace aero::cli {

namespace {

void print_stored(const std::vector<format::StoredModel>& models, const std::filesystem::path& where) {
  if (models.empty()) fmt::print(stderr, "no models in {}\n", where.string());
  for (const auto& m : models) fmt::print("{}\t{}\t{}\n", m.name, human_bytes(m.bytes), m.detail);
}

}  // namespace

void add_list_command(CLI::App& app) {
  struct Options {
    std::string path;
    bool hf = false, ollama = false;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "list", "List tensors (name, type, shape (row-major), bytes), or the models in the Hugging Face cache or Ollama's store");
  auto* file = cmd->add_option("file", opt->path, "a .aero file or AEROSET");
  cmd->add_flag("--hf", opt->hf, "list the models in the Hugging Face cache ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub)")
      ->excludes(file);
  cmd->add_flag("--ollama", opt->ollama, "list the models in Ollama's store ($OLLAMA_MODELS, ~/.ollama/models)")->excludes(file);
  cmd->callback([opt] {
    if (opt->hf) print_stored(format::list_hf_cache(format::hf_hub_cache()), format::hf_hub_cache());
    if (opt->ollama) print_stored(format::list_ollama_store(format::ollama_models_dir()), format::ollama_models_dir());
    if (opt->hf || opt->ollama) return;
    if (opt->path.empty()) fail("give a .aero FILE to list its tensors (or --hf / --ollama to list stored models)");
    auto model = format::AeroModel::open(opt->path);
    for (const auto& t : model.tensors())
      fmt::print("{}\t{}\t{}\t{}\n", t.name, element_type_text(t), shape_text(t.shape), t.data_len);
  });
}

}  // namespace aero::cli
