// Models aero cannot run are refused with one clear error, never a crash.
#include <gtest/gtest.h>

#include <fstream>

#include "aero/engine/session.h"
#include "aero/error.h"
#include "aero/json.h"
#include "test_support.h"

namespace aero::test {
namespace {

// A copy of a fixture model whose config.json is edited by `edit`.
std::filesystem::path edited_model(const ScratchDir& scratch, const std::filesystem::path& shared,
                                   const std::function<void(Json&)>& edit) {
  const auto src = shared / "fixtures/hf/qwen2";
  const auto dir = scratch / "model";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(src / "model.safetensors", dir / "model.safetensors");
  std::ifstream in(src / "config.json");
  Json config = Json::parse(in);
  edit(config);
  std::ofstream(dir / "config.json") << config.dump();
  return dir;
}

TEST(BadModel, UnknownArchitecture) {
  AERO_REQUIRE_SHARED(shared);
  ScratchDir scratch;
  const auto dir = edited_model(scratch, shared, [](Json& c) { c["model_type"] = "gpt_neox"; });
  EXPECT_NE(error_of([&] { engine::Model::open(dir); }).find("unsupported architecture 'gpt_neox'"), std::string::npos);
}

// Found by fuzz_model_load: a field of the wrong JSON type escaped as nlohmann's type_error.
TEST(BadModel, ConfigFieldOfTheWrongType) {
  AERO_REQUIRE_SHARED(shared);
  ScratchDir scratch;
  const auto dir = edited_model(scratch, shared, [](Json& c) { c["model_type"] = 512; });
  EXPECT_NE(error_of([&] { engine::Model::open(dir); }).find("'model_type' must be a string"), std::string::npos);
  ScratchDir scratch2;
  const auto dir2 = edited_model(scratch2, shared, [](Json& c) { c["rope_parameters"]["rope_theta"] = "large"; });
  EXPECT_NE(error_of([&] { engine::Model::open(dir2); }).find("'rope_theta' must be a number"), std::string::npos);
}

TEST(BadModel, ShapeDisagreesWithConfig) {
  AERO_REQUIRE_SHARED(shared);
  ScratchDir scratch;
  const auto dir = edited_model(scratch, shared, [](Json& c) { c["intermediate_size"] = 128; });
  EXPECT_NE(error_of([&] { engine::Model::open(dir); }).find("gate_proj.weight: shape [176, 64] where the model's hyper-parameters need [128, 64]"),
            std::string::npos);
}

TEST(BadModel, MissingTensor) {
  AERO_REQUIRE_SHARED(shared);
  ScratchDir scratch;
  const auto dir = edited_model(scratch, shared, [](Json& c) { c["num_hidden_layers"] = 4; });
  EXPECT_NE(error_of([&] { engine::Model::open(dir); }).find("no tensor model.layers.3."), std::string::npos);
}

TEST(BadModel, HeadsThatDoNotGroup) {
  AERO_REQUIRE_SHARED(shared);
  ScratchDir scratch;
  const auto dir = edited_model(scratch, shared, [](Json& c) { c["num_key_value_heads"] = 3; });
  EXPECT_NE(error_of([&] { engine::Model::open(dir); }).find("cannot share 3 key/value heads"), std::string::npos);
}

TEST(BadModel, PromptLongerThanTheContext) {
  AERO_REQUIRE_SHARED(shared);
  auto model = engine::Model::open(shared / "fixtures/hf/qwen2");
  auto cpu = backend::make_cpu_backend(1);
  engine::Session session(*model, *cpu, {.context = 8});
  const std::vector<std::int32_t> ids(9, 1);
  EXPECT_NE(error_of([&] { session.eval(ids); }).find("exceed the context of 8 tokens"), std::string::npos);
  EXPECT_EQ(session.position(), 0);  // nothing half-done
  const std::vector<std::int32_t> out_of_vocab{1, 256};
  EXPECT_NE(error_of([&] { session.eval(out_of_vocab); }).find("outside the vocabulary"), std::string::npos);
}

}  // namespace
}  // namespace aero::test
