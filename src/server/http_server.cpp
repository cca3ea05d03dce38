#include "server/http_server.h"

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>

#include <httplib.h>

#include "aero/error.h"
#include "server/chat_page.h"
#include "server/request.h"
#include "server/responses.h"

namespace aero::server {

namespace {

// Debian's cpp-httplib listens with a backlog of 5 (fixed when the library was built): 64
// clients connecting at once would see dropped connections and one-second retries. listen()
// again on the bound socket raises it.
class Listener : public httplib::Server {
 public:
  void widen_backlog() { ::listen(svr_sock_, SOMAXCONN); }
};

// Routes as /metrics names them (anything else is "other": a scanner cannot add series).
const char* const kRoutes[] = {"/", "/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions",
                               "/chat/completions", "/completions", "/api/chat", "/api/generate", "/api/tags",
                               "/api/version"};

bool same_key(std::string_view a, std::string_view b) {
  // Compares every byte whatever the first difference: the time says nothing about the key.
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

void send_json(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e, bool ollama) {
  send_json(res, e.status, ollama ? Json{{"error", e.what()}} : openai_error(e));
}

}  // namespace

struct HttpServer::Impl {
  Scheduler& scheduler;
  const chat::Template& chat_template;
  ServerOptions options;
  Listener http;
  std::int64_t started = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count();
  std::atomic<bool> draining{false};
  std::once_flag stopped;

  std::mutex mutex;  // guards what follows
  std::condition_variable drained;
  int in_flight = 0;
  std::vector<std::weak_ptr<Job>> jobs;
  std::map<std::pair<std::string, int>, std::int64_t> responses;  // (route, status) → count

  Impl(Scheduler& s, const chat::Template& t, ServerOptions o) : scheduler(s), chat_template(t), options(std::move(o)) {}

  // Counts a generation request as in flight from its first line to its last byte:
  // shutdown() waits for none to be left before it closes connections.
  struct InFlight {
    Impl& server;
    explicit InFlight(Impl& s) : server(s) {
      std::lock_guard lock(server.mutex);
      ++server.in_flight;
    }
    ~InFlight() {
      std::lock_guard lock(server.mutex);
      --server.in_flight;
      server.drained.notify_all();
    }
  };

  // One generation request from its parsed body to its last byte. Lives as long as the
  // response (held by its content provider): when it goes, the request's job is cancelled
  // (a no-op once finished).
  struct Exchange {
    std::unique_ptr<InFlight> ticket;
    ApiRequest request;
    std::shared_ptr<Job> job;
    ResponseWriter writer;
    Exchange(Impl& s, std::unique_ptr<InFlight> t, ApiRequest r, std::shared_ptr<Job> j, std::string id)
        : ticket(std::move(t)), request(std::move(r)), job(std::move(j)),
          writer(request, std::move(id), s.options.model_name, s.scheduler.tokenizer()) {}
    ~Exchange() { job->cancel(); }
  };

  void generate(const httplib::Request& req, httplib::Response& res, Endpoint endpoint) {
    const bool ollama = is_ollama(endpoint);
    auto ticket = std::make_unique<InFlight>(*this);  // before the check: shutdown() sets draining first
    try {
      if (draining) throw ApiError(503, "The server is shutting down.", "server_error");
      ApiRequest request = parse_request(endpoint, req.body);
      if (endpoint == Endpoint::OllamaGenerate && request.prompt.empty()) {
        // Ollama's clients load a model with an empty prompt: nothing to run.
        send_json(res, 200, {{"model", options.model_name}, {"response", ""}, {"done", true}, {"done_reason", "load"}});
        return;
      }
      const auto ids = prompt_tokens(request, scheduler.tokenizer(), chat_template);
      const bool chat = !request.messages.empty();
      if (static_cast<std::int64_t>(ids.size()) >= scheduler.context())
        throw ApiError(400,
                       fmt::format("This model's maximum context length is {} tokens. However, your {} resulted in {} "
                                   "tokens, which leaves no room for an answer.",
                                   scheduler.context(), chat ? "messages" : "prompt", ids.size()),
                       "invalid_request_error", chat ? "messages" : "prompt", "context_length_exceeded");
      std::shared_ptr<Job> job;
      try {
        job = scheduler.submit({ids, request.sampling, request.max_tokens, request.stop, true, request.logprobs});
      } catch (const Error& e) {
        throw ApiError(draining ? 503 : 400, e.what(), draining ? "server_error" : "invalid_request_error");
      }
      {
        std::lock_guard lock(mutex);
        std::erase_if(jobs, [](const auto& j) { return j.expired(); });
        jobs.push_back(job);
      }
      const char* prefix = endpoint == Endpoint::ChatCompletions ? "chatcmpl" : "cmpl";
      auto exchange = std::make_shared<Exchange>(*this, std::move(ticket), std::move(request), job, new_response_id(prefix));
      res.set_header("Cache-Control", "no-cache");
      // Chunked in both modes: the provider runs while the client is connected and notices
      // when it leaves (a failed write, or a poll between tokens), which cancels the job.
      res.set_chunked_content_provider(exchange->writer.content_type(), [exchange](std::size_t, httplib::DataSink& sink) {
        for (;;) {
          const JobUpdate update = exchange->job->take(std::chrono::milliseconds(100));
          const std::string bytes = exchange->writer.write(update);
          if (!bytes.empty() && !sink.write(bytes.data(), bytes.size())) return false;
          if (update.finished) {
            sink.done();
            return true;
          }
          if (bytes.empty() && !sink.is_writable()) return false;
        }
      });
    } catch (const ApiError& e) {
      send_error(res, e, ollama);
    }
  }

