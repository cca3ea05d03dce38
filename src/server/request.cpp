#include "server/request.h"

#include <cmath>
#include <set>

#include "aero/engine/chat.h"
#include "aero/error.h"

namespace aero::server {

Json openai_error(const ApiError& e) {
  Json err = {{"message", e.what()}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}};
  if (!e.param.empty()) err["param"] = e.param;
  if (!e.code.empty()) err["code"] = e.code;
  return {{"error", err}};
}

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

bool is_ollama(Endpoint e) { return e == Endpoint::OllamaChat || e == Endpoint::OllamaGenerate; }

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& message) { throw ApiError(400, message, "invalid_request_error", param); }

// Typed access to one JSON object's fields; `prefix` names nested objects in messages
// ("stream_options.include_usage"). A null field counts as absent, as OpenAI's API takes it.
class Fields {
 public:
  Fields(const Json& object, std::string prefix) : object_(object), prefix_(std::move(prefix)) {}

  const Json* get(const char* name) const {
    auto it = object_.find(name);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }
  std::string name(const char* field) const { return prefix_ + field; }
  [[noreturn]] void wrong_type(const char* field, const char* expected) const {
    bad(name(field), fmt::format("Invalid type for '{}': expected {}, but got {} instead.", name(field), expected,
                                 get(field)->type_name()));
  }

  std::optional<double> number(const char* field, double lo, double hi) const {
    const Json* v = get(field);
    if (!v) return std::nullopt;
    if (!v->is_number()) wrong_type(field, "a number");
    const double x = v->get<double>();
    if (!std::isfinite(x) || x < lo || x > hi)
      bad(name(field), fmt::format("Invalid value for '{}': expected a number from {} to {}, but got {}.", name(field),
                                   lo, hi, v->dump()));
    return x;
  }
  std::optional<std::int64_t> integer(const char* field, std::int64_t lo, std::int64_t hi) const {
    const Json* v = get(field);
    if (!v) return std::nullopt;
    if (!v->is_number()) wrong_type(field, "an integer");
    const double x = v->get<double>();
    if (!std::isfinite(x) || x != std::floor(x)) wrong_type(field, "an integer");
    if (x < static_cast<double>(lo) || x > static_cast<double>(hi))
      bad(name(field), fmt::format("Invalid value for '{}': expected an integer from {} to {}, but got {}.", name(field),
                                   lo, hi, v->dump()));
    return v->is_number_unsigned() ? static_cast<std::int64_t>(v->get<std::uint64_t>()) : v->get<std::int64_t>();
  }
  std::optional<bool> boolean(const char* field) const {
    const Json* v = get(field);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) wrong_type(field, "a boolean");
    return v->get<bool>();
  }
  std::optional<std::string> string(const char* field) const {
    const Json* v = get(field);
    if (!v) return std::nullopt;
    if (!v->is_string()) wrong_type(field, "a string");
    return v->get<std::string>();
  }

 private:
  const Json& object_;
  std::string prefix_;
};

Json parse_object(std::string_view body) {
  Json j;
  try {
    j = parse_json(body, "request body");
  } catch (const Error& e) {
    throw ApiError(400, fmt::format("We could not parse the JSON body of your request: {}", e.what()));
  }
  if (!j.is_object()) throw ApiError(400, fmt::format("The request body must be a JSON object, not {}.", j.type_name()));
  return j;
}

void refuse_unknown(const Json& body, const std::set<std::string, std::less<>>& known) {
  for (const auto& [key, value] : body.items())
    if (!known.contains(key)) bad(key, fmt::format("Unrecognized request argument supplied: {}", key));
}

// Options aero does not implement are accepted only at values that ask for nothing.
template <class Neutral>
void refuse_unless_neutral(const Fields& f, const char* field, Neutral neutral) {
  if (const Json* v = f.get(field); v && !neutral(*v))
    bad(f.name(field), fmt::format("'{}' is not supported by this server.", f.name(field)));
}
bool is_empty(const Json& v) { return (v.is_array() || v.is_object() || v.is_string()) && v.empty(); }

