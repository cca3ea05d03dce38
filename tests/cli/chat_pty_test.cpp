// `aero chat` driven through a pseudo-terminal as a person would: a turn interrupted with
// Ctrl-C (the session goes on), a turn answered to the end, /exit.
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>

#include "cli/run_command.h"

namespace aero::test {
namespace {

class Pty {
 public:
  explicit Pty(const std::vector<std::string>& argv) {
    pid_ = forkpty(&fd_, nullptr, nullptr, nullptr);
    if (pid_ == 0) {
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~Pty() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }
  bool started() const { return pid_ > 0; }

  // Waits until the line editor has the terminal in raw mode (the master reads the slave's
  // settings). Text sent before that is echoed by the kernel as well as by the editor, and the
  // second echo looks like the start of an answer.
  bool wait_raw_mode(double seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      termios t{};
      if (tcgetattr(fd_, &t) == 0 && !(t.c_lflag & ICANON)) return true;
      wait_for("\x01never\x01", output_.size(), 0.01);  // keep draining output meanwhile
    }
    return false;
  }
  void send(const std::string& s) { ASSERT_EQ(write(fd_, s.data(), s.size()), static_cast<ssize_t>(s.size())); }

  // Reads until `needle` appears after `from` in everything read so far; false on timeout.
  bool wait_for(const std::string& needle, std::size_t from, double seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (output_.find(needle, from) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = read(fd_, buf, sizeof buf);
      if (n <= 0) return output_.find(needle, from) != std::string::npos;
      output_.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }
  // Exit status, waiting up to `seconds`; -1 on timeout.
  int wait_exit(double seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      wait_for("\x01never\x01", output_.size(), 0.05);  // drain so the child never blocks on output
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
    }
    return -1;
  }
  const std::string& output() const { return output_; }

 private:
  int fd_ = -1;
  pid_t pid_ = -1;
  bool exited_ = false;
  std::string output_;
};

TEST(ChatPty, TwoTurnsOneInterruptedThenExit) {
  AERO_REQUIRE_SHARED(shared);
  ScratchDir dir;
  const auto model = (dir / "chat.gguf").string();
  // A tiny random-weight llama with Phi-3's tokenizer and chat template.
  auto made = run_command(AERO_BINARY, "synth --arch llama --preset tiny --type Q8_0 --vocab " +
                                           (shared / "fixtures/tokenizer/ggml-vocab-phi-3.gguf").string() + " " + model);
  ASSERT_EQ(made.status, 0) << made.err;

  Pty pty({AERO_BINARY, "chat", model, "-s", "Be brief.", "-n", "600", "--seed", "7", "-t", "1"});
  ASSERT_TRUE(pty.started());
  ASSERT_TRUE(pty.wait_for("> ", 0, 60)) << pty.output();

  // Turn 1: interrupted as soon as the answer starts streaming.
  std::size_t mark = pty.output().size();
  ASSERT_TRUE(pty.wait_raw_mode(30)) << pty.output();
  pty.send("Tell me a long story\r");
  ASSERT_TRUE(pty.wait_for("Tell me a long story", mark, 10)) << pty.output();  // the echo
  mark = pty.output().find("Tell me a long story", mark) + 20;
  ASSERT_TRUE(pty.wait_for("\n", mark, 10));
  mark = pty.output().find('\n', mark) + 1;
  // Wait for a few bytes of the answer, then Ctrl-C.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (pty.output().size() < mark + 4 && std::chrono::steady_clock::now() < deadline) pty.wait_for("\x01", mark, 0.01);
  ASSERT_GE(pty.output().size(), mark + 4) << "no answer streamed";
  pty.send("\x03");
  ASSERT_TRUE(pty.wait_for("[stopped]", mark, 30)) << pty.output();
  ASSERT_TRUE(pty.wait_for("> ", pty.output().find("[stopped]", mark), 30)) << "no prompt after the interrupted turn";

  // Turn 2: answered in full (600 tokens at most), the prompt comes back.
  mark = pty.output().size();
  ASSERT_TRUE(pty.wait_raw_mode(30)) << pty.output();
  pty.send("And now?\r");
  ASSERT_TRUE(pty.wait_for("And now?", mark, 10));
  const std::size_t answer_start = pty.output().find("And now?", mark) + 8;
  ASSERT_TRUE(pty.wait_for("\n> ", answer_start, 240)) << "the second turn did not finish";
  const std::size_t answer_end = pty.output().find("\n> ", answer_start);
  EXPECT_EQ(pty.output().substr(answer_start, answer_end - answer_start).find("[stopped]"), std::string::npos);
  EXPECT_GT(answer_end - answer_start, 3u) << "the second answer is empty";

  ASSERT_TRUE(pty.wait_raw_mode(30)) << pty.output();
  pty.send("/exit\r");
  EXPECT_EQ(pty.wait_exit(30), 0) << pty.output();
}

}  // namespace
}  // namespace aero::test
