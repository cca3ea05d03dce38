// aero: one command line for inspecting, validating, converting and running models.
#include <cstdio>
#include <exception>
#include <new>

#include "aero/error.h"
#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"aero: run large language models from .aero, GGUF, safetensors and Hugging Face folders"};
  app.name("aero");
  app.set_version_flag("--version", "aero 0.1.0");
  app.require_subcommand(1);
  app.fallthrough(false);
  aero::cli::add_info_command(app);
  aero::cli::add_validate_command(app);
  aero::cli::add_list_command(app);
  aero::cli::add_extract_command(app);
  aero::cli::add_convert_command(app);
  aero::cli::add_quantize_command(app);
  aero::cli::add_run_command(app);
  aero::cli::add_chat_command(app);
  aero::cli::add_logits_command(app);
  aero::cli::add_synth_command(app);
  aero::cli::add_bench_command(app);
  aero::cli::add_tokenize_command(app);
  aero::cli::add_template_command(app);
  aero::cli::add_pull_command(app);
  aero::cli::add_serve_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version print and exit 0, a command's CLI::RuntimeError carries its own exit
    // status (its message is printed already); a bad flag is one line, exit 2 (a usage error).
    if (e.get_exit_code() == 0 || dynamic_cast<const CLI::RuntimeError*>(&e)) return app.exit(e);
    std::fprintf(stderr, "%s: error: %s (see --help)\n", "aero", e.what());
    return 2;
  } catch (const aero::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "aero: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "aero: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "aero: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
