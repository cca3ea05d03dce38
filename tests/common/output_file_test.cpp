#include <sys/resource.h>
#include <csignal>

#include "aero/error.h"
#include "aero/output_file.h"
#include "test_support.h"

namespace aero {
namespace {

TEST(OutputFile, NothingAppearsUntilCommit) {
  test::ScratchDir dir;
  {
    OutputFile out(dir / "f.bin");
    out.write(std::string_view("hello"));
    EXPECT_FALSE(std::filesystem::exists(dir / "f.bin"));
    out.write_at(0, std::vector<std::uint8_t>{'j'});
    out.commit();
  }
  EXPECT_EQ(test::read_bytes(dir / "f.bin"), (std::vector<std::uint8_t>{'j', 'e', 'l', 'l', 'o'}));
}

TEST(OutputFile, AbandonedWriteRemovesItsTemporary) {
  test::ScratchDir dir;
  { OutputFile out(dir / "f.bin"); out.write(std::string_view("partial")); }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(OutputFile, UnwritableDestinationIsAClearError) {
  EXPECT_THROW(OutputFile("/nonexistent-dir/f.bin"), Error);
}

TEST(OutputFile, FileSizeLimitIsReportedAndCleanedUp) {
  // RLIMIT_FSIZE stands in for a full disk: writes past it fail with EFBIG.
  test::ScratchDir dir;
  std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit old {};
  getrlimit(RLIMIT_FSIZE, &old);
  struct rlimit small = old;
  small.rlim_cur = 1 << 20;
  setrlimit(RLIMIT_FSIZE, &small);
  bool threw = false;
  try {
    OutputFile out(dir / "big.bin");
    std::vector<std::uint8_t> chunk(1 << 20, 7);
    for (int i = 0; i < 8; ++i) out.write(chunk);
    out.commit();
  } catch (const Error& e) {
    threw = std::string(e.what()).find("cannot write") != std::string::npos;
  }
  setrlimit(RLIMIT_FSIZE, &old);
  EXPECT_TRUE(threw);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

}  // namespace
}  // namespace aero