std::vector<std::string> stop_strings(const Fields& f, const char* field) {
  const Json* v = f.get(field);
  if (!v) return {};
  if (v->is_string()) return {v->get<std::string>()};
  if (!v->is_array()) f.wrong_type(field, "a string or an array of strings");
  if (v->size() > 16) bad(f.name(field), fmt::format("'{}' holds {} strings; at most 16 are allowed.", f.name(field), v->size()));
  std::vector<std::string> out;
  for (const auto& s : *v) {
    if (!s.is_string()) f.wrong_type(field, "a string or an array of strings");
    out.push_back(s.get<std::string>());
  }
  return out;
}

// The sampling fields both APIs name alike; they differ in the bounds they accept (OpenAI:
// temperature up to 2, penalties within ±2; Ollama passes wider values through to its runner).
void sampling_fields(const Fields& f, double max_temperature, double penalty_bound, engine::SamplingParams& s) {
  if (auto v = f.number("temperature", 0, max_temperature)) s.temperature = static_cast<float>(*v);
  if (auto v = f.number("top_p", 0, 1)) s.top_p = *v > 0 ? static_cast<float>(*v) : 1e-9f;
  if (auto v = f.integer("top_k", 0, 1 << 30)) s.top_k = static_cast<std::int32_t>(*v);
  if (auto v = f.number("min_p", 0, 1)) s.min_p = static_cast<float>(*v);
  if (auto v = f.number("presence_penalty", -penalty_bound, penalty_bound)) s.presence_penalty = static_cast<float>(*v);
  if (auto v = f.number("frequency_penalty", -penalty_bound, penalty_bound)) s.frequency_penalty = static_cast<float>(*v);
  if (auto v = f.number("repeat_penalty", 1e-6, 100)) s.repeat_penalty = static_cast<float>(*v);
  if (auto v = f.integer("seed", INT64_MIN, INT64_MAX)) s.seed = *v < 0 ? 0xFFFFFFFFu : static_cast<std::uint64_t>(*v);
}

// The sampling fields OpenAI's endpoints share (and llama.cpp's extensions to them).
void openai_sampling(const Fields& f, ApiRequest& r) {
  sampling_fields(f, 2, 2, r.sampling);
  if (auto v = f.integer("max_tokens", 0, INT32_MAX)) r.max_tokens = *v;
  r.stop = stop_strings(f, "stop");
  if (auto v = f.integer("n", 1, 128); v && *v != 1) bad("n", "Only n = 1 is supported.");
  r.stream = f.boolean("stream").value_or(false);
  if (const Json* so = f.get("stream_options")) {
    if (!so->is_object()) f.wrong_type("stream_options", "an object");
    if (!r.stream) bad("stream_options", "'stream_options' is only allowed when 'stream' is true.");
    Fields o(*so, "stream_options.");
    refuse_unknown(*so, {"include_usage", "include_obfuscation"});
    r.include_usage = o.boolean("include_usage").value_or(false);
    (void)o.boolean("include_obfuscation");
  }
  refuse_unless_neutral(f, "logit_bias", is_empty);
  (void)f.string("user");
}

std::string message_text(const Json& content, const std::string& where) {
  if (content.is_null()) return {};
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array())
    bad(where, fmt::format("Invalid type for '{}': expected a string or an array of content parts, but got {} instead.",
                           where, content.type_name()));
  std::string text;
  for (const auto& part : content) {
    if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") ||
        !part["text"].is_string())
      bad(where, fmt::format("'{}': only text content parts ({{\"type\": \"text\", \"text\": ...}}) are supported.", where));
    if (!text.empty()) text += "\n";
    text += part["text"].get<std::string>();
  }
  return text;
}

