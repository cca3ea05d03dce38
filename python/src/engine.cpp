// Generation for Python (aero._aero.Engine and Stream): a model, its tokenizer and one session
// on a backend; a Stream pulls tokens one at a time (engine::TokenGenerator) with the GIL
// released while the model runs, and checks for Ctrl-C between tokens.
#include <mutex>
#include <optional>
#include <thread>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "aero/backend/backend.h"
#include "aero/chat/template.h"
#include "aero/engine/chat.h"
#include "aero/engine/generate.h"
#include "aero/engine/sampler.h"
#include "aero/engine/placement.h"
#include "aero/engine/session.h"
#include "aero/json.h"
#include "aero/tokenizer/tokenizer.h"
#include "bindings.h"
#include "errors.h"

namespace aero::python {

namespace py = pybind11;

namespace {

// Text for Python: bytes that are not UTF-8 (a byte token on its own) become U+FFFD.
py::str to_str(const std::string& s) {
  PyObject* o = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace");
  if (!o) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(o);
}

void check_signals() {
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

struct EngineOptions {
  std::string device = "auto";
  unsigned threads = 0;          // 0: every core
  std::int64_t context = 0;      // 0: the model's, at most 4096
  std::string kv_type = "f16";
  std::string metadata_from;     // HF folder or GGUF with config/tokenizer
  std::string tokenizer;         // tokenizer.json, folder or GGUF instead of the model's
  std::string gpu_mem, ram;      // budgets ("8GiB"); empty: what the device has free, less a margin
};

struct Engine {
  std::string path;
  std::unique_ptr<backend::Backend> backend;
  std::unique_ptr<engine::Model> model;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  std::string no_tokenizer;  // why there is none
  std::unique_ptr<engine::Session> session;
  std::mutex mutex;               // one forward pass at a time, whichever thread asks
  std::uint64_t generation = 0;   // the stream that owns the session now

  const tokenizer::Tokenizer& tok() const {
    if (!tokenizer) fail("{} cannot take text: {} (from Python: tokenizer=..., or a prompt of token ids)", path, no_tokenizer);
    return *tokenizer;
  }
};
using EnginePtr = std::shared_ptr<Engine>;

EnginePtr open_engine(const std::string& path, const EngineOptions& o) {
  backend::KvType kv;
  try {
    kv = backend::kv_type_by_name(o.kv_type);
  } catch (const Error& e) {
    throw ArgumentError(e.what());
  }
  if (o.context < 0) fail_argument("context must be 0 (the model's) or more (got {})", o.context);
  auto e = std::make_shared<Engine>();
  e->path = path;
  // The device first: one that cannot be used fails before the model is read.
  const unsigned threads = o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  e->backend = backend::make_backend(o.device, threads);
  // Budgets place the layers as `aero run --gpu-mem/--ram` does (a bad size is one error line).
  const engine::Planner planner =
      engine::planner_for({.gpu_mem = o.gpu_mem, .ram = o.ram, .context = o.context, .kv_type = kv}, backend::choose_device(o.device));
  e->model = open_or_not_found(path, [&] { return engine::Model::open(path, o.metadata_from, {.planner = planner, .disk = {}}); });
  if (!o.tokenizer.empty()) {
    e->tokenizer = open_or_not_found(o.tokenizer, [&] {
      return std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::load(o.tokenizer));
    });
  } else {
    try {
      e->tokenizer = std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::from_metadata(e->model->source().metadata()));
    } catch (const Error& err) {
      e->no_tokenizer = err.what();
    }
  }
  if (e->tokenizer && e->tokenizer->size() > e->model->spec().vocab)
    fail("the tokenizer has {} tokens but the model only {} embeddings", e->tokenizer->size(), e->model->spec().vocab);
  if (o.context > e->model->spec().context)
    fail_argument("context {} is longer than the {} tokens this model was trained for", o.context, e->model->spec().context);
  e->session = std::make_unique<engine::Session>(*e->model, *e->backend, engine::SessionOptions{.context = o.context, .kv_type = kv});
  return e;
}

// What a generation is asked for (the keyword arguments of Engine.generate / AeroModel.generate).
struct StreamRequest {
  std::vector<std::int32_t> prompt;
  bool text = true;  // yield text pieces; else token ids
  engine::GenerateOptions generate;
  engine::SamplingParams sampling;
  std::vector<std::string> stop;
};

class Stream {
 public:
  Stream(EnginePtr engine, StreamRequest request)
      : engine_(std::move(engine)),
        prompt_(std::move(request.prompt)),
        text_(request.text),
        sampler_(checked(request.sampling)),
        stops_(request.stop) {
    const auto& spec = engine_->model->spec();
    if (prompt_.empty()) fail_argument("the prompt is empty: generation needs at least one token");
    for (auto id : prompt_)
      if (id < 0 || id >= spec.vocab) fail_argument("token id {} is outside the vocabulary (0..{})", id, spec.vocab - 1);
    if (static_cast<std::int64_t>(prompt_.size()) > engine_->session->context())
      fail_argument("the prompt has {} tokens but the context holds {} (raise context=)", prompt_.size(),
                    engine_->session->context());
    if (text_ || !request.stop.empty()) decoder_.emplace(engine_->tok());
    py::gil_scoped_release release;
    std::lock_guard lock(engine_->mutex);
    generation_ = ++engine_->generation;
    engine_->session->reset();
    generator_.emplace(*engine_->session, sampler_, prompt_, std::move(request.generate));
  }

