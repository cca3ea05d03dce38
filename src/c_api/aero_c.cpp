// The C ABI (include/aero/aero.h) over the C++ library: every entry point catches everything,
// records the message for aero_last_error() and returns its failure value.
#include "aero/aero.h"

#include <algorithm>
#include <cctype>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "aero/backend/backend.h"
#include "aero/engine/chat.h"
#include "aero/engine/generate.h"
#include "aero/engine/sampler.h"
#include "aero/engine/session.h"
#include "aero/error.h"
#include "aero/format/model_source.h"
#include "aero/parallel.h"
#include "aero/quant/types.h"
#include "aero/tokenizer/tokenizer.h"

struct aero_model {
  // The source serves the tensor functions (files that are no runnable model, such as a bag of
  // quantized tensors, still list and decode); the engine's Model, made when a session first
  // needs the forward pass, maps the same file again (the pages are shared).
  std::string name;
  std::unique_ptr<aero::format::ModelSource> source;
  std::unique_ptr<aero::engine::Model> engine;
  std::optional<aero::tokenizer::Tokenizer> tokenizer;
  bool tokenizer_tried = false;
  std::vector<std::string> type_names;
  std::mutex mutex;  // guards engine creation, the tokenizer and the f32 copies
  std::unordered_map<std::size_t, std::vector<float>> f32;

  const aero::format::ModelSource& src() const { return *source; }
};

struct aero_session {
  aero_model* model;
  std::unique_ptr<aero::backend::Backend> backend;
  std::unique_ptr<aero::engine::Session> session;
};

namespace {

thread_local std::string g_last_error;

// Runs `body`, turning any exception into `failed` and a message.
template <class Body, class Result>
Result guarded(Body&& body, Result failed) noexcept {
  try {
    g_last_error.clear();
    return body();
  } catch (const std::bad_alloc&) {
    g_last_error = "out of memory";
  } catch (const std::exception& e) {
    g_last_error = e.what();
  } catch (...) {
    g_last_error = "unknown error";
  }
  return failed;
}

void require(const void* p, const char* what) {
  if (!p) aero::fail("{} is NULL", what);
}

const aero::format::SourceTensor& tensor_at(const aero_model* m, std::size_t index) {
  require(m, "model");
  const auto& tensors = m->src().tensors();
  if (index >= tensors.size()) aero::fail("tensor index {} is out of range (the model has {})", index, tensors.size());
  return tensors[index];
}

std::uint64_t elements(const aero::format::SourceTensor& t) {
  std::uint64_t n = 1;
  for (auto d : t.shape) n *= d;
  return n;
}

aero::tokenizer::Tokenizer* tokenizer_of(aero_model* m) {
  std::lock_guard lock(m->mutex);
  if (!m->tokenizer_tried) {
    m->tokenizer_tried = true;
    try {
      m->tokenizer.emplace(aero::tokenizer::Tokenizer::from_metadata(m->src().metadata()));
    } catch (const aero::Error&) {
      // A model without a tokenizer still generates from ids.
    }
  }
  return m->tokenizer ? &*m->tokenizer : nullptr;
}

aero::engine::SamplingParams sampling_of(const aero_generate_options& o) {
  aero::engine::SamplingParams p;
  p.temperature = o.temperature;
  p.top_k = o.top_k;
  p.top_p = o.top_p;
  p.min_p = o.min_p;
  p.repeat_penalty = o.repeat_penalty;
  p.seed = o.seed;
  p.validate();
  return p;
}

std::int64_t run_generation(aero_session* s, std::vector<std::int32_t> prompt, const aero_generate_options* options,
                            aero_token_callback callback, void* user_data) {
  const aero_generate_options o = options ? *options : aero_generate_default_options();
  aero::engine::Sampler sampler(sampling_of(o));
  aero::tokenizer::Tokenizer* tok = tokenizer_of(s->model);
  std::optional<aero::tokenizer::StreamDecoder> decoder;
  if (tok) decoder.emplace(*tok);
  aero::engine::GenerateOptions g{.max_tokens = o.max_tokens, .stop_at_eos = o.ignore_eos == 0, .extra_stop_ids = {}};
  if (tok && o.ignore_eos == 0) g.extra_stop_ids = tok->vocab().end_of_generation;
  std::int64_t produced = 0;
  aero::engine::generate(*s->session, sampler, prompt, g, [&](std::int32_t id) {
    ++produced;
    const std::string piece = decoder ? decoder->push(id) : std::string();
    return !callback || callback(piece.data(), piece.size(), id, user_data) == 0;
  });
  return produced;
}

}  // namespace

