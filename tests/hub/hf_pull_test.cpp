// aero pull against a loopback server that serves the hub's URL layout (the file list API and
// /ORG/NAME/resolve/COMMIT/FILE), in this process: downloads, resumes, refusals. No network.
#include "aero/hub/hf_pull.h"

#include <httplib.h>
#include <openssl/evp.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "aero/error.h"
#include "aero/format/model_name.h"
#include "aero/hash.h"
#include "cli/run_command.h"
#include "engine/hf_reference.h"
#include "test_support.h"

namespace aero::hub {
namespace {

using test::error_of;

namespace fs = std::filesystem;
using test::ScratchDir;

const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";

std::string digest_hex(const EVP_MD* md, std::string_view prefix, std::string_view content) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, md, nullptr);
  EVP_DigestUpdate(ctx, prefix.data(), prefix.size());
  EVP_DigestUpdate(ctx, content.data(), content.size());
  EVP_DigestFinal_ex(ctx, out, &n);
  EVP_MD_CTX_free(ctx);
  return to_hex({out, n});
}
std::string git_blob_id(std::string_view content) {
  const std::string header = "blob " + std::to_string(content.size());
  return digest_hex(EVP_sha1(), std::string_view(header.c_str(), header.size() + 1), content);
}
std::string sha256_hex(std::string_view content) { return digest_hex(EVP_sha256(), "", content); }

std::string read_text(const fs::path& p) {
  const auto b = test::read_bytes(p);
  return {b.begin(), b.end()};
}

struct RepoFile {
  std::string path, content;
  bool lfs = false;
  std::string listed_hash;  // what the API claims (empty: the true hash)
};

// The hub, as far as aero pull talks to it, for one repository org/tiny at kCommit.
class FakeHub {
 public:
  explicit FakeHub(std::vector<RepoFile> files) : files_(std::move(files)) {
    server_.Get(R"(/api/models/org/tiny/revision/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
      if (req.matches[1] != "main" && req.matches[1] != kCommit) {
        res.status = 404;
        res.set_content(R"({"error":"Revision Not Found"})", "application/json");
        return;
      }
      Json siblings = Json::array();
      for (const auto& f : files_) {
        if (f.lfs)
          siblings.push_back({{"rfilename", f.path}, {"size", f.content.size()}, {"blobId", std::string(40, 'f')},
                              {"lfs", {{"sha256", f.listed_hash.empty() ? sha256_hex(f.content) : f.listed_hash},
                                       {"size", f.content.size()}, {"pointerSize", 134}}}});
        else
          siblings.push_back({{"rfilename", f.path}, {"size", f.content.size()},
                              {"blobId", f.listed_hash.empty() ? git_blob_id(f.content) : f.listed_hash}});
      }
      res.set_content(Json{{"id", "org/tiny"}, {"sha", kCommit}, {"siblings", siblings}}.dump(), "application/json");
    });
    server_.Get(R"(/org/tiny/resolve/([0-9a-f]{40})/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      const RepoFile* f = nullptr;
      for (const auto& x : files_)
        if (x.path == req.matches[2].str()) f = &x;
      if (!f || req.matches[1] != kCommit) {
        res.status = 404;
        return;
      }
      {
        std::lock_guard lock(mutex_);
        ranges_.push_back(f->path + " " + req.get_header_value("Range"));
      }
      if (cut_next_ > 0 && f->path == cut_file_) {
        // Sends the first cut_next_ bytes of the promised whole, then drops the connection.
        const std::size_t cut = cut_next_.exchange(0);
        const std::string content = f->content;
        res.set_content_provider(content.size(), "application/octet-stream",
                                 [content, cut](std::size_t offset, std::size_t, httplib::DataSink& sink) {
                                   if (offset >= cut) return false;
                                   sink.write(content.data() + offset, cut - offset);
                                   return true;
                                 });
        return;
      }
      res.set_content(f->content, "application/octet-stream");  // httplib serves Range requests from it
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeHub() {
    server_.stop();
    thread_.join();
  }

  std::string endpoint() const { return fmt::format("http://127.0.0.1:{}", port_); }
  void cut_next_download(const std::string& path, std::size_t bytes) {
    cut_file_ = path;
    cut_next_ = bytes;
  }
  std::vector<std::string> requests() {
    std::lock_guard lock(mutex_);
    return ranges_;
  }

 private:
  std::vector<RepoFile> files_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<std::string> ranges_;  // "path Range-header" of each file request
  std::string cut_file_;
  std::atomic<std::size_t> cut_next_{0};
};

std::string pattern_bytes(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7919) >> 3);
  return s;
}

PullOptions options_for(const FakeHub& hub, const fs::path& cache) {
  PullOptions o;
  o.endpoint = hub.endpoint();
  o.cache = cache;
  return o;
}


