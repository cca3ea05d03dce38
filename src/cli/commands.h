// Each `aero` subcommand registers its flags and its action on the shared CLI11 app.
#pragma once

#include <CLI/CLI.hpp>

namespace aero::cli {

void add_info_command(CLI::App& app);
void add_validate_command(CLI::App& app);
void add_list_command(CLI::App& app);
void add_extract_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_logits_command(CLI::App& app);
void add_synth_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_chat_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_template_command(CLI::App& app);
void add_pull_command(CLI::App& app);
void add_serve_command(CLI::App& app);

}  // namespace aero::cli