extern "C" {

const char* aero_last_error(void) { return g_last_error.c_str(); }

aero_model* aero_model_open(const char* name) {
  return guarded(
      [&]() -> aero_model* {
        require(name, "model name");
        auto m = std::make_unique<aero_model>();
        m->name = name;
        m->source = aero::format::ModelSource::open(name);
        for (const auto& t : m->source->tensors()) {
          std::string type;
          if (auto g = aero::format::ggml_type_of(t.dtype, t.ggml_type))
            type = std::string(aero::quant::type_traits(static_cast<std::uint32_t>(*g))->name);
          else
            type = std::string(aero::format::dtype_name(t.dtype));
          for (auto& c : type) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
          m->type_names.push_back(std::move(type));
        }
        return m.release();
      },
      static_cast<aero_model*>(nullptr));
}

void aero_model_free(aero_model* model) { delete model; }

const char* aero_model_name(const aero_model* model) {
  return guarded([&] { return (require(model, "model"), model->src().metadata().name.c_str()); }, "");
}

const char* aero_model_architecture(const aero_model* model) {
  return guarded([&] { return (require(model, "model"), model->src().metadata().architecture.c_str()); }, "");
}

size_t aero_model_tensor_count(const aero_model* model) {
  return guarded([&] { return (require(model, "model"), model->src().tensors().size()); }, std::size_t{0});
}

int aero_model_tensor_info(const aero_model* model, size_t index, aero_tensor_info* out) {
  return guarded(
      [&] {
        const auto& t = tensor_at(model, index);
        require(out, "out");
        if (t.shape.size() > AERO_MAX_DIMS) aero::fail("{}: {} dimensions, more than the C ABI's {}", t.name, t.shape.size(), AERO_MAX_DIMS);
        *out = {};
        out->name = t.name.c_str();
        out->type = model->type_names[index].c_str();
        auto g = aero::format::ggml_type_of(t.dtype, t.ggml_type);
        out->ggml_type = g ? static_cast<std::int32_t>(*g) : -1;
        out->n_dims = static_cast<std::int32_t>(t.shape.size());
        for (std::size_t d = 0; d < t.shape.size(); ++d) out->shape[d] = t.shape[d];
        out->n_elements = elements(t);
        out->n_bytes = t.data.size();
        return 0;
      },
      -1);
}

int64_t aero_model_find_tensor(const aero_model* model, const char* name) {
  return guarded(
      [&]() -> std::int64_t {
        require(model, "model");
        require(name, "tensor name");
        const auto& tensors = model->src().tensors();
        for (std::size_t i = 0; i < tensors.size(); ++i)
          if (tensors[i].name == name) return static_cast<std::int64_t>(i);
        aero::fail("no tensor named '{}'", name);
      },
      std::int64_t{-1});
}

const void* aero_model_tensor_data(const aero_model* model, size_t index) {
  return guarded([&]() -> const void* { return tensor_at(model, index).data.data(); }, static_cast<const void*>(nullptr));
}

const float* aero_model_tensor_f32(aero_model* model, size_t index) {
  return guarded(
      [&]() -> const float* {
        const auto& t = tensor_at(model, index);
        {
          std::lock_guard lock(model->mutex);
          if (auto it = model->f32.find(index); it != model->f32.end()) return it->second.data();
        }
        auto type = aero::format::ggml_type_of(t.dtype, t.ggml_type);
        auto traits = type ? aero::quant::type_traits(static_cast<std::uint32_t>(*type)) : std::nullopt;
        using G = aero::quant::GgmlType;
        if (!traits || !traits->decode || *type == G::I8 || *type == G::I16 || *type == G::I32 || *type == G::I64)
          aero::fail("{}: no f32 values for type {}", t.name, model->type_names[index]);
        std::vector<float> values(elements(t));
        // Rows decode independently: split them over the cores.
        const std::uint64_t row = t.shape.empty() ? 1 : t.shape.back();
        const std::uint64_t rows = row ? values.size() / row : 0;
        const std::uint64_t row_bytes = rows ? t.data.size() / rows : 0;
        const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
        const std::uint64_t per_task = std::max<std::uint64_t>(1, (rows + 4 * threads - 1) / (4 * threads));
        aero::parallel_for((rows + per_task - 1) / per_task, threads, [&](std::size_t task) {
          const std::uint64_t first = task * per_task, last = std::min(rows, first + per_task);
          aero::quant::decode_to_f32(*type, t.data.subspan(first * row_bytes, (last - first) * row_bytes),
                                     std::span(values).subspan(first * row, (last - first) * row));
        });
        std::lock_guard lock(model->mutex);
        return model->f32.emplace(index, std::move(values)).first->second.data();
      },
      static_cast<const float*>(nullptr));
}

aero_session_options aero_session_default_options(void) { return {"auto", 0, 0}; }

aero_session* aero_session_create(aero_model* model, const aero_session_options* options) {
  return guarded(
      [&]() -> aero_session* {
        require(model, "model");
        const aero_session_options o = options ? *options : aero_session_default_options();
        if (o.threads < 0) aero::fail("threads must be 0 (all cores) or more");
        const unsigned threads = o.threads > 0 ? static_cast<unsigned>(o.threads) : std::max(1u, std::thread::hardware_concurrency());
        auto s = std::make_unique<aero_session>();
        s->model = model;
        // Checked before the model's weights are prepared: a bad device fails at once.
        s->backend = aero::backend::make_backend(o.device ? o.device : "auto", threads);
        {
          std::lock_guard lock(model->mutex);
          if (!model->engine) model->engine = aero::engine::Model::open(model->name);
        }
        s->session = std::make_unique<aero::engine::Session>(*model->engine, *s->backend,
                                                             aero::engine::SessionOptions{.context = o.context});
        return s.release();
      },
      static_cast<aero_session*>(nullptr));
}

void aero_session_free(aero_session* session) { delete session; }

void aero_session_reset(aero_session* session) {
  guarded([&] { return (require(session, "session"), session->session->reset(), 0); }, 0);
}

aero_generate_options aero_generate_default_options(void) {
  const aero::engine::SamplingParams p;
  return {128, p.temperature, p.top_k, p.top_p, p.min_p, p.repeat_penalty, p.seed, 0};
}

int64_t aero_generate(aero_session* session, const char* prompt, const aero_generate_options* options,
                      aero_token_callback callback, void* user_data) {
  return guarded(
      [&] {
        require(session, "session");
        require(prompt, "prompt");
        auto* tok = tokenizer_of(session->model);
        if (!tok) aero::fail("the model has no tokenizer: give token ids (aero_generate_ids)");
        return run_generation(session, aero::engine::tokenize_prompt(*tok, prompt), options, callback, user_data);
      },
      std::int64_t{-1});
}

int64_t aero_generate_ids(aero_session* session, const int32_t* ids, size_t n_ids, const aero_generate_options* options,
                          aero_token_callback callback, void* user_data) {
  return guarded(
      [&] {
        require(session, "session");
        if (n_ids > 0) require(ids, "ids");
        const std::int32_t vocab = static_cast<std::int32_t>(session->model->engine->spec().vocab);
        for (std::size_t i = 0; i < n_ids; ++i)
          if (ids[i] < 0 || ids[i] >= vocab) aero::fail("token id {} is outside the vocabulary (0..{})", ids[i], vocab - 1);
        return run_generation(session, std::vector<std::int32_t>(ids, ids + n_ids), options, callback, user_data);
      },
      std::int64_t{-1});
}

}  // extern "C"