TEST(HfPull, WritesTheHuggingFaceCacheLayout) {
  const std::string weights = pattern_bytes(300000);
  FakeHub hub({{"config.json", R"({"model_type":"llama"})"}, {"model.safetensors", weights, true}, {"sub/notes.txt", "hello"},
               {"pytorch_model.bin", "not wanted"}});
  ScratchDir dir;
  std::uint64_t seen = 0;
  auto o = options_for(hub, dir.path());
  o.on_bytes = [&](std::uint64_t n) { seen += n; };
  auto r = pull_hf("org/tiny", o);
  EXPECT_EQ(r.commit, kCommit);
  EXPECT_EQ(r.files, 3u);
  EXPECT_EQ(r.downloaded, weights.size() + 22 + 5);
  EXPECT_EQ(seen, r.downloaded);
  const fs::path repo = dir / "models--org--tiny";
  EXPECT_EQ(read_text(repo / "refs/main"), kCommit);
  const fs::path snap = repo / "snapshots" / kCommit;
  EXPECT_EQ(fs::read_symlink(snap / "model.safetensors"), fs::path("../../blobs") / sha256_hex(weights));
  EXPECT_EQ(fs::read_symlink(snap / "sub/notes.txt"), fs::path("../../../blobs") / git_blob_id("hello"));
  EXPECT_EQ(read_text(snap / "model.safetensors"), weights);
  EXPECT_EQ(read_text(snap / "sub/notes.txt"), "hello");
  EXPECT_FALSE(fs::exists(snap / "pytorch_model.bin"));  // a format aero does not read
  for (const auto& e : fs::directory_iterator(repo / "blobs")) EXPECT_NE(e.path().extension(), ".incomplete");
  // The name resolves to it.
  EXPECT_EQ(format::resolve_hf("org/tiny", dir.path()).path, snap);
  // A second pull fetches nothing.
  auto again = pull_hf("org/tiny", options_for(hub, dir.path()));
  EXPECT_EQ(again.downloaded, 0u);
  EXPECT_EQ(again.already_present, 3u);
}

TEST(HfPull, InterruptedDownloadResumes) {
  const std::string weights = pattern_bytes(1 << 20);
  FakeHub hub({{"config.json", "{}"}, {"model.safetensors", weights, true}});
  ScratchDir dir;
  const std::size_t cut = 400000;
  hub.cut_next_download("model.safetensors", cut);
  const auto message = error_of([&] { pull_hf("org/tiny", options_for(hub, dir.path())); });
  EXPECT_NE(message.find("download of model.safetensors interrupted at 400000 of 1048576 bytes"), std::string::npos) << message;
  const fs::path repo = dir / "models--org--tiny";
  const fs::path partial = repo / "blobs" / (sha256_hex(weights) + ".incomplete");
  ASSERT_TRUE(fs::exists(partial));
  EXPECT_EQ(fs::file_size(partial), cut);
  // Nothing names the half-done model yet.
  EXPECT_FALSE(fs::exists(repo / "refs/main"));
  EXPECT_FALSE(fs::exists(repo / "snapshots" / kCommit / "model.safetensors"));
  EXPECT_THROW(format::resolve_hf("org/tiny", dir.path()), Error);

  auto r = pull_hf("org/tiny", options_for(hub, dir.path()));
  EXPECT_EQ(r.downloaded, weights.size() - cut);  // only the rest
  const auto requests = hub.requests();
  ASSERT_FALSE(requests.empty());
  EXPECT_EQ(requests.back(), "model.safetensors bytes=400000-");
  EXPECT_FALSE(fs::exists(partial));
  EXPECT_EQ(read_text(repo / "snapshots" / kCommit / "model.safetensors"), weights);
  EXPECT_EQ(read_text(repo / "refs/main"), kCommit);
}

TEST(HfPull, HashMismatchIsRefusedAndRemoved) {
  const std::string weights = pattern_bytes(50000);
  FakeHub hub({{"config.json", "{}"}, {"model.safetensors", weights, true, std::string(64, 'e')}});
  ScratchDir dir;
  const auto message = error_of([&] { pull_hf("org/tiny", options_for(hub, dir.path())); });
  EXPECT_NE(message.find("model.safetensors has SHA-256 " + sha256_hex(weights) + " where the hub lists eeee"), std::string::npos)
      << message;
  const fs::path repo = dir / "models--org--tiny";
  for (const auto& e : fs::directory_iterator(repo / "blobs")) EXPECT_EQ(e.path().filename(), git_blob_id("{}"));
  EXPECT_FALSE(fs::exists(repo / "snapshots" / kCommit / "model.safetensors"));
  EXPECT_FALSE(fs::exists(repo / "refs/main"));
}

TEST(HfPull, GitBlobMismatchIsRefusedToo) {
  FakeHub hub({{"config.json", "{}", false, std::string(40, 'a')}});
  ScratchDir dir;
  EXPECT_NE(error_of([&] { pull_hf("org/tiny", options_for(hub, dir.path())); }).find("config.json has git blob id"),
            std::string::npos);
  EXPECT_TRUE(fs::is_empty(dir / "models--org--tiny/blobs"));
}