  void models(httplib::Response& res) {
    Json model = {{"id", options.model_name}, {"object", "model"}, {"created", started}, {"owned_by", "aero"},
                  {"meta", options.model_details}};
    send_json(res, 200, {{"object", "list"}, {"data", Json::array({model})}});
  }

  void tags(httplib::Response& res) {
    const Json& d = options.model_details;
    Json model = {{"name", options.model_name},
                  {"model", options.model_name},
                  {"modified_at", "1970-01-01T00:00:00Z"},
                  {"size", d.value("size", std::int64_t{0})},
                  {"digest", ""},
                  {"details",
                   {{"format", d.value("format", "")},
                    {"family", d.value("architecture", "")},
                    {"families", Json::array({d.value("architecture", "")})},
                    {"parameter_size", d.value("parameters", "")},
                    {"quantization_level", d.value("type", "")}}}};
    send_json(res, 200, {{"models", Json::array({model})}});
  }

  std::string metrics() {
    const SchedulerStats s = scheduler.stats();
    std::string out;
    auto metric = [&](const char* name, const char* type, const char* help, const std::string& samples) {
      out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{}", name, help, name, type, samples);
    };
    std::string by_route;
    {
      std::lock_guard lock(mutex);
      for (const auto& [key, count] : responses)
        by_route += fmt::format("aero_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, count);
    }
    metric("aero_requests_total", "counter", "HTTP responses by route and status.", by_route);
    metric("aero_sequences_total", "counter", "Generation requests by how they ended.",
           fmt::format("aero_sequences_total{{outcome=\"finished\"}} {}\naero_sequences_total{{outcome=\"cancelled\"}} "
                       "{}\naero_sequences_total{{outcome=\"failed\"}} {}\n",
                       s.finished, s.cancelled, s.failed));
    metric("aero_prompt_tokens_total", "counter", "Prompt tokens of the requests admitted.",
           fmt::format("aero_prompt_tokens_total {}\n", s.prompt_tokens));
    metric("aero_prompt_tokens_cached_total", "counter", "Prompt tokens taken from a slot's cache, not recomputed.",
           fmt::format("aero_prompt_tokens_cached_total {}\n", s.cached_prompt_tokens));
    metric("aero_generated_tokens_total", "counter", "Tokens generated.",
           fmt::format("aero_generated_tokens_total {}\n", s.generated_tokens));
    metric("aero_generation_tokens_per_second", "gauge", "Tokens generated per second over the last 10 seconds.",
           fmt::format("aero_generation_tokens_per_second {:.3f}\n", s.recent_tokens_per_second));
    metric("aero_forward_seconds_total", "counter", "Time spent in forward passes.",
           fmt::format("aero_forward_seconds_total {:.6f}\n", s.busy_seconds));
    metric("aero_steps_total", "counter", "Forward passes (batch steps).", fmt::format("aero_steps_total {}\n", s.steps));
    metric("aero_queue_depth", "gauge", "Requests waiting for a slot.", fmt::format("aero_queue_depth {}\n", s.queued));
    metric("aero_slots_busy", "gauge", "Slots running a sequence.", fmt::format("aero_slots_busy {}\n", s.running));
    metric("aero_slots_total", "gauge", "Slots (sequences run at once).", fmt::format("aero_slots_total {}\n", s.slots));
    return out;
  }

  void install_routes() {
    http.set_payload_max_length(options.max_body_bytes);
    // httplib's default sets SO_REUSEPORT, which lets a second server bind the same port and
    // silently share its connections: SO_REUSEADDR alone (a restart may bind at once) refuses it.
    http.set_socket_options([](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    // Idle keep-alive connections hold a thread each and delay shutdown by up to this much. Longer
    // than clients keep an idle connection (Node's fetch: 4 s), so that a client never sends on a
    // connection the server is closing (the openai client without retries saw "Connection error"
    // after a 2-4 s pause with 2 s here).
    http.set_keep_alive_timeout(5);
    http.set_keep_alive_max_count(1000);
    const int threads = std::max(4, options.http_threads);
    http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };

    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (options.api_key.empty() || req.path == "/" || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
      const std::string auth = req.get_header_value("Authorization");
      if (auth.starts_with("Bearer ") && same_key(std::string_view(auth).substr(7), options.api_key))
        return httplib::Server::HandlerResponse::Unhandled;
      send_error(res,
                 ApiError(401, auth.empty() ? "You didn't provide an API key (Authorization: Bearer KEY)."
                                            : "Incorrect API key provided.",
                          "invalid_request_error", "", "invalid_api_key"),
                 req.path.starts_with("/api/"));
      return httplib::Server::HandlerResponse::Handled;
    });
    // Errors httplib answers itself (no route, a body over the limit, a malformed request)
    // get the same error objects as the rest.
    http.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      std::string message;
      std::string code;
      if (res.status == 404) {
        message = fmt::format("Unknown request URL: {} {}.", req.method, req.path);
        code = "unknown_url";
      } else if (res.status == 413) {
        message = fmt::format("The request body is larger than the limit of {} bytes.", options.max_body_bytes);
        code = "request_too_large";
      } else {
        message = fmt::format("The request could not be read (HTTP {}).", res.status);
      }
      send_error(res, ApiError(res.status, message, "invalid_request_error", "", code), req.path.starts_with("/api/"));
      return httplib::Server::HandlerResponse::Handled;
    }));
    http.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send_error(res, ApiError(500, what, "server_error"), req.path.starts_with("/api/"));
    });
    http.set_post_routing_handler([this](const httplib::Request& req, const httplib::Response& res) {
      std::string route = "other";
      for (const char* r : kRoutes)
        if (req.path == r) route = r;
      std::lock_guard lock(mutex);
      ++responses[{route, res.status}];
    });

    http.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(chat_page_html()), "text/html; charset=utf-8");
    });
    http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      if (draining) send_json(res, 503, {{"status", "shutting down"}});
      else send_json(res, 200, {{"status", "ok"}});
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics(), "text/plain; version=0.0.4");
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) { models(res); });
    http.Get("/api/tags", [this](const httplib::Request&, httplib::Response& res) { tags(res); });
    http.Get("/api/version", [](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, {{"version", "0.1.0"}});
    });
    auto route = [this](Endpoint e) {
      return [this, e](const httplib::Request& req, httplib::Response& res) { generate(req, res, e); };
    };
    http.Post("/v1/chat/completions", route(Endpoint::ChatCompletions));
    http.Post("/chat/completions", route(Endpoint::ChatCompletions));
    http.Post("/v1/completions", route(Endpoint::Completions));
    http.Post("/completions", route(Endpoint::Completions));
    http.Post("/api/chat", route(Endpoint::OllamaChat));
    http.Post("/api/generate", route(Endpoint::OllamaGenerate));
  }
};