  // The next piece of text (or id); nullopt at the end.
  std::optional<py::object> step() {
    while (!finished_) {
      std::optional<std::int32_t> token;
      bool superseded = false;
      try {
        py::gil_scoped_release release;
        std::lock_guard lock(engine_->mutex);
        superseded = engine_->generation != generation_;
        if (!superseded) token = generator_->next();
      } catch (...) {
        finished_ = true;
        throw;
      }
      if (superseded) {
        finished_ = true;
        fail("this generation was cut off: a later generate() or chat() on the same engine took its session");
      }
      if (!token) {
        finished_ = true;
        if (text_ && !stops_.stopped()) {
          const std::string rest = stops_.push(decoder_->finish()) + stops_.finish();
          if (!rest.empty()) return to_str(rest);
        }
        return std::nullopt;
      }
      tokens_.push_back(*token);
      std::string piece = decoder_ ? stops_.push(decoder_->push(*token)) : std::string();
      if (stops_.stopped()) finished_ = true;
      if (!text_) {
        if (finished_) return std::nullopt;  // the token that completed a stop string is not handed out
        return py::int_(*token);
      }
      if (!piece.empty()) return to_str(piece);
      check_signals();
    }
    return std::nullopt;
  }

  py::object next() {
    auto piece = step();
    if (!piece) throw py::stop_iteration();
    return *piece;
  }

  // Everything left: the text joined, or the ids as a list; Ctrl-C stops it between tokens.
  py::object rest() {
    std::string text;
    py::list ids;
    while (auto piece = step()) {
      if (text_)
        text += piece->cast<std::string>();
      else
        ids.append(*piece);
      check_signals();
    }
    if (text_) return to_str(text);
    return ids;
  }

  const std::vector<std::int32_t>& prompt() const { return prompt_; }
  const std::vector<std::int32_t>& tokens() const { return tokens_; }
  const engine::GenerationStats& stats() const { return generator_->stats(); }

 private:
  static const engine::SamplingParams& checked(const engine::SamplingParams& p) {
    try {
      p.validate();
    } catch (const Error& e) {
      throw ArgumentError(e.what());
    }
    return p;
  }

  EnginePtr engine_;
  std::vector<std::int32_t> prompt_;  // the generator views it
  bool text_;
  engine::Sampler sampler_;
  engine::StopStrings stops_;
  std::optional<tokenizer::StreamDecoder> decoder_;
  std::optional<engine::TokenGenerator> generator_;
  std::uint64_t generation_ = 0;
  std::vector<std::int32_t> tokens_;
  bool finished_ = false;
};

std::vector<std::int32_t> chat_prompt(const Engine& e, const std::string& messages_json, bool add_generation_prompt,
                                      const std::string& variables_json) {
  const auto& tok = e.tok();
  const Json messages = parse_json(messages_json, "messages");
  if (!messages.is_array()) fail_argument("messages must be a list of {{'role': ..., 'content': ...}} dicts");
  for (const auto& m : messages)
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      fail_argument("messages must be a list of {{'role': ..., 'content': ...}} dicts");
  chat::ChatOptions options;
  options.add_generation_prompt = add_generation_prompt;
  const auto& v = tok.vocab();
  auto token_text = [&](std::int32_t id) { return id >= 0 && id < tok.size() ? v.tokens[id] : std::string(); };
  options.bos_token = token_text(v.bos);
  options.eos_token = token_text(v.eos);
  options.extra = parse_json(variables_json, "template variables");
  const auto prompt = chat::apply_chat_template(engine::model_chat_template(tok), messages, options);
  return engine::tokenize_prompt(tok, prompt);
}

}  // namespace

