// aero-run: the command line of the original Python `aero-run`, over the same engine as
// `aero run`, so that its users switch without relearning flags.
//   aero-run MODEL [--info] [--prompt P] [--interactive] [--max-tokens N] [--temperature T]
//            [--dtype float32|float16|bfloat16] [--device auto|cpu|cuda|cuda:N] [--model-id DIR]
#include <cstdio>
#include <exception>
#include <thread>

#include <CLI/CLI.hpp>

#include "aero/backend/backend.h"
#include "aero/engine/chat.h"
#include "aero/engine/session.h"
#include "aero/error.h"
#include "cli/chat_loop.h"
#include "cli/model_options.h"
#include "cli/text_model.h"

namespace {

void print_info(const aero::engine::Model& model) {
  const auto& s = model.spec();
  fmt::print("architecture: {} ({})\nvocabulary: {}\nhidden size: {}\nlayers: {}\nattention heads: {} ({} key/value, head size {})\n"
             "feed-forward size: {}\ncontext: {}\nrope theta: {}\nweights read per token: {:.1f} MiB\n",
             aero::model::family_name(s.family), s.architecture, s.vocab, s.hidden, s.layers, s.heads, s.kv_heads,
             s.head_dim, s.ffn, s.context, s.rope_theta, static_cast<double>(model.weight_bytes_per_token()) / (1 << 20));
}

int run(int argc, char** argv) {
  CLI::App app{"aero-run: run a model (the flags of the Python aero-run)"};
  app.name("aero-run");
  std::string model_path, prompt, dtype = "float32", device = "auto", model_id;
  bool info = false, interactive = false;
  std::int64_t max_tokens = 128;
  float temperature = 0.8f;
  app.add_option("model", model_path, "model: .aero, AEROSET, GGUF, safetensors, HF folder, hf:ORG/NAME or ollama:NAME[:TAG]")
      ->required();
  app.add_flag("--info", info, "print the model's description and exit");
  app.add_option("--prompt", prompt, "prompt text");
  app.add_flag("--interactive", interactive, "chat with the model");
  app.add_option("--max-tokens", max_tokens, "tokens to generate (default 128)")->check(CLI::NonNegativeNumber);
  app.add_option("--temperature", temperature, "sampling temperature; 0 is greedy (default 0.8)");
  app.add_option("--dtype", dtype, "activation precision")->check(CLI::IsMember({"float32", "float16", "bfloat16"}));
  app.add_option("--device", device, "auto (a CUDA GPU when there is one, else the CPU), cpu, cuda or cuda:N");
  app.add_option("--model-id", model_id, "local HF folder or GGUF supplying config and tokenizer");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version print and exit 0, a command's CLI::RuntimeError carries its own exit
    // status (its message is printed already); a bad flag is one line, exit 2 (a usage error).
    if (e.get_exit_code() == 0 || dynamic_cast<const CLI::RuntimeError*>(&e)) return app.exit(e);
    std::fprintf(stderr, "%s: error: %s (see --help)\n", "aero-run", e.what());
    return 2;
  }
  // Checked before anything is read: a device that cannot be used fails at once.
  const aero::backend::Device chosen = aero::backend::choose_device(device);
  // Weights are computed in their stored format and activations in f32 (on the CPU and the
  // GPU alike), which is at least as precise as any --dtype asked for.
  if (info) {
    print_info(*aero::engine::Model::open(model_path, model_id));
    return 0;
  }
  if (interactive || !prompt.empty()) {
    const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
    auto t = aero::cli::TextModel::open(aero::backend::make_backend(chosen, threads), model_path, model_id, "", {});
    aero::engine::SamplingParams sampling;
    std::vector<std::string> stop;
    aero::cli::apply_sampling_defaults(app, t.model->source().metadata(), sampling, &stop);
    if (app.count("--temperature") > 0) sampling.temperature = temperature;
    sampling.validate();
    aero::engine::Sampler sampler(sampling);
    // Like the Python tool: a prompt is one chat turn when the model has a template.
    aero::engine::Chat chat(*t.session, sampler, *t.tokenizer,
                            {.system = "", .max_tokens = max_tokens, .stop = stop, .template_variables = aero::Json::object()});
    if (!prompt.empty()) {
      chat.respond(prompt, aero::cli::show_text);
      std::printf("\n");
    }
    if (interactive) aero::cli::run_chat_loop(chat);
    return 0;
  }
  aero::fail("nothing to do: give --info, --prompt TEXT or --interactive");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const aero::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "aero-run: error: %s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "aero-run: error: %s\n", e.what());
  }
  return 1;
}