HttpServer::HttpServer(Scheduler& scheduler, const chat::Template& chat_template, ServerOptions options)
    : impl_(std::make_unique<Impl>(scheduler, chat_template, std::move(options))) {
  impl_->install_routes();
}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  auto& o = impl_->options;
  int port = o.port;
  if (port == 0) port = impl_->http.bind_to_any_port(o.host);
  else if (!impl_->http.bind_to_port(o.host, port)) port = -1;
  if (port <= 0) fail("cannot listen on {}:{} (in use, or not an address of this machine)", o.host, o.port);
  impl_->http.widen_backlog();
  return port;
}

void HttpServer::run() { impl_->http.listen_after_bind(); }

void HttpServer::shutdown() {
  auto& im = *impl_;
  im.draining = true;
  im.scheduler.close();
  {
    std::unique_lock lock(im.mutex);
    im.drained.wait(lock, [&] { return im.in_flight == 0; });
  }
  std::call_once(im.stopped, [&] { im.http.stop(); });
}

void HttpServer::stop_now() {
  auto& im = *impl_;
  im.draining = true;
  im.scheduler.close();
  {
    std::lock_guard lock(im.mutex);
    for (auto& weak : im.jobs)
      if (auto job = weak.lock()) job->cancel();
  }
  std::call_once(im.stopped, [&] { im.http.stop(); });
}

}  // namespace aero::server
