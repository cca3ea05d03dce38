// The HTTP side of `aero serve`: OpenAI's and Ollama's endpoints, the chat page, health and
// metrics, over cpp-httplib, in front of a Scheduler.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "aero/chat/template.h"
#include "aero/json.h"
#include "aero/server/scheduler.h"

namespace aero::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                      // 0: any free port (bind() says which)
  std::string api_key;                  // empty: no key asked for
  std::string model_name;               // the id /v1/models and every response give
  std::size_t max_body_bytes = 8 << 20;  // larger request bodies get 413
  int http_threads = 256;               // connections served at once (streams hold one each)
  Json model_details = Json::object();  // shown by /v1/models, /api/tags and the chat page
};

class HttpServer {
 public:
  HttpServer(Scheduler& scheduler, const chat::Template& chat_template, ServerOptions options);
  ~HttpServer();

  // Binds the listening socket; returns the port. Throws aero::Error when it cannot.
  int bind();
  // Serves until shutdown() or stop_now(); returns once every connection is closed.
  void run();
  // Refuses new generation requests (503), lets the ones in flight finish, then stops.
  // Callable from any thread (a signal handler thread).
  void shutdown();
  // Ends the requests in flight as well (a second Ctrl-C).
  void stop_now();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace aero::server
