// Every real template in ../shared/fixtures/chat-templates rendered for every conversation of
// cases.json must equal what transformers rendered; where transformers raised (no expected
// file), aero must raise a clear error too.
#include <fstream>

#include "aero/chat/template.h"
#include "aero/error.h"
#include "test_support.h"

namespace aero::chat {
namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

TEST(ChatTemplateFixtures, EveryTemplateAndCaseMatchesTransformers) {
  AERO_REQUIRE_SHARED(shared);
  const auto dir = shared / "fixtures/chat-templates";
  const Json cases = Json::parse(slurp(dir / "expected/cases.json"));
  int rendered = 0, raised = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".jinja") continue;
    const std::string name = entry.path().stem().string();
    SCOPED_TRACE(name);
    Template tmpl(slurp(entry.path()));
    for (const auto& [case_name, c] : cases["cases"].items()) {
      ChatOptions options;
      options.add_generation_prompt = c["add_generation_prompt"].get<bool>();
      options.bos_token = cases["special_tokens"]["bos_token"].get<std::string>();
      options.eos_token = cases["special_tokens"]["eos_token"].get<std::string>();
      options.extra["date_string"] = cases["date_string"];
      const auto expected_path = dir / "expected" / (name + "." + case_name + ".txt");
      if (std::filesystem::exists(expected_path)) {
        std::string got;
        EXPECT_NO_THROW(got = apply_chat_template(tmpl, c["messages"], options)) << name << "." << case_name;
        EXPECT_EQ(got, slurp(expected_path)) << name << "." << case_name;
        ++rendered;
      } else {
        EXPECT_THROW(apply_chat_template(tmpl, c["messages"], options), Error) << name << "." << case_name;
        ++raised;
      }
    }
  }
  EXPECT_EQ(rendered, 39);
  EXPECT_EQ(raised, 1);
}

}  // namespace
}  // namespace aero::chat
