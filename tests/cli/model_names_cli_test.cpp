// hf: and ollama: names on the command line: a Hugging Face cache and an Ollama store laid out
// in a scratch folder around a fixture model, run by every command that takes a MODEL.
#include <fstream>

#include <fmt/format.h>

#include "aero/hash.h"
#include "aero/json.h"
#include "cli/run_command.h"
#include "engine/hf_reference.h"
#include "test_support.h"

namespace aero {
namespace {

namespace fs = std::filesystem;

const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";

void write_text(const fs::path& p, std::string_view text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

class ModelNamesCli : public ::testing::Test {
 protected:
  void SetUp() override {
    auto shared = test::shared_dir();
    if (!shared) GTEST_SKIP() << "shared fixtures not found at " AERO_SHARED_DIR " (set AERO_SHARED)";
    model_ = *shared / "fixtures/hf/llama";
    ref_ = test::HfReference::load(model_);
    // The HF cache as huggingface_hub leaves it: snapshot entries are links into blobs/.
    const fs::path repo = scratch_ / "hub/models--org--tiny";
    fs::create_directories(repo / "blobs");
    fs::create_directories(repo / "snapshots" / kCommit);
    for (const char* f : {"config.json", "model.safetensors"}) {
      fs::create_symlink(model_ / f, repo / "blobs" / (std::string("blob-") + f));
      fs::create_symlink(fs::path("../../blobs") / (std::string("blob-") + f), repo / "snapshots" / kCommit / f);
    }
    write_text(repo / "refs/main", kCommit);
    // The Ollama store: the fixture converted to GGUF as the model blob, params beside it.
    const fs::path store = scratch_ / "ollama";
    fs::create_directories(store / "blobs");
    const fs::path gguf = scratch_ / "tiny.gguf";
    auto converted = aero("convert " + model_.string() + " " + gguf.string() + " --to gguf");
    ASSERT_EQ(converted.status, 0) << converted.err;
    Json layers = Json::array();
    auto add_blob = [&](const fs::path& file, const char* type) {
      const std::string hex = sha256_file_hex(file);
      const auto size = fs::file_size(file);
      fs::rename(file, store / "blobs" / ("sha256-" + hex));
      layers.push_back({{"mediaType", std::string("application/vnd.ollama.image.") + type}, {"digest", "sha256:" + hex}, {"size", size}});
    };
    add_blob(gguf, "model");
    write_text(scratch_ / "params", R"({"temperature": 0, "num_ctx": 64})");
    add_blob(scratch_ / "params", "params");
    write_text(store / "manifests/registry.ollama.ai/library/tiny/latest", Json{{"schemaVersion", 2}, {"layers", layers}}.dump());
    env_ = fmt::format("HF_HUB_CACHE={} OLLAMA_MODELS={} ", (scratch_ / "hub").string(), store.string());
  }

  test::CommandResult aero(const std::string& args) const { return test::run_command(env_ + test::built_binary(AERO_BINARY), args); }
  test::CommandResult aero_run(const std::string& args) const {
    return test::run_command(env_ + test::built_binary(AERO_RUN_BINARY), args);
  }
  std::string prompt() const { return fmt::format("{}", fmt::join(ref_.prompt_ids, ",")); }
  std::span<const std::int32_t> generated() const { return std::span(ref_.greedy_ids).subspan(ref_.prompt_ids.size()); }

  test::ScratchDir scratch_;
  fs::path model_;
  test::HfReference ref_;
  std::string env_;
};

TEST_F(ModelNamesCli, RunReproducesTransformersByName) {
  const std::string expected = fmt::format("{}\n", fmt::join(generated(), ","));
  // Ollama's params say temperature 0: greedy without --greedy.
  for (const std::string& name : std::vector<std::string>{"hf:org/tiny", "org/tiny", "hf:org/tiny@main", "hf:org/tiny@" + kCommit, "ollama:tiny",
                                 "ollama:tiny:latest", "ollama:library/tiny"}) {
    const std::string greedy = name.rfind("ollama:", 0) == 0 ? "" : " --greedy";
    auto r = aero(fmt::format("run {} --ids {}{} -n {} --print-ids --ignore-eos -t 2", name, prompt(), greedy, generated().size()));
    EXPECT_EQ(r.status, 0) << name << ": " << r.err;
    EXPECT_EQ(r.out, expected) << name;
  }
}

TEST_F(ModelNamesCli, EveryModelCommandTakesNames) {
  auto info = aero("info hf:org/tiny");
  EXPECT_EQ(info.status, 0) << info.err;
  EXPECT_NE(info.out.find("org/tiny"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("llama"), std::string::npos) << info.out;
  EXPECT_EQ(aero("info ollama:tiny --tensors").status, 0);
  auto logits = aero("logits ollama:tiny --ids 1,2,3 --out " + (scratch_ / "l.safetensors").string() + " -t 2");
  EXPECT_EQ(logits.status, 0) << logits.err;
  EXPECT_TRUE(fs::exists(scratch_ / "l.safetensors"));
  auto bench = aero("bench hf:org/tiny -p 4 -n 2 -r 1 -t 2 --no-probes");
  EXPECT_EQ(bench.status, 0) << bench.err;
  auto run_info = aero_run("ollama:tiny --info --device cpu");
  EXPECT_EQ(run_info.status, 0) << run_info.err;
  EXPECT_NE(run_info.out.find("layers:"), std::string::npos) << run_info.out;
  auto hf = aero("list --hf");
  EXPECT_EQ(hf.status, 0) << hf.err;
  EXPECT_NE(hf.out.find("hf:org/tiny\t"), std::string::npos) << hf.out;
  EXPECT_NE(hf.out.find("main = 0123456789ab"), std::string::npos) << hf.out;
  auto ollama = aero("list --ollama");
  EXPECT_EQ(ollama.status, 0) << ollama.err;
  EXPECT_NE(ollama.out.find("ollama:tiny:latest\t"), std::string::npos) << ollama.out;
}

TEST_F(ModelNamesCli, OllamaContextIsADefault) {
  // num_ctx 64 bounds the context unless --ctx says otherwise.
  std::vector<std::int32_t> long_prompt(70, 5);
  const std::string ids = fmt::format("{}", fmt::join(long_prompt, ","));
  auto bounded = aero("run ollama:tiny --ids " + ids + " -n 1 --print-ids -t 2");
  EXPECT_EQ(bounded.status, 1) << bounded.out;
  EXPECT_NE(bounded.err.find("64"), std::string::npos) << bounded.err;
  auto wider = aero("run ollama:tiny --ids " + ids + " -n 1 --print-ids -t 2 --ctx 128");
  EXPECT_EQ(wider.status, 0) << wider.err;
}

TEST_F(ModelNamesCli, MissingModelsAreOneLine) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"run ollama:tiny:q9 --ids 1 --print-ids", "ollama:tiny:q9: no tag 'q9' (tags there: latest)"},
      {"run ollama:absent --ids 1 --print-ids", "ollama:absent:latest: not in Ollama's store"},
      {"run hf:org/absent --ids 1 --print-ids", "hf:org/absent: not in the Hugging Face cache"},
      {"run org/absent --ids 1 --print-ids", "org/absent: no such file or folder, nor a model"},
      {"run hf:org/tiny@v7 --ids 1 --print-ids", "no revision 'v7'"},
      {"bench ollama:../x -p 4 -n 2", "not an Ollama model name"},
      {"list", "give a .aero FILE"}};
  for (const auto& [args, message] : cases) {
    auto r = aero(args);
    EXPECT_EQ(r.status, 1) << args;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << ": " << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << args << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << args << ": " << r.out;
  }
}

}  // namespace
}  // namespace aero
