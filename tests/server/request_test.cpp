// Request bodies: what each endpoint accepts, and the status and error fields of what it refuses.
#include <gtest/gtest.h>

#include "aero/engine/chat.h"
#include "server/request.h"
#include "server/responses.h"
#include "test_support.h"

namespace aero::server {
namespace {

ApiError refused(Endpoint e, std::string_view body) {
  try {
    parse_request(e, body);
  } catch (const ApiError& err) {
    return err;
  }
  ADD_FAILURE() << "accepted: " << body;
  return ApiError(0, "");
}

TEST(Request, ChatCompletionTakesEverySamplingField) {
  const auto r = parse_request(Endpoint::ChatCompletions, R"({
    "model": "m", "messages": [{"role": "system", "content": "Be brief."},
                               {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]}],
    "temperature": 0.5, "top_p": 0.9, "top_k": 20, "min_p": 0.1, "max_tokens": 33, "stop": ["x", "y"],
    "seed": 7, "presence_penalty": 0.5, "frequency_penalty": -0.5, "stream": true,
    "stream_options": {"include_usage": true}, "n": 1, "logprobs": true, "top_logprobs": 2,
    "user": "u", "tools": [], "response_format": {"type": "text"}, "logit_bias": {}})");
  EXPECT_EQ(r.model, "m");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[1]["content"], "Hi\nthere");
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 0.9f);
  EXPECT_EQ(r.sampling.top_k, 20);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.1f);
  EXPECT_FLOAT_EQ(r.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.frequency_penalty, -0.5f);
  EXPECT_EQ(r.sampling.seed, 7u);
  EXPECT_EQ(r.max_tokens, 33);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"x", "y"}));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.logprobs, 2);
}

TEST(Request, MaxCompletionTokensAndNullsAndDeveloperRole) {
  const auto r = parse_request(Endpoint::ChatCompletions,
                               R"({"model": "m", "messages": [{"role": "developer", "content": "d"}, {"role": "user", "content": "u"}],
                                   "max_completion_tokens": 5, "temperature": null, "stop": "END"})");
  EXPECT_EQ(r.max_tokens, 5);
  EXPECT_EQ(r.messages[0]["role"], "system");
  EXPECT_FLOAT_EQ(r.sampling.temperature, engine::SamplingParams{}.temperature);
  EXPECT_EQ(r.stop, std::vector<std::string>{"END"});
}

TEST(Request, CompletionPromptForms) {
  EXPECT_EQ(parse_request(Endpoint::Completions, R"({"model": "m", "prompt": "abc"})").prompt, "abc");
  EXPECT_EQ(parse_request(Endpoint::Completions, R"({"model": "m", "prompt": ["abc"]})").prompt, "abc");
  EXPECT_EQ(parse_request(Endpoint::Completions, R"({"model": "m", "prompt": [1, 2, 3]})").prompt_ids,
            (std::vector<std::int32_t>{1, 2, 3}));
  EXPECT_EQ(parse_request(Endpoint::Completions, R"({"model": "m", "prompt": [[4, 5]]})").prompt_ids,
            (std::vector<std::int32_t>{4, 5}));
  EXPECT_EQ(parse_request(Endpoint::Completions, R"({"model": "m", "prompt": "a", "logprobs": 3})").logprobs, 3);
}

TEST(Request, OllamaOptions) {
  const auto r = parse_request(Endpoint::OllamaChat, R"({"model": "m", "messages": [{"role": "user", "content": "hi"}],
      "options": {"temperature": 0, "num_predict": 12, "seed": 3, "stop": ["\n"], "num_ctx": 2048, "top_k": 5},
      "keep_alive": "5m", "unknown_to_aero": 1})");
  EXPECT_TRUE(r.stream);  // Ollama streams unless told not to
  EXPECT_EQ(r.max_tokens, 12);
  EXPECT_TRUE(r.sampling.greedy());
  EXPECT_EQ(r.sampling.top_k, 5);
  const auto g = parse_request(Endpoint::OllamaGenerate, R"({"model": "m", "prompt": "p", "system": "s", "stream": false, "raw": true})");
  EXPECT_EQ(g.prompt, "p");
  EXPECT_EQ(g.system, "s");
  EXPECT_TRUE(g.raw);
  EXPECT_FALSE(g.stream);
}

