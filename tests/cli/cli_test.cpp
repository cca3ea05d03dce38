// The aero command line: exit codes, one-line errors, and output a user relies on.
#include <sys/wait.h>

#include <array>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/run_command.h"
#include "test_support.h"

namespace aero {
namespace {

struct Run {
  int status = -1;
  std::string out;  // stdout then stderr
};

Run aero(const std::string& args) {
  auto r = test::run_command(AERO_BINARY, args);
  return {r.status, r.out + r.err};
}

std::size_t lines(const std::string& s) { return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')); }

TEST(Cli, InfoDescribesAReferenceFile) {
  AERO_REQUIRE_SHARED(shared);
  auto r = aero("info " + (shared / "fixtures/aero/quants.aero").string());
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("quant-fixture"), std::string::npos);
  EXPECT_NE(r.out.find("Q4_0"), std::string::npos);
  EXPECT_NE(r.out.find("gguf"), std::string::npos);
  auto j = aero("info --json --tensors --chunks " + (shared / "fixtures/aero/small-set").string());
  EXPECT_EQ(j.status, 0);
  auto parsed = nlohmann::json::parse(j.out.substr(0, j.out.rfind('}') + 1));
  EXPECT_EQ(parsed["tensor_count"], 6);
  EXPECT_EQ(parsed["container"], "AEROSET");
}

TEST(Cli, ConvertValidateListExtract) {
  AERO_REQUIRE_SHARED(shared);
  test::ScratchDir dir;
  auto out = (dir / "m.aero").string();
  auto c = aero("convert " + (shared / "fixtures/aero/small.safetensors").string() + " " + out +
                " --integrity --tensor-hash --max-shard-bytes 2048 --page-size 1024");
  ASSERT_EQ(c.status, 0) << c.out;
  EXPECT_EQ(aero("validate --full " + out).status, 0);
  EXPECT_EQ(aero("validate --control " + out).status, 0);
  auto l = aero("list " + out);
  EXPECT_EQ(lines(l.out), 6u);
  EXPECT_NE(l.out.find("position_ids\ti32\t[3, 5]\t60"), std::string::npos) << l.out;
  ASSERT_EQ(aero("extract " + out + " position_ids " + (dir / "p.bin").string()).status, 0);
  EXPECT_EQ(std::filesystem::file_size(dir / "p.bin"), 60u);
}

TEST(Cli, ErrorsAreOneLineWithNonZeroExit) {
  test::ScratchDir dir;
  test::write_bytes(dir / "junk.aero", test::random_bytes(500, 1));
  for (const std::string args : {"info " + (dir / "junk.aero").string(), "info " + (dir / "missing.aero").string(),
                                 "list " + (dir / "junk.aero").string()}) {
    auto r = aero(args);
    EXPECT_EQ(r.status, 1) << args;
    EXPECT_EQ(lines(r.out), 1u) << r.out;
    EXPECT_EQ(r.out.rfind("aero: error: ", 0), 0u) << r.out;
  }
  auto v = aero("validate " + (dir / "junk.aero").string());
  EXPECT_EQ(v.status, 1);
  EXPECT_EQ(lines(v.out), 1u) << v.out;
  EXPECT_NE(aero("info").status, 0);
  EXPECT_NE(aero("frobnicate x").status, 0);
  EXPECT_NE(aero("validate --control --full x").status, 0);
}

TEST(Cli, FailedConvertLeavesNoOutput) {
  test::ScratchDir dir;
  test::write_bytes(dir / "bad.safetensors", test::random_bytes(100, 2));
  auto r = aero("convert " + (dir / "bad.safetensors").string() + " " + (dir / "out.aero").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_FALSE(std::filesystem::exists(dir / "out.aero"));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

TEST(Cli, ExtractRefusesACorruptTensor) {
  AERO_REQUIRE_SHARED(shared);
  test::ScratchDir dir;
  auto out = (dir / "m.aero").string();
  ASSERT_EQ(aero("convert " + (shared / "fixtures/aero/small.safetensors").string() + " " + out + " --tensor-hash").status, 0);
  auto b = test::read_bytes(out);
  b[b.size() - 2] ^= 1;  // inside the last tensor written
  test::write_bytes(out, b);
  auto r = aero("extract " + out + " position_ids " + (dir / "p.bin").string());
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir / "p.bin"));
}

}  // namespace
}  // namespace aero
