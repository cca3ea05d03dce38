#include "aero/error.h"
#include "aero/format/aero_validate.h"
#include "aero/parallel.h"
#include "cli/commands.h"
#include "cli/display.h"

#include <chrono>

namespace aero::cli {

void add_validate_command(CLI::App& app) {
  struct Options {
    std::string path;
    bool control = false, full = false, quiet = false;
    unsigned threads = 0;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("validate", "Check a model's integrity; exit 0 when clean, 1 with one line per problem");
  cmd->add_option("file", opt->path, "a .aero file or AEROSET")->required();
  auto* control = cmd->add_flag("--control", opt->control, "check only the control-plane digest (IHSH)");
  cmd->add_flag("--full", opt->full, "also hash every weight shard, page and tensor")->excludes(control);
  cmd->add_option("-t,--threads", opt->threads, "hashing threads (default: all cores)");
  cmd->add_flag("-q,--quiet", opt->quiet, "print problems only");
  cmd->callback([opt] {
    auto level = opt->control ? format::ValidationLevel::Control
                 : opt->full  ? format::ValidationLevel::Full
                              : format::ValidationLevel::Standard;
    auto start = std::chrono::steady_clock::now();
    auto report = format::validate(opt->path, level, opt->threads ? opt->threads : default_thread_count());
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (const auto& w : report.warnings) fmt::print(stderr, "warning: {}\n", w);
    for (const auto& e : report.errors) fmt::print(stderr, "error: {}\n", e);
    if (!report.ok()) throw CLI::RuntimeError(1);
    if (!opt->quiet) {
      std::string rate;
      if (report.bytes_hashed >= (1u << 20))  // a rate over a few KiB says nothing
        rate = fmt::format(", hashed {} in {:.3f} s ({:.2f} GB/s)", human_bytes(report.bytes_hashed), seconds,
                           report.bytes_hashed / seconds / 1e9);
      fmt::print("{}: OK{}\n", opt->path, rate);
    }
  });
}

}  // namespace aero::cli
