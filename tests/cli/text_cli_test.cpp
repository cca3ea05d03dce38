// The text commands from the outside: tokenize, template, run with text prompts, --chat and
// --stop, aero-run --prompt.
#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "aero/json.h"
#include "cli/run_command.h"
#include "tokenizer/vocab_fixtures.h"

namespace aero {
namespace {

using test::CommandResult;
CommandResult aero(const std::string& args) { return test::run_command(AERO_BINARY, args); }
std::string quote(const std::string& s) { return "'" + s + "'"; }

TEST(TextCli, TokenizePrintsTheReferenceIds) {
  AERO_REQUIRE_SHARED(shared);
  for (const char* name : test::kVocabNames) {
    const auto vocab = shared / "fixtures/tokenizer" / (std::string("ggml-vocab-") + name + ".gguf");
    for (const auto& c : test::read_vocab_cases(vocab)) {
      if (c.text != "Hello world" && c.text != " this is 🦙.cpp") continue;
      auto r = aero("tokenize " + vocab.string() + " " + quote(c.text) + " --ids-only --no-bos");
      ASSERT_EQ(r.status, 0) << r.err;
      std::string expected = "[";
      for (std::size_t i = 0; i < c.ids.size(); ++i) expected += (i ? ", " : "") + std::to_string(c.ids[i]);
      EXPECT_EQ(r.out, expected + "]\n") << name << ": " << c.text;
    }
  }
  auto pieces = aero("tokenize " + (shared / "fixtures/tokenizer/ggml-vocab-qwen2.gguf").string() + " '<|im_start|>hi'");
  EXPECT_NE(pieces.out.find("151644 -> '<|im_start|>'"), std::string::npos) << pieces.out;
}

TEST(TextCli, TemplateRendersWhatTransformersRenders) {
  AERO_REQUIRE_SHARED(shared);
  test::ScratchDir scratch;
  const auto dir = shared / "fixtures/chat-templates";
  const Json cases = Json::parse(test::read_text(dir / "expected/cases.json"));
  const auto messages = scratch / "m.json";
  std::ofstream(messages) << Json{{"messages", cases["cases"]["system"]["messages"]}, {"date_string", "26 Jul 2024"},
                                  {"bos_token", "<s>"}, {"eos_token", "</s>"}}
                                 .dump();
  auto r = aero("template " + (dir / "meta-llama-Llama-3.1-8B-Instruct.jinja").string() + " --messages " + messages.string() +
                " --add-generation-prompt");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, test::read_text(dir / "expected/meta-llama-Llama-3.1-8B-Instruct.system.txt"));

  // Gemma 2 refuses a system message: one clear line, non-zero, nothing on stdout.
  auto g = aero("template " + (dir / "google-gemma-2-2b-it.jinja").string() + " --messages " + messages.string());
  EXPECT_EQ(g.status, 1);
  EXPECT_NE(g.err.find("System role not supported"), std::string::npos) << g.err;
  EXPECT_EQ(std::count(g.err.begin(), g.err.end(), '\n'), 1) << g.err;
  EXPECT_TRUE(g.out.empty());