Json chat_messages(const Fields& f, bool ollama) {
  const Json* v = f.get("messages");
  if (!v) bad("messages", "Missing required parameter: 'messages'.");
  if (!v->is_array()) f.wrong_type("messages", "an array");
  if (v->empty()) bad("messages", "'messages' must hold at least one message.");
  static const std::set<std::string, std::less<>> roles = {"system", "developer", "user", "assistant", "tool"};
  Json out = Json::array();
  for (std::size_t i = 0; i < v->size(); ++i) {
    const Json& m = (*v)[i];
    const std::string where = fmt::format("messages[{}]", i);
    if (!m.is_object()) bad(where, fmt::format("Invalid type for '{}': expected an object, but got {} instead.", where, m.type_name()));
    Fields mf(m, where + ".");
    auto role = mf.string("role");
    if (!role) bad(where + ".role", fmt::format("Missing required parameter: '{}.role'.", where));
    if (!roles.contains(*role)) bad(where + ".role", fmt::format("Invalid value for '{}.role': '{}'.", where, *role));
    if (ollama && m.contains("images") && !m["images"].is_null() && !m["images"].empty())
      bad(where + ".images", "Images are not supported by this server.");
    // Templates know "system"; OpenAI's newer "developer" role is the same thing.
    out.push_back({{"role", *role == "developer" ? "system" : *role},
                   {"content", message_text(m.contains("content") ? m["content"] : Json(), where + ".content")}});
  }
  return out;
}

ApiRequest parse_openai(Endpoint endpoint, const Json& body) {
  ApiRequest r;
  r.endpoint = endpoint;
  Fields f(body, "");
  const bool chat = endpoint == Endpoint::ChatCompletions;
  if (chat)
    refuse_unknown(body, {"model", "messages", "temperature", "top_p", "top_k", "min_p", "max_tokens",
                          "max_completion_tokens", "stop", "seed", "presence_penalty", "frequency_penalty",
                          "repeat_penalty", "stream", "stream_options", "n", "logprobs", "top_logprobs", "logit_bias",
                          "user", "store", "metadata", "service_tier", "tools", "tool_choice", "parallel_tool_calls",
                          "response_format", "modalities"});
  else
    refuse_unknown(body, {"model", "prompt", "temperature", "top_p", "top_k", "min_p", "max_tokens", "stop", "seed",
                          "presence_penalty", "frequency_penalty", "repeat_penalty", "stream", "stream_options", "n",
                          "logprobs", "echo", "best_of", "logit_bias", "suffix", "user"});
  if (!f.get("model")) bad("model", "Missing required parameter: 'model'.");
  r.model = *f.string("model");
  openai_sampling(f, r);
  if (chat) {
    r.messages = chat_messages(f, false);
    if (auto v = f.integer("max_completion_tokens", 0, INT32_MAX)) r.max_tokens = *v;
    const bool logprobs = f.boolean("logprobs").value_or(false);
    auto top = f.integer("top_logprobs", 0, 20);
    if (top && !logprobs) bad("top_logprobs", "'top_logprobs' needs 'logprobs' set to true.");
    if (logprobs) r.logprobs = static_cast<int>(top.value_or(0));
    refuse_unless_neutral(f, "tools", is_empty);
    refuse_unless_neutral(f, "tool_choice", [](const Json& v) { return v == "none" || v == "auto"; });
    refuse_unless_neutral(f, "response_format", [](const Json& v) { return v.is_object() && v.value("type", "") == "text"; });
    refuse_unless_neutral(f, "modalities", [](const Json& v) { return v == Json::array({"text"}); });
    (void)f.boolean("store");
    (void)f.boolean("parallel_tool_calls");
    (void)f.string("service_tier");
    if (const Json* m = f.get("metadata"); m && !m->is_object()) f.wrong_type("metadata", "an object");
    return r;
  }
  const Json* prompt = f.get("prompt");
  if (!prompt) bad("prompt", "Missing required parameter: 'prompt'.");
  // A string, one string in an array, or token ids (OpenAI's batch forms need n prompts).
  const Json& p = prompt->is_array() && prompt->size() == 1 && ((*prompt)[0].is_string() || (*prompt)[0].is_array())
                      ? (*prompt)[0]
                      : *prompt;
  if (p.is_string()) {
    r.prompt = p.get<std::string>();
  } else if (p.is_array() && !p.empty() && std::ranges::all_of(p, [](const Json& x) { return x.is_number_integer(); })) {
    for (const auto& id : p) {
      const auto v = id.get<std::int64_t>();
      if (v < 0 || v > INT32_MAX) bad("prompt", fmt::format("Invalid token id {} in 'prompt'.", v));
      r.prompt_ids.push_back(static_cast<std::int32_t>(v));
    }
  } else {
    bad("prompt", "'prompt' must be a string, an array holding one string, or an array of token ids.");
  }
  if (auto v = f.integer("logprobs", 0, 20)) r.logprobs = static_cast<int>(*v);
  refuse_unless_neutral(f, "echo", [](const Json& v) { return v == false; });
  refuse_unless_neutral(f, "best_of", [](const Json& v) { return v == 1; });
  refuse_unless_neutral(f, "suffix", is_empty);
  return r;
}