void bind_engine(py::module_& m) {
  py::class_<EngineOptions>(m, "EngineOptions", "How an Engine opens its model (the flags `aero run` takes).")
      .def(py::init<>())
      .def_readwrite("device", &EngineOptions::device)
      .def_readwrite("threads", &EngineOptions::threads)
      .def_readwrite("context", &EngineOptions::context)
      .def_readwrite("kv_type", &EngineOptions::kv_type)
      .def_readwrite("metadata_from", &EngineOptions::metadata_from)
      .def_readwrite("tokenizer", &EngineOptions::tokenizer)
      .def_readwrite("gpu_mem", &EngineOptions::gpu_mem)
      .def_readwrite("ram", &EngineOptions::ram);

  py::class_<engine::SamplingParams>(m, "SamplingParams", "Sampling as `aero run` does it (llama.cpp's order and defaults).")
      .def(py::init<>())
      .def_readwrite("temperature", &engine::SamplingParams::temperature)
      .def_readwrite("top_k", &engine::SamplingParams::top_k)
      .def_readwrite("top_p", &engine::SamplingParams::top_p)
      .def_readwrite("min_p", &engine::SamplingParams::min_p)
      .def_readwrite("repeat_penalty", &engine::SamplingParams::repeat_penalty)
      .def_readwrite("presence_penalty", &engine::SamplingParams::presence_penalty)
      .def_readwrite("frequency_penalty", &engine::SamplingParams::frequency_penalty)
      .def_readwrite("repeat_last_n", &engine::SamplingParams::repeat_last_n)
      .def_readwrite("seed", &engine::SamplingParams::seed);

  py::class_<Engine, EnginePtr>(m, "Engine", "A model with its tokenizer and one session on a backend.")
      .def(py::init(&open_engine), py::arg("path"), py::arg("options"))
      .def_property_readonly("path", [](const Engine& e) { return e.path; })
      .def_property_readonly("backend", [](const Engine& e) { return e.backend->name(); })
      .def_property_readonly("context", [](const Engine& e) { return e.session->context(); })
      .def_property_readonly("vocab_size", [](const Engine& e) { return e.model->spec().vocab; })
      .def_property_readonly("architecture", [](const Engine& e) { return e.model->spec().architecture; })
      .def_property_readonly("has_tokenizer", [](const Engine& e) { return e.tokenizer != nullptr; })
      .def_property_readonly("eos_ids", [](const Engine& e) { return e.model->spec().eos_ids; })
      .def("tokenize_prompt", [](const Engine& e, const std::string& text) { return engine::tokenize_prompt(e.tok(), text); },
           py::arg("text"), "Ids of a prompt as `aero run -p` makes them (BOS as the model asks, special tokens parsed).")
      .def(
          "tokenize",
          [](const Engine& e, const std::string& text, bool add_special, bool parse_special) {
            return e.tok().encode(text, add_special, parse_special);
          },
          py::arg("text"), py::arg("add_special") = true, py::arg("parse_special") = false)
      .def(
          "decode",
          [](const Engine& e, const std::vector<std::int32_t>& ids, bool special) { return to_str(e.tok().decode(ids, special)); },
          py::arg("ids"), py::arg("special") = false)
      .def("chat_prompt", &chat_prompt, py::arg("messages_json"), py::arg("add_generation_prompt") = true,
           py::arg("variables_json") = "{}", "Ids of a conversation rendered with the model's chat template.")
      .def_property_readonly("end_of_generation",
                             [](const Engine& e) {
                               return e.tokenizer ? e.tokenizer->vocab().end_of_generation : std::vector<std::int32_t>{};
                             })
      .def(
          "start",
          [](const EnginePtr& e, std::vector<std::int32_t> prompt, bool text, std::int64_t max_tokens,
             const engine::SamplingParams& sampling, std::vector<std::string> stop, bool stop_at_eos,
             std::vector<std::int32_t> extra_stop_ids) {
            if (max_tokens < 0) fail_argument("max_tokens must be 0 or more (got {})", max_tokens);
            StreamRequest r{std::move(prompt), text, {max_tokens, stop_at_eos, std::move(extra_stop_ids)}, sampling, std::move(stop)};
            return std::make_unique<Stream>(e, std::move(r));
          },
          py::arg("prompt"), py::arg("text"), py::arg("max_tokens"), py::arg("sampling"), py::arg("stop"),
          py::arg("stop_at_eos"), py::arg("extra_stop_ids"),
          "A Stream generating from PROMPT (ids); a later start() on this engine ends it.");

  py::class_<Stream>(m, "Stream", "Tokens as they are generated: text pieces, or ids.")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", &Stream::next)
      .def("rest", &Stream::rest, "Everything not yet taken: the text joined, or a list of ids.")
      .def_property_readonly("prompt", &Stream::prompt)
      .def_property_readonly("tokens", &Stream::tokens, "The ids generated so far.")
      .def_property_readonly("stats", [](const Stream& s) {
        const auto& st = s.stats();
        py::dict d;
        d["prompt_tokens"] = st.prompt_tokens;
        d["prompt_seconds"] = st.prompt_seconds;
        d["generated_tokens"] = st.generated_tokens;
        d["generation_seconds"] = st.generation_seconds;
        d["stopped_by_eos"] = st.stopped_by_eos;
        return d;
      });
}

}  // namespace aero::python
