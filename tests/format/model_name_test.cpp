// Model names resolved in Hugging Face cache and Ollama store layouts built in a scratch folder.
#include "aero/format/model_name.h"

#include <fstream>

#include "aero/error.h"
#include "aero/format/gguf.h"
#include "aero/format/model_source.h"
#include "aero/hash.h"
#include "test_support.h"

namespace aero::format {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;
using test::error_of;

const std::string kCommitA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const std::string kCommitB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

void write_text(const fs::path& p, std::string_view text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}


// An environment variable set for one scope, restored after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// models--org--tiny with snapshots A (refs/main) and B (refs/v2), each a "model folder".
fs::path make_hf_cache(const ScratchDir& dir) {
  const fs::path repo = dir / "hub/models--org--tiny";
  for (const auto& c : {kCommitA, kCommitB}) write_text(repo / "snapshots" / c / "config.json", "{}");
  write_text(repo / "refs/main", kCommitA);
  write_text(repo / "refs/v2", kCommitB + "\n");
  return dir / "hub";
}

TEST(HfNames, RefsPickTheSnapshot) {
  ScratchDir dir;
  const auto cache = make_hf_cache(dir);
  const auto repo = cache / "models--org--tiny";
  auto r = resolve_hf("org/tiny", cache);
  EXPECT_EQ(r.path, repo / "snapshots" / kCommitA);
  EXPECT_EQ(r.name, "org/tiny");
  EXPECT_EQ(resolve_hf("org/tiny@v2", cache).path, repo / "snapshots" / kCommitB);
  EXPECT_EQ(resolve_hf("org/tiny@" + kCommitB, cache).path, repo / "snapshots" / kCommitB);
  EXPECT_NE(error_of([&] { resolve_hf("org/tiny@v3", cache); }).find("no revision 'v3'"), std::string::npos);
  EXPECT_NE(error_of([&] { resolve_hf("org/other", cache); }).find("hf:org/other: not in the Hugging Face cache"), std::string::npos);
}

TEST(HfNames, MissingSnapshotAndMissingRefs) {
  ScratchDir dir;
  const auto cache = make_hf_cache(dir);
  const auto repo = cache / "models--org--tiny";
  write_text(repo / "refs/main", "cccccccccccccccccccccccccccccccccccccccc");
  EXPECT_NE(error_of([&] { resolve_hf("org/tiny", cache); }).find("whose snapshot is missing"), std::string::npos);
  // Without refs/main, the only snapshot is taken; with two, none is.
  fs::remove(repo / "refs/main");
  EXPECT_NE(error_of([&] { resolve_hf("org/tiny", cache); }).find("no revision 'main'"), std::string::npos);
  fs::remove_all(repo / "snapshots" / kCommitB);
  EXPECT_EQ(resolve_hf("org/tiny", cache).path, repo / "snapshots" / kCommitA);
  write_text(repo / "refs/main", "../../../etc");
  EXPECT_NE(error_of([&] { resolve_hf("org/tiny", cache); }).find("does not hold a commit hash"), std::string::npos);
}

TEST(HfNames, GgufRepositories) {
  ScratchDir dir;
  const auto snap = dir / "models--org--q/snapshots" / kCommitA;
  write_text(dir / "models--org--q/refs/main", kCommitA);
  write_text(snap / "m-Q4_0.gguf", "x");
  write_text(snap / "README.md", "x");
  EXPECT_EQ(resolve_hf("org/q", dir.path()).path, snap / "m-Q4_0.gguf");
  write_text(snap / "m-Q8_0.gguf", "x");
  EXPECT_NE(error_of([&] { resolve_hf("org/q", dir.path()); }).find("several GGUF files (m-Q4_0.gguf, m-Q8_0.gguf); name one as hf:org/q/FILE"),
            std::string::npos);
  EXPECT_EQ(resolve_hf("org/q/m-Q8_0.gguf", dir.path()).path, snap / "m-Q8_0.gguf");
  EXPECT_NE(error_of([&] { resolve_hf("org/q/absent.gguf", dir.path()); }).find("no file 'absent.gguf'"), std::string::npos);
  EXPECT_NE(error_of([&] { resolve_hf("org/q/../../x", dir.path()); }).find("not a file name"), std::string::npos);
  fs::remove(snap / "m-Q4_0.gguf");
  fs::remove(snap / "m-Q8_0.gguf");
  EXPECT_NE(error_of([&] { resolve_hf("org/q", dir.path()); }).find("neither config.json"), std::string::npos);
}

TEST(HfNames, RepositoryIdsStayInTheCache) {
  for (const char* bad : {"../x", "org", "org/", "/name", "org/na..me", "or--g/x", "org/x/", "a/b c", ".org/x"})
    EXPECT_NE(error_of([&] { parse_hf_repo_id(bad); }).find("not a Hugging Face model id"), std::string::npos) << bad;
  EXPECT_EQ(parse_hf_repo_id("meta-llama/Llama-3.2-1B").cache_folder(), "models--meta-llama--Llama-3.2-1B");
}

TEST(HfNames, CacheLocationFromTheEnvironment) {
  ScopedEnv hub("HF_HUB_CACHE", "");
  ScopedEnv legacy("HUGGINGFACE_HUB_CACHE", "");
  ScopedEnv home("HF_HOME", "/hf-home");
  ::unsetenv("HF_HUB_CACHE");
  ::unsetenv("HUGGINGFACE_HUB_CACHE");
  EXPECT_EQ(hf_hub_cache(), fs::path("/hf-home/hub"));
  ::setenv("HUGGINGFACE_HUB_CACHE", "/legacy-cache", 1);
  EXPECT_EQ(hf_hub_cache(), fs::path("/legacy-cache"));
  ::setenv("HF_HUB_CACHE", "/hub-cache", 1);
  EXPECT_EQ(hf_hub_cache(), fs::path("/hub-cache"));
  ScopedEnv ollama("OLLAMA_MODELS", "/ollama");
  EXPECT_EQ(ollama_models_dir(), fs::path("/ollama"));
}

TEST(HfNames, BareIdsOnlyWhenNoSuchPath) {
  ScratchDir dir;
  const auto cache = make_hf_cache(dir);
  ScopedEnv env("HF_HUB_CACHE", cache.string());
  auto r = resolve_model_name("org/tiny");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->path, cache / "models--org--tiny/snapshots" / kCommitA);
  EXPECT_TRUE(resolve_model_name("hf:org/tiny@v2").has_value());
  EXPECT_FALSE(resolve_model_name(cache.string()).has_value());          // a path
  EXPECT_FALSE(resolve_model_name("model.gguf").has_value());            // no ORG/
  EXPECT_FALSE(resolve_model_name("a/b/c.gguf").has_value());            // three parts
  EXPECT_NE(error_of([&] { resolve_model_name("nowhere/model.gguf"); }).find("no such file or folder, nor a model"),
            std::string::npos);
}

