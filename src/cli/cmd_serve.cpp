// aero serve: an OpenAI- and Ollama-compatible HTTP server with continuous batching.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "aero/engine/chat.h"
#include "aero/error.h"
#include "aero/server/scheduler.h"
#include "cli/commands.h"
#include "cli/model_options.h"
#include "cli/placement.h"
#include "server/http_server.h"

namespace aero::cli {

namespace {

// SIGINT/SIGTERM are taken by one thread (blocked everywhere else: blocked before any other
// thread starts, which inherit the mask): the first finishes the requests in flight and stops,
// a second ends them at once.
sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

class SignalWatcher {
 public:
  explicit SignalWatcher(server::HttpServer& http) {
    thread_ = std::thread([this, &http] {
      const sigset_t set = stop_signals();
      int seen = 0;
      const timespec poll{0, 200'000'000};
      while (!done_) {
        if (sigtimedwait(&set, nullptr, &poll) < 0) continue;
        if (++seen == 1) {
          std::fprintf(stderr, "aero: finishing the requests in flight, then stopping (again to stop now)\n");
          shutdown_ = std::thread([&http] { http.shutdown(); });
        } else {
          std::fprintf(stderr, "aero: stopping now\n");
          http.stop_now();
        }
      }
    });
  }
  ~SignalWatcher() {
    done_ = true;
    thread_.join();
    if (shutdown_.joinable()) shutdown_.join();
  }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_, shutdown_;
};

}  // namespace

void add_serve_command(CLI::App& app) {
  struct Options {
    ModelOptions model;
    std::string tokenizer, host = "127.0.0.1", api_key, alias;
    int port = 8080, parallel = 4;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("serve", "Serve a model over HTTP: OpenAI and Ollama APIs, a chat page at /");
  opt->model.add_to(*cmd);
  opt->model.add_budgets_to(*cmd);
  cmd->add_option("--host", opt->host, "address to listen on (default 127.0.0.1: this machine only)");
  cmd->add_option("--port", opt->port, "port (default 8080; 0: any free port)")->check(CLI::Range(0, 65535));
  cmd->add_option("--parallel", opt->parallel, "sequences decoded at once, each with its own context (default 4)")
      ->check(CLI::Range(1, 256));
  cmd->add_option("--api-key", opt->api_key, "require 'Authorization: Bearer KEY' (the page and /health stay open)");
  cmd->add_option("--model-alias", opt->alias, "the model's name in the API (default: the file's name)");
  cmd->add_option("--tokenizer", opt->tokenizer, "tokenizer.json, folder or GGUF to use instead of the model's");
  cmd->callback([opt] {
    if (opt->model.show_plan) return print_plan(opt->model);
    const sigset_t signals = stop_signals();
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before the backend's and scheduler's threads start
    auto backend = opt->model.backend();
    auto model = engine::Model::open(opt->model.model, opt->model.config,
                                     opt->model.model_options(backend::choose_device(opt->model.device)));
    auto tok = opt->tokenizer.empty() ? tokenizer::Tokenizer::from_metadata(model->source().metadata())
                                      : tokenizer::Tokenizer::load(opt->tokenizer);
    if (tok.size() > model->spec().vocab)
      fail("the tokenizer has {} tokens but the model only {} embeddings", tok.size(), model->spec().vocab);
    bool fallback = false;
    const chat::Template chat_template = engine::model_chat_template(tok, &fallback);
    const auto session = opt->model.session();
    server::Scheduler scheduler(*model, *backend, tok,
                                {.slots = opt->parallel, .context = session.context, .kv_type = session.kv_type});

    server::ServerOptions options;
    options.host = opt->host;
    options.port = opt->port;
    options.api_key = opt->api_key;
    options.model_name = opt->alias.empty() ? std::filesystem::path(opt->model.model).filename().string() : opt->alias;
    const auto& spec = model->spec();
    options.model_details = {{"architecture", spec.architecture}, {"context", scheduler.context()},
                             {"slots", scheduler.slots()},        {"vocab", spec.vocab},
                             {"layers", spec.layers},             {"size", model->weight_bytes_per_token()},
                             {"backend", backend->name()}};
    server::HttpServer http(scheduler, chat_template, options);
    const int port = http.bind();
    if (fallback) std::fprintf(stderr, "aero: the model has no chat template; chat requests use ChatML\n");
    std::fprintf(stderr, "aero: serving %s on http://%s:%d (%d slots of %lld tokens, %s)\n", options.model_name.c_str(),
                 opt->host.c_str(), port, scheduler.slots(), static_cast<long long>(scheduler.context()),
                 backend->name().c_str());
    {
      SignalWatcher watcher(http);
      http.run();
    }
    std::fprintf(stderr, "aero: stopped\n");
  });
}

}  // namespace aero::cli