TEST(HfPull, HttpErrorsAndChoices) {
  FakeHub hub({{"a-Q4_0.gguf", "x", true}, {"a-Q8_0.gguf", "y", true}});
  ScratchDir dir;
  auto o = options_for(hub, dir.path());
  EXPECT_NE(error_of([&] { pull_hf("org/absent", o); }).find("hf:org/absent revision main: not found (HTTP 404)"), std::string::npos);
  o.revision = "v9";
  EXPECT_NE(error_of([&] { pull_hf("org/tiny", o); }).find("not found (HTTP 404)"), std::string::npos);
  o.revision = "main";
  EXPECT_NE(error_of([&] { pull_hf("org/tiny", o); }).find("holds 2 GGUF files (a-Q4_0.gguf, a-Q8_0.gguf); choose with --include"),
            std::string::npos);
  o.include = {"*Q8_0.gguf"};
  auto r = pull_hf("org/tiny", o);
  EXPECT_EQ(r.files, 1u);
  EXPECT_EQ(format::resolve_hf("org/tiny", dir.path()).path.filename(), "a-Q8_0.gguf");
  o.include = {"*.nothing"};
  EXPECT_NE(error_of([&] { pull_hf("org/tiny", o); }).find("no file of the repository matches --include"), std::string::npos);
  o.endpoint = "http://127.0.0.1:1";
  EXPECT_NE(error_of([&] { pull_hf("org/tiny", o); }).find("cannot reach http://127.0.0.1:1"), std::string::npos);
  EXPECT_NE(error_of([&] { pull_hf("../x", o); }).find("not a Hugging Face model id"), std::string::npos);
}

TEST(HfPull, ListingParserRefusesPathsOutOfTheSnapshot) {
  const std::string sha = R"("sha":"0123456789abcdef0123456789abcdef01234567")";
  auto parse = [&](const std::string& siblings) {
    return error_of([&] { parse_hub_listing("{" + sha + R"(,"siblings":)" + siblings + "}", "list"); });
  };
  const std::string blob = R"("blobId":"0123456789abcdef0123456789abcdef01234567","size":1)";
  for (const char* bad : {"../x", "/etc/passwd", "a//b", "a/./b", "a/.."})
    EXPECT_NE(parse(std::string(R"([{"rfilename":")") + bad + "\"," + blob + "}]").find("would leave the snapshot"), std::string::npos) << bad;
  EXPECT_NE(parse(R"([{"rfilename":"x","size":1}])").find("no 'blobId'"), std::string::npos);
  EXPECT_NE(parse(R"([{"rfilename":"x","lfs":{"sha256":"zz","size":1}}])").find("lacks a sha256"), std::string::npos);
  EXPECT_NE(error_of([&] { parse_hub_listing(R"({"siblings":[]})", "list"); }).find("no 'sha'"), std::string::npos);
  auto ok = parse_hub_listing("{" + sha + R"(,"siblings":[{"rfilename":"d/x.json",)" + blob + "}]}", "list");
  ASSERT_EQ(ok.files.size(), 1u);
  EXPECT_EQ(ok.files[0].path, "d/x.json");
  EXPECT_FALSE(ok.files[0].lfs);
}

// The whole way: `aero pull` from the loopback hub, then `aero run hf:org/tiny` reproduces
// transformers' greedy continuation.
TEST(HfPull, PulledFixtureRunsFromTheCli) {
  AERO_REQUIRE_SHARED(shared);
  const fs::path model = shared / "fixtures/hf/llama";
  FakeHub hub({{"config.json", read_text(model / "config.json")},
               {"model.safetensors", read_text(model / "model.safetensors"), true}});
  ScratchDir dir;
  const std::string env = fmt::format("HF_ENDPOINT={} HF_HUB_CACHE={} ", hub.endpoint(), dir.path().string());
  const std::string aero = env + test::built_binary(AERO_BINARY);
  auto pulled = test::run_command(aero, "pull hf:org/tiny");
  ASSERT_EQ(pulled.status, 0) << pulled.err;
  EXPECT_NE(pulled.out.find("hf:org/tiny: 2 files"), std::string::npos) << pulled.out;
  const auto ref = test::HfReference::load(model);
  const auto generated = std::span(ref.greedy_ids).subspan(ref.prompt_ids.size());
  auto r = test::run_command(aero, fmt::format("run hf:org/tiny --ids {} --greedy -n {} --print-ids --ignore-eos -t 2",
                                               fmt::join(ref.prompt_ids, ","), generated.size()));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, fmt::format("{}\n", fmt::join(generated, ",")));
  auto bad = test::run_command(aero, "pull ollama:llama3");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("aero pull takes hf:ORG/NAME"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace aero::hub