// Ollama's clients send fields Ollama ignores (keep_alive, options it does not know); like
// Ollama, aero ignores what it does not know there, and checks the types of what it reads.
ApiRequest parse_ollama(Endpoint endpoint, const Json& body) {
  ApiRequest r;
  r.endpoint = endpoint;
  Fields f(body, "");
  r.model = f.string("model").value_or("");
  r.stream = f.boolean("stream").value_or(true);
  if (endpoint == Endpoint::OllamaChat) {
    r.messages = chat_messages(f, true);
  } else {
    r.prompt = f.string("prompt").value_or("");
    r.system = f.string("system").value_or("");
    r.raw = f.boolean("raw").value_or(false);
    if (const Json* images = f.get("images"); images && !images->empty()) bad("images", "Images are not supported by this server.");
    refuse_unless_neutral(f, "suffix", is_empty);
    refuse_unless_neutral(f, "template", is_empty);
  }
  refuse_unless_neutral(f, "format", is_empty);
  refuse_unless_neutral(f, "tools", is_empty);
  if (const Json* o = f.get("options")) {
    if (!o->is_object()) f.wrong_type("options", "an object");
    Fields of(*o, "options.");
    sampling_fields(of, 100, 100, r.sampling);
    if (auto v = of.integer("repeat_last_n", -1, 1 << 30)) r.sampling.repeat_last_n = static_cast<std::int32_t>(*v);
    // -1: no limit; -2 (fill the context) is the same here.
    if (auto v = of.integer("num_predict", -2, INT32_MAX)) r.max_tokens = *v < 0 ? -1 : *v;
    r.stop = stop_strings(of, "stop");
  }
  return r;
}

}  // namespace

ApiRequest parse_request(Endpoint endpoint, std::string_view body) {
  const Json j = parse_object(body);
  ApiRequest r = is_ollama(endpoint) ? parse_ollama(endpoint, j) : parse_openai(endpoint, j);
  try {
    r.sampling.validate();
  } catch (const Error& e) {
    throw ApiError(400, e.what());
  }
  return r;
}

std::vector<std::int32_t> prompt_tokens(const ApiRequest& request, const tokenizer::Tokenizer& tok,
                                        const chat::Template& chat_template) {
  if (!request.prompt_ids.empty()) {
    for (auto id : request.prompt_ids)
      if (id >= tok.size()) bad("prompt", fmt::format("Token id {} is outside the vocabulary (0..{}).", id, tok.size() - 1));
    return request.prompt_ids;
  }
  const bool chat = request.endpoint == Endpoint::ChatCompletions || request.endpoint == Endpoint::OllamaChat ||
                    (request.endpoint == Endpoint::OllamaGenerate && !request.raw);
  std::string text = request.prompt;
  if (chat) {
    Json messages = request.messages;
    if (request.endpoint == Endpoint::OllamaGenerate) {
      messages = Json::array();
      if (!request.system.empty()) messages.push_back({{"role", "system"}, {"content", request.system}});
      messages.push_back({{"role", "user"}, {"content", request.prompt}});
    }
    const auto& v = tok.vocab();
    chat::ChatOptions options;
    options.add_generation_prompt = true;
    if (v.bos >= 0 && v.bos < tok.size()) options.bos_token = v.tokens[static_cast<std::size_t>(v.bos)];
    if (v.eos >= 0 && v.eos < tok.size()) options.eos_token = v.tokens[static_cast<std::size_t>(v.eos)];
    try {
      text = chat::apply_chat_template(chat_template, messages, options);
    } catch (const Error& e) {
      bad("messages", fmt::format("The model's chat template refused these messages: {}", e.what()));
    }
  }
  auto ids = engine::tokenize_prompt(tok, text);
  if (ids.empty()) bad(chat ? "messages" : "prompt", "The prompt is empty.");
  return ids;
}

}  // namespace aero::server