// An Ollama store: blobs named by digest, manifests naming them.
struct OllamaStore {
  fs::path root;
  std::string add_blob(std::string_view content) {
    const std::string hex = to_hex(sha256(content));
    write_text(root / "blobs" / ("sha256-" + hex), content);
    return "sha256:" + hex;
  }
  static Digest sha256(std::string_view content) {
    ScratchDir d;
    write_text(d / "f", content);
    return *digest_from_hex(sha256_file_hex(d / "f"));
  }
  Json layer(const char* type, std::string_view content) {
    return {{"mediaType", std::string("application/vnd.ollama.image.") + type}, {"digest", add_blob(content)},
            {"size", content.size()}};
  }
  void manifest(const std::string& path, const Json& layers) {
    Json m = {{"schemaVersion", 2}, {"mediaType", "application/vnd.docker.distribution.manifest.v2+json"}, {"layers", layers}};
    write_text(root / "manifests" / path, m.dump());
  }
};

TEST(OllamaNames, ManifestLayersAndTags) {
  ScratchDir dir;
  OllamaStore store{dir.path()};
  const std::string jinja = "{% for m in messages %}{{ m.content }}{% endfor %}";
  Json layers = Json::array({store.layer("model", "GGUF-model-bytes"), store.layer("template", jinja),
                             store.layer("params", R"({"temperature":0.2,"stop":["<end>"]})"), store.layer("license", "MIT")});
  store.manifest("registry.ollama.ai/library/tiny/latest", layers);
  store.manifest("registry.ollama.ai/library/tiny/q8", Json::array({store.layer("model", "other")}));
  store.manifest("registry.ollama.ai/someone/tiny/latest", Json::array({store.layer("model", "ns model")}));
  store.manifest("example.com/team/tiny/v1", Json::array({store.layer("model", "hosted")}));

  auto r = resolve_ollama("tiny", dir.path());
  EXPECT_EQ(r.name, "tiny:latest");
  EXPECT_EQ(test::read_bytes(r.path), std::vector<std::uint8_t>({'G', 'G', 'U', 'F', '-', 'm', 'o', 'd', 'e', 'l', '-', 'b', 'y', 't', 'e', 's'}));
  EXPECT_EQ(r.chat_template, jinja);
  EXPECT_EQ(r.params["temperature"], 0.2);
  EXPECT_EQ(r.params["stop"][0], "<end>");
  EXPECT_EQ(resolve_ollama("tiny:latest", dir.path()).path, r.path);
  EXPECT_EQ(fs::file_size(resolve_ollama("tiny:q8", dir.path()).path), 5u);
  EXPECT_TRUE(resolve_ollama("tiny:q8", dir.path()).chat_template.empty());
  EXPECT_EQ(fs::file_size(resolve_ollama("someone/tiny", dir.path()).path), 8u);
  EXPECT_EQ(fs::file_size(resolve_ollama("example.com/team/tiny:v1", dir.path()).path), 6u);

  EXPECT_NE(error_of([&] { resolve_ollama("tiny:nope", dir.path()); }).find("ollama:tiny:nope: no tag 'nope' (tags there: latest, q8)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { resolve_ollama("absent", dir.path()); }).find("not in Ollama's store"), std::string::npos);
  for (const char* bad : {"../x", "a/../../b", "a:b/c", "", "a//b", "w/x/y/z", "tiny:"})
    EXPECT_NE(error_of([&] { resolve_ollama(bad, dir.path()); }).find("not an Ollama model name"), std::string::npos) << bad;
}

TEST(OllamaNames, MissingOrShortBlobs) {
  ScratchDir dir;
  OllamaStore store{dir.path()};
  auto model = store.layer("model", "0123456789");
  store.manifest("registry.ollama.ai/library/m/latest", Json::array({model}));
  const fs::path blob = dir / "blobs" / ("sha256-" + model["digest"].get<std::string>().substr(7));
  fs::resize_file(blob, 4);
  EXPECT_NE(error_of([&] { resolve_ollama("m", dir.path()); }).find("is 4 bytes where the manifest says 10 (an unfinished download?)"),
            std::string::npos);
  fs::remove(blob);
  EXPECT_NE(error_of([&] { resolve_ollama("m", dir.path()); }).find("the model blob sha256:"), std::string::npos);
  store.manifest("registry.ollama.ai/library/m/latest", Json::array({store.layer("template", "x")}));
  EXPECT_NE(error_of([&] { resolve_ollama("m", dir.path()); }).find("no model layer"), std::string::npos);
}

TEST(OllamaNames, GoTemplatesAreNotTakenForJinja) {
  ScratchDir dir;
  OllamaStore store{dir.path()};
  store.manifest("registry.ollama.ai/library/m/latest",
                 Json::array({store.layer("model", "x"),
                              store.layer("template", "{{ if .System }}<|system|>{{ .System }}{{ end }}{{ .Prompt }}")}));
  EXPECT_TRUE(resolve_ollama("m", dir.path()).chat_template.empty());
}

TEST(OllamaNames, ManifestParserRefusesMalformedInput) {
  const std::string good = "sha256:" + std::string(64, 'a');
  auto parse = [](const std::string& s) { return error_of([&] { parse_ollama_manifest(s, "m"); }); };
  EXPECT_NE(parse("not json").find("m:"), std::string::npos);
  EXPECT_NE(parse("{}").find("no 'layers' array"), std::string::npos);
  EXPECT_NE(parse(R"({"layers":[1]})").find("not an object"), std::string::npos);
  EXPECT_NE(parse(R"({"layers":[{"digest":")" + good + R"(","size":1}]})").find("no 'mediaType'"), std::string::npos);
  EXPECT_NE(parse(R"({"layers":[{"mediaType":"x","digest":"sha256:../../x","size":1}]})").find("is not sha256:"), std::string::npos);
  EXPECT_NE(parse(R"({"layers":[{"mediaType":"x","digest":")" + good + R"(","size":-1}]})").find("'size'"), std::string::npos);
  auto m = parse_ollama_manifest(R"({"layers":[{"mediaType":"x","digest":")" + good + R"(","size":7}]})", "m");
  ASSERT_EQ(m.layers.size(), 1u);
  EXPECT_EQ(m.layers[0].blob_name(), "sha256-" + std::string(64, 'a'));
  EXPECT_EQ(m.layers[0].size, 7u);
}

TEST(StoredModels, ListsBothStores) {
  ScratchDir dir;
  const auto cache = make_hf_cache(dir);
  auto hf = list_hf_cache(cache);
  ASSERT_EQ(hf.size(), 1u);
  EXPECT_EQ(hf[0].name, "hf:org/tiny");
  EXPECT_EQ(hf[0].bytes, 2u);  // "{}"
  EXPECT_EQ(hf[0].detail, "main = aaaaaaaaaaaa");
  OllamaStore store{dir / "ollama"};
  store.manifest("registry.ollama.ai/library/tiny/latest", Json::array({store.layer("model", "12345"), store.layer("params", "{}")}));
  store.manifest("registry.ollama.ai/ns/other/v1", Json::array({store.layer("model", "1")}));
  auto ol = list_ollama_store(dir / "ollama");
  ASSERT_EQ(ol.size(), 2u);
  EXPECT_EQ(ol[0].name, "ollama:tiny:latest");
  EXPECT_EQ(ol[0].bytes, 7u);
  EXPECT_EQ(ol[1].name, "ollama:ns/other:v1");
  EXPECT_TRUE(list_ollama_store(dir / "absent").empty());
}

// Through ModelSource::open: the store's template fills in for a GGUF without one, its params
// become sampling defaults.
TEST(OllamaNames, ModelSourceTakesTemplateAndParams) {
  ScratchDir dir;
  auto make_gguf = [&](const fs::path& p, bool with_template) {
    GgufMetadata m;
    m.set({.key = "general.architecture", .type = GgufType::String, .value = "llama"});
    if (with_template) m.set({.key = "tokenizer.chat_template", .type = GgufType::String, .value = "own"});
    std::vector<float> w(4, 1.0f);
    write_gguf(p, m, {{"w", quant::GgmlType::F32, {4}, 16, [&](auto emit) { emit({reinterpret_cast<const std::uint8_t*>(w.data()), 16}); }}});
    const auto bytes = test::read_bytes(p);
    return std::string(bytes.begin(), bytes.end());
  };
  OllamaStore store{dir / "ollama"};
  const std::string jinja = "{% for m in messages %}{{ m.content }}{% endfor %}";
  store.manifest("registry.ollama.ai/library/bare/latest",
                 Json::array({store.layer("model", make_gguf(dir / "a.gguf", false)), store.layer("template", jinja),
                              store.layer("params", R"({"temperature":0})")}));
  store.manifest("registry.ollama.ai/library/own/latest",
                 Json::array({store.layer("model", make_gguf(dir / "b.gguf", true)), store.layer("template", jinja)}));
  ScopedEnv env("OLLAMA_MODELS", (dir / "ollama").string());
  auto bare = ModelSource::open("ollama:bare");
  EXPECT_EQ(bare->format(), SourceFormat::Gguf);
  EXPECT_EQ(bare->metadata().gguf->get_string("tokenizer.chat_template"), jinja);
  EXPECT_EQ(bare->metadata().sampling_defaults["temperature"], 0);
  EXPECT_EQ(bare->metadata().name, "bare:latest");
  ASSERT_NE(bare->find("w"), nullptr);
  auto own = ModelSource::open("ollama:own");
  EXPECT_EQ(own->metadata().gguf->get_string("tokenizer.chat_template"), "own");
  EXPECT_TRUE(own->metadata().sampling_defaults.empty());
}

}  // namespace
}  // namespace aero::format