TEST(Request, BadInputIsA400NamingTheField) {
  struct Case {
    Endpoint endpoint;
    const char* body;
    const char* param;
  };
  const Case cases[] = {
      {Endpoint::ChatCompletions, "{", ""},
      {Endpoint::ChatCompletions, "[1, 2]", ""},
      {Endpoint::ChatCompletions, "", ""},
      {Endpoint::ChatCompletions, R"({"messages": [{"role": "user", "content": "x"}]})", "model"},
      {Endpoint::ChatCompletions, R"({"model": "m"})", "messages"},
      {Endpoint::ChatCompletions, R"({"model": "m", "messages": []})", "messages"},
      {Endpoint::ChatCompletions, R"({"model": "m", "messages": "hi"})", "messages"},
      {Endpoint::ChatCompletions, R"({"model": "m", "messages": [{"content": "x"}]})", "messages[0].role"},
      {Endpoint::ChatCompletions, R"({"model": "m", "messages": [{"role": "wizard", "content": "x"}]})", "messages[0].role"},
      {Endpoint::ChatCompletions, R"({"model": "m", "messages": [{"role": "user", "content": 5}]})", "messages[0].content"},
      {Endpoint::ChatCompletions, R"({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", "messages[0].content"},
      {Endpoint::ChatCompletions, R"({"model": 5, "messages": [{"role": "user", "content": "x"}]})", "model"},
      {Endpoint::ChatCompletions, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"})", "temperature"},
      {Endpoint::ChatCompletions, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 3})", "temperature"},
      {Endpoint::ChatCompletions, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "top_p": -1})", "top_p"},
      {Endpoint::ChatCompletions, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": -5})", "max_tokens"},
      {Endpoint::ChatCompletions, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2.5})", "max_tokens"},
      {Endpoint::ChatCompletions, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2})", "n"},
      {Endpoint::ChatCompletions, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": [1]})", "stop"},
      {Endpoint::ChatCompletions, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"})", "stream"},
      {Endpoint::ChatCompletions, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream_options": {"include_usage": true}})", "stream_options"},
      {Endpoint::ChatCompletions, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "frobnicate": 1})", "frobnicate"},
      {Endpoint::ChatCompletions, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]})", "tools"},
      {Endpoint::ChatCompletions, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "logit_bias": {"5": 10}})", "logit_bias"},
      {Endpoint::ChatCompletions, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})", "top_logprobs"},
      {Endpoint::ChatCompletions, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "seed": 1e300})", "seed"},
      {Endpoint::Completions, R"({"model": "m"})", "prompt"},
      {Endpoint::Completions, R"({"model": "m", "prompt": {"a": 1}})", "prompt"},
      {Endpoint::Completions, R"({"model": "m", "prompt": [-1]})", "prompt"},
      {Endpoint::Completions, R"({"model": "m", "prompt": ["a", "b"]})", "prompt"},
      {Endpoint::Completions, R"({"model": "m", "prompt": "a", "echo": true})", "echo"},
      {Endpoint::Completions, R"({"model": "m", "prompt": "a", "messages": []})", "messages"},
      {Endpoint::OllamaChat, R"({"model": "m"})", "messages"},
      {Endpoint::OllamaChat, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "options": {"temperature": "x"}})", "options.temperature"},
      {Endpoint::OllamaGenerate, R"({"model": "m", "prompt": 5})", "prompt"},
  };
  for (const auto& c : cases) {
    const ApiError e = refused(c.endpoint, c.body);
    EXPECT_EQ(e.status, 400) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body;
    EXPECT_FALSE(std::string(e.what()).empty());
    const Json body = openai_error(e);
    EXPECT_EQ(body["error"]["type"], "invalid_request_error");
    EXPECT_EQ(body["error"]["message"], e.what());
  }
}

TEST(Request, DeepNestingIsRefusedNotRecursedInto) {
  std::string body = R"({"model": "m", "messages": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(refused(Endpoint::ChatCompletions, body).status, 400);
}

TEST(Request, ChatMessagesGoThroughTheModelsTemplate) {
  AERO_REQUIRE_SHARED(shared);
  const auto tok = tokenizer::Tokenizer::load(shared / "fixtures/tokenizer/ggml-vocab-llama-spm.gguf");
  const chat::Template tmpl("{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}");
  const auto r = parse_request(Endpoint::ChatCompletions,
                               R"({"model": "m", "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]})");
  EXPECT_EQ(prompt_tokens(r, tok, tmpl), engine::tokenize_prompt(tok, "[system]S[user]U[assistant]"));
  const auto c = parse_request(Endpoint::Completions, R"({"model": "m", "prompt": "plain text"})");
  EXPECT_EQ(prompt_tokens(c, tok, tmpl), engine::tokenize_prompt(tok, "plain text"));
  const auto g = parse_request(Endpoint::OllamaGenerate, R"({"model": "m", "prompt": "P", "system": "S"})");
  EXPECT_EQ(prompt_tokens(g, tok, tmpl), engine::tokenize_prompt(tok, "[system]S[user]P[assistant]"));
  const auto raw = parse_request(Endpoint::OllamaGenerate, R"({"model": "m", "prompt": "P", "raw": true})");
  EXPECT_EQ(prompt_tokens(raw, tok, tmpl), engine::tokenize_prompt(tok, "P"));
  // A template that refuses the conversation is the client's problem: 400.
  const chat::Template strict("{{ raise_exception('no system messages') }}");
  try {
    prompt_tokens(r, tok, strict);
    ADD_FAILURE() << "accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
  }
  const auto ids = parse_request(Endpoint::Completions, R"({"model": "m", "prompt": [99999999]})");
  EXPECT_THROW(prompt_tokens(ids, tok, tmpl), ApiError);
}