  // The template a GGUF carries.
  std::ofstream(scratch / "single.json") << cases["cases"]["single"]["messages"].dump();
  auto q = aero("template " + (shared / "fixtures/tokenizer/ggml-vocab-qwen2.gguf").string() + " --messages " +
                (scratch / "single.json").string() + " --add-generation-prompt");
  EXPECT_EQ(q.out, "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n"
                   "<|im_start|>assistant\n");
}

class TextRun : public ::testing::Test {
 protected:
  void SetUp() override {
    auto shared = test::shared_dir();
    if (!shared) GTEST_SKIP() << "shared fixtures not found";
    vocab_ = (*shared / "fixtures/tokenizer/ggml-vocab-phi-3.gguf").string();
    model_ = (scratch_ / "m.gguf").string();
    ASSERT_EQ(aero("synth --arch llama --preset tiny --type Q8_0 --vocab " + vocab_ + " " + model_).status, 0);
  }
  test::ScratchDir scratch_;
  std::string vocab_, model_;
};

TEST_F(TextRun, TextPromptIsTheTokenizersIdsWithBos) {
  auto ids = aero("tokenize " + vocab_ + " 'The cat sat' --ids-only");
  ASSERT_EQ(ids.status, 0);
  std::string list = ids.out.substr(1, ids.out.size() - 3);  // "[1, 2]\n" -> "1, 2"
  list.erase(std::remove(list.begin(), list.end(), ' '), list.end());
  EXPECT_EQ(list.rfind("1,", 0), 0u) << "SentencePiece models start with BOS: " << list;
  auto by_text = aero("run " + model_ + " -p 'The cat sat' --greedy -n 12 --ignore-eos --print-ids -t 1");
  auto by_ids = aero("run " + model_ + " --ids " + list + " --greedy -n 12 --ignore-eos --print-ids -t 1");
  ASSERT_EQ(by_text.status, 0) << by_text.err;
  EXPECT_EQ(by_text.out, by_ids.out);
}

TEST_F(TextRun, StopStringEndsTheOutputBeforeIt) {
  auto full = aero("run " + model_ + " -p 'Once upon' --greedy -n 40 --ignore-eos -t 1");
  ASSERT_EQ(full.status, 0) << full.err;
  ASSERT_GT(full.out.size(), 12u);
  // A stop string from the middle of the text: output ends right before its first occurrence.
  std::string stop = full.out.substr(full.out.size() / 2, 3);
  ASSERT_EQ(stop.find('\''), std::string::npos);
  auto cut = aero("run " + model_ + " -p 'Once upon' --greedy -n 40 --ignore-eos -t 1 --stop " + quote(stop));
  ASSERT_EQ(cut.status, 0) << cut.err;
  EXPECT_EQ(cut.out, full.out.substr(0, full.out.find(stop)) + "\n");
}

// Batch mode: every line of the file generated together; with batch-invariant products (the
// CPU's AERO_BATCH_INVARIANT) each answer is the one the prompt gets alone.
TEST_F(TextRun, BatchFileAnswersAreEachPromptsAlone) {
  const std::vector<std::string> prompts = {"The cat sat", "Once upon a time", "Hello"};
  const auto file = scratch_ / "prompts.txt";
  std::string text;
  for (const auto& p : prompts) text += p + "\n\n";  // blank lines are skipped
  test::write_bytes(file, {text.begin(), text.end()});
  ::setenv("AERO_BATCH_INVARIANT", "1", 1);
  auto batch = aero("run " + model_ + " --batch-file " + file.string() + " --greedy -n 10 --ignore-eos -t 1 --parallel 2");
  std::vector<std::string> alone;
  for (const auto& p : prompts) alone.push_back(aero("run " + model_ + " -p " + quote(p) + " --greedy -n 10 --ignore-eos -t 1").out);
  ::unsetenv("AERO_BATCH_INVARIANT");
  ASSERT_EQ(batch.status, 0) << batch.err;
  EXPECT_NE(batch.err.find("batch: 3 prompts, 2 at a time"), std::string::npos) << batch.err;
  std::vector<Json> lines;
  for (std::size_t at = 0; at < batch.out.size();) {
    const auto end = batch.out.find('\n', at);
    lines.push_back(Json::parse(batch.out.substr(at, end - at)));
    at = end + 1;
  }
  ASSERT_EQ(lines.size(), prompts.size()) << batch.out;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(lines[i]["index"], i);
    EXPECT_EQ(lines[i]["prompt"], prompts[i]);
    EXPECT_EQ(lines[i]["finish_reason"], "length");
    EXPECT_EQ(lines[i]["completion_tokens"], 10);
    EXPECT_EQ(lines[i]["text"].get<std::string>() + "\n", alone[i]) << prompts[i];
  }
  for (const std::string& bad : std::vector<std::string>{" --batch-file /nonexistent.txt", " --batch-file " + file.string() + " -p x",
                                " --batch-file " + file.string() + " --chat"}) {
    auto r = aero("run " + model_ + bad);
    EXPECT_TRUE(r.status == 1 || r.status == 2) << bad << ": " << r.status;  // 2: flags that exclude each other
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << bad << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << bad;
  }
}

TEST_F(TextRun, InfoDescribesAGguf) {
  auto r = aero("info " + model_);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("container:     gguf"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Q8_0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("4 layers, hidden 256"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tokenizer:     SentencePiece (32064 tokens, chat template)"), std::string::npos) << r.out;
  auto j = aero("info --json --tensors " + model_);
  ASSERT_EQ(j.status, 0) << j.err;
  const Json parsed = Json::parse(j.out);
  EXPECT_EQ(parsed["tensor_count"], parsed["tensors"].size());
  EXPECT_EQ(parsed["hyper_parameters"]["layers"], 4);
}

TEST_F(TextRun, ChatAndAeroRunPrompt) {
  auto chat = aero("run " + model_ + " --chat -p 'Hi' --system 'Be brief.' --greedy -n 8 -t 1");
  EXPECT_EQ(chat.status, 0) << chat.err;
  EXPECT_GT(chat.out.size(), 1u);
  auto py = test::run_command(AERO_RUN_BINARY, model_ + " --prompt 'Hi' --max-tokens 8 --temperature 0");
  EXPECT_EQ(py.status, 0) << py.err;
  EXPECT_FALSE(py.out.empty());
  // Bad input: one line, exit 1.
  const std::vector<std::string> bad = {"run " + model_ + " --system x -p y", "run " + model_ + " --chat --ids 1,2",
                                       "tokenize /nonexistent.gguf x", "template " + model_ + " --messages /nonexistent.json"};
  for (const auto& args : bad) {
    auto r = aero(args);
    EXPECT_EQ(r.status, 1) << args;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << ": " << r.err;
  }
}

}  // namespace
}  // namespace aero
