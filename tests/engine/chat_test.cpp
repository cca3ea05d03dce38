// engine::Chat: history, KV-cache reuse across turns (must give exactly what a fresh session
// computes for the whole conversation), stop strings.
#include "aero/convert/synth.h"
#include "aero/engine/chat.h"
#include "test_support.h"

namespace aero::engine {
namespace {

class ChatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto shared = test::shared_dir();
    if (!shared) GTEST_SKIP() << "shared fixtures not found";
    convert::SynthOptions o;
    o.arch = "qwen2";
    o.preset = "tiny";
    o.type = quant::GgmlType::F32;
    o.vocab = *shared / "fixtures/tokenizer/ggml-vocab-qwen2.gguf";
    path_ = scratch_ / "chat.gguf";
    convert::synthesize(path_, o);
  }
  test::ScratchDir scratch_;
  std::filesystem::path path_;
};

std::string answer(Chat& chat, const std::string& user) {
  std::string out;
  chat.respond(user, [&](std::string_view t) {
    out += t;
    return true;
  });
  return out;
}

TEST_F(ChatTest, SecondTurnReusingTheCacheEqualsAFreshRunOfTheWholeConversation) {
  auto model = Model::open(path_);
  auto tok = tokenizer::Tokenizer::from_metadata(model->source().metadata());
  auto cpu = backend::make_cpu_backend(1);
  SamplingParams greedy;
  greedy.temperature = 0;
  const SessionOptions so{.context = 1024, .kv_type = backend::KvType::F32};

  Session session(*model, *cpu, so);
  Sampler sampler(greedy);
  Chat chat(session, sampler, tok, {.system = "Be brief.", .max_tokens = 12, .stop = {}, .template_variables = {}});
  const std::string first = answer(chat, "Hello");
  const std::string second = answer(chat, "And then?");
  ASSERT_EQ(chat.messages().size(), 5u);
  EXPECT_EQ(chat.messages()[2].content, first);
  EXPECT_EQ(chat.messages()[4].content, second);

  // A fresh session given the whole conversation at once must answer the same.
  Session fresh_session(*model, *cpu, so);
  Sampler fresh_sampler(greedy);
  auto tmpl = model_chat_template(tok);
  chat::ChatOptions co;
  co.bos_token = tok.vocab().tokens[tok.vocab().bos];
  co.eos_token = tok.vocab().tokens[tok.vocab().eos];
  std::vector<chat::Message> history(chat.messages().begin(), chat.messages().end() - 1);
  auto ids = tokenize_prompt(tok, chat::apply_chat_template(tmpl, history, co));
  std::vector<std::int32_t> out;
  generate(fresh_session, fresh_sampler, ids, {.max_tokens = 12, .stop_at_eos = true, .extra_stop_ids = tok.vocab().end_of_generation},
           [&](std::int32_t id) {
             out.push_back(id);
             return true;
           });
  EXPECT_EQ(tok.decode(out), second);

  chat.reset();
  ASSERT_EQ(chat.messages().size(), 1u);  // the system message stays
  EXPECT_EQ(answer(chat, "Hello"), first);
}

TEST(StopStrings, HoldsBackPossiblePrefixesAndCutsAtTheFirstMatch) {
  StopStrings s({"</s>", "STOP"});
  EXPECT_EQ(s.push("Hello <"), "Hello ");  // "<" may start "</s>"
  EXPECT_EQ(s.push("b> S"), "<b> ");
  EXPECT_EQ(s.push("TO"), "");
  EXPECT_FALSE(s.stopped());
  EXPECT_EQ(s.push("Pped"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.push("more"), "");
  StopStrings t({"ab"});
  EXPECT_EQ(t.push("xa"), "x");
  EXPECT_EQ(t.finish(), "a");
}

}  // namespace
}  // namespace aero::engine