// The streamed events and the final objects have OpenAI's shape.
TEST(Response, ChatStreamEventsEndWithDone) {
  AERO_REQUIRE_SHARED(shared);
  const auto tok = tokenizer::Tokenizer::load(shared / "fixtures/tokenizer/ggml-vocab-llama-spm.gguf");
  auto r = parse_request(Endpoint::ChatCompletions,
                         R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": true, "stream_options": {"include_usage": true}})");
  ResponseWriter w(r, "chatcmpl-1", "model-name", tok);
  EXPECT_STREQ(w.content_type(), "text/event-stream");
  JobUpdate u;
  u.text = "Hel";
  std::string out = w.write(u);
  JobUpdate last;
  last.text = "lo\xff";  // invalid UTF-8 is replaced, never thrown on
  last.finished = true;
  last.reason = FinishReason::Length;
  last.usage = {.prompt_tokens = 4, .cached_tokens = 1, .completion_tokens = 2};
  out += w.write(last);
  std::vector<Json> events;
  std::size_t at = 0;
  for (std::size_t end; (end = out.find("\n\n", at)) != std::string::npos; at = end + 2) {
    const std::string event = out.substr(at, end - at);
    ASSERT_TRUE(event.starts_with("data: ")) << event;
    if (event == "data: [DONE]") {
      EXPECT_EQ(end + 2, out.size());
      break;
    }
    events.push_back(Json::parse(event.substr(6)));
  }
  ASSERT_EQ(events.size(), 5u);  // role, "Hel", "lo", finish, usage
  EXPECT_EQ(events[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(events[1]["choices"][0]["delta"]["content"], "Hel");
  EXPECT_EQ(events[1]["object"], "chat.completion.chunk");
  EXPECT_EQ(events[1]["id"], "chatcmpl-1");
  EXPECT_EQ(events[1]["model"], "model-name");
  EXPECT_TRUE(events[1]["usage"].is_null());
  EXPECT_EQ(events[3]["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(events[4]["choices"].empty());
  EXPECT_EQ(events[4]["usage"]["total_tokens"], 6);
  EXPECT_EQ(events[4]["usage"]["prompt_tokens_details"]["cached_tokens"], 1);
}

TEST(Response, NonStreamingBodies) {
  AERO_REQUIRE_SHARED(shared);
  const auto tok = tokenizer::Tokenizer::load(shared / "fixtures/tokenizer/ggml-vocab-llama-spm.gguf");
  JobUpdate a, b;
  a.text = "Hello";
  b.text = " world";
  b.finished = true;
  b.reason = FinishReason::Stop;
  b.usage = {.prompt_tokens = 3, .cached_tokens = 0, .completion_tokens = 2};
  {
    auto r = parse_request(Endpoint::ChatCompletions, R"({"model": "m", "messages": [{"role": "user", "content": "x"}]})");
    ResponseWriter w(r, "id", "name", tok);
    EXPECT_EQ(w.write(a), "");
    const Json j = Json::parse(w.write(b));
    EXPECT_EQ(j["object"], "chat.completion");
    EXPECT_EQ(j["choices"][0]["message"]["content"], "Hello world");
    EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
    EXPECT_EQ(j["usage"]["completion_tokens"], 2);
  }
  {
    auto r = parse_request(Endpoint::Completions, R"({"model": "m", "prompt": "x"})");
    ResponseWriter w(r, "id", "name", tok);
    w.write(a);
    const Json j = Json::parse(w.write(b));
    EXPECT_EQ(j["object"], "text_completion");
    EXPECT_EQ(j["choices"][0]["text"], "Hello world");
  }
  {
    auto r = parse_request(Endpoint::OllamaChat, R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": false})");
    ResponseWriter w(r, "id", "name", tok);
    w.write(a);
    const Json j = Json::parse(w.write(b));
    EXPECT_EQ(j["message"]["content"], "Hello world");
    EXPECT_EQ(j["done"], true);
    EXPECT_EQ(j["eval_count"], 2);
    EXPECT_EQ(j["prompt_eval_count"], 3);
  }
}

}  // namespace
}  // namespace aero::server
