// Resolving hf:/ollama: names to files in the stores those tools keep on disk. Every part of a
// name becomes a path component, so each is checked against the characters its registry allows
// (no "..", no separators): a name can never reach outside its store.
#include "aero/format/model_name.h"

#include <algorithm>
#include <cstdlib>

#include "aero/error.h"
#include "aero/mapped_file.h"

namespace aero::format {

namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t kMaxManifestBytes = 1 << 20;
constexpr std::uint64_t kMaxLayerTextBytes = 4 << 20;
constexpr const char* kOllamaRegistry = "registry.ollama.ai";
constexpr const char* kOllamaModelLayer = "application/vnd.ollama.image.model";
constexpr const char* kOllamaTemplateLayer = "application/vnd.ollama.image.template";
constexpr const char* kOllamaParamsLayer = "application/vnd.ollama.image.params";

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

fs::path home_dir() {
  std::string home = env_or_empty("HOME");
  return home.empty() ? fs::path("/") : fs::path(home);
}

// A name part that is safe as one path component: hub/registry characters, no "." or "..".
bool is_safe_part(std::string_view s, std::size_t max_len = 128) {
  if (s.empty() || s.size() > max_len || s == "." || s == "..") return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    auto at = s.find(sep, start);
    parts.push_back(s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) return parts;
    start = at + 1;
  }
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::vector<std::string> subfolders(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_directory(ec)) names.push_back(it->path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// The files a snapshot holds, relative to it (symlinks into blobs/ followed).
std::uint64_t tree_bytes(const fs::path& dir) {
  std::uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) total += it->file_size(size_ec);
  }
  return total;
}

// The model inside a snapshot: the folder itself when it is a Hugging Face model folder, else
// its one GGUF file.
fs::path model_in_snapshot(const fs::path& snapshot, std::string_view name) {
  std::error_code ec;
  for (const char* marker : {"config.json", "model.safetensors", "model.safetensors.index.json"})
    if (fs::exists(snapshot / marker, ec)) return snapshot;
  std::vector<std::string> ggufs;
  for (fs::directory_iterator it(snapshot, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().extension() == ".gguf") ggufs.push_back(it->path().filename().string());
  std::sort(ggufs.begin(), ggufs.end());
  if (ggufs.size() == 1) return snapshot / ggufs[0];
  if (ggufs.empty()) fail("hf:{}: the snapshot {} holds neither config.json with safetensors weights nor a GGUF file", name, snapshot.string());
  fail("hf:{}: the snapshot holds several GGUF files ({}); name one as hf:{}/FILE", name, fmt::join(ggufs, ", "), name);
}

// Go text/template (Ollama's own templates) against Jinja: a Go action starts with a field
// (.Prompt), a variable ($x) or a Go keyword, and Go has no {% %} blocks.
bool looks_like_go_template(std::string_view text) {
  if (text.find("{%") != std::string_view::npos) return false;
  for (std::size_t at = text.find("{{"); at != std::string_view::npos; at = text.find("{{", at + 2)) {
    std::size_t i = at + 2;
    if (i < text.size() && text[i] == '-') ++i;
    while (i < text.size() && text[i] == ' ') ++i;
    if (i >= text.size()) break;
    if (text[i] == '.' || text[i] == '$') return true;
    for (std::string_view word : {"if ", "range ", "end", "else", "with ", "template ", "define ", "block "})
      if (text.substr(i, word.size()) == word) return true;
  }
  return false;
}

}  // namespace

std::string OllamaLayer::blob_name() const { return "sha256-" + digest.substr(7); }

const OllamaLayer* OllamaManifest::find(std::string_view media_type) const {
  for (const auto& l : layers)
    if (l.media_type == media_type) return &l;
  return nullptr;
}

fs::path hf_hub_cache() {
  if (auto v = env_or_empty("HF_HUB_CACHE"); !v.empty()) return v;
  if (auto v = env_or_empty("HUGGINGFACE_HUB_CACHE"); !v.empty()) return v;  // its older name
  if (auto v = env_or_empty("HF_HOME"); !v.empty()) return fs::path(v) / "hub";
  if (auto v = env_or_empty("XDG_CACHE_HOME"); !v.empty()) return fs::path(v) / "huggingface" / "hub";
  return home_dir() / ".cache" / "huggingface" / "hub";
}

fs::path ollama_models_dir() {
  if (auto v = env_or_empty("OLLAMA_MODELS"); !v.empty()) return v;
  return home_dir() / ".ollama" / "models";
}

HfRepoId parse_hf_repo_id(std::string_view text) {
  auto parts = split(text, '/');
  auto ok = [](std::string_view p) {
    return is_safe_part(p, 96) && p.find("--") == std::string_view::npos && p.find("..") == std::string_view::npos &&
           p.front() != '-' && p.front() != '.';
  };
  if (parts.size() != 2 || !ok(parts[0]) || !ok(parts[1]))
    fail("'{}' is not a Hugging Face model id (ORG/NAME: letters, digits, '.', '_', '-')", text);
  return {std::string(parts[0]), std::string(parts[1])};
}

ResolvedModel resolve_hf(std::string_view spec, const fs::path& cache) {
  // ORG/NAME[@REV][/FILE]: the repository is the first two parts.
  auto first = spec.find('/');
  auto second = first == std::string_view::npos ? std::string_view::npos : spec.find('/', first + 1);
  std::string_view repo_part = spec.substr(0, second);
  std::string_view file = second == std::string_view::npos ? std::string_view{} : spec.substr(second + 1);
  std::string revision = "main";
  if (auto at = repo_part.find('@'); at != std::string_view::npos) {
    revision = std::string(repo_part.substr(at + 1));
    repo_part = repo_part.substr(0, at);
    if (!is_safe_part(revision)) fail("hf:{}: '{}' is not a revision name", spec, revision);
  }
  const HfRepoId repo = parse_hf_repo_id(repo_part);
  const std::string name = repo.id();
  const fs::path dir = cache / repo.cache_folder();
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    fail("hf:{}: not in the Hugging Face cache {} (`aero pull hf:{}` downloads it)", name, cache.string(), name);

  std::string commit;
  if (fs::is_regular_file(dir / "refs" / revision, ec)) {
    commit = trim(read_small_file(dir / "refs" / revision, 256));
    if (!is_safe_part(commit)) fail("hf:{}: refs/{} does not hold a commit hash", name, revision);
  } else if (revision.size() == 40 && is_hex(revision) && fs::is_directory(dir / "snapshots" / revision, ec)) {
    commit = revision;
  } else if (auto snaps = subfolders(dir / "snapshots"); revision == "main" && snaps.size() == 1) {
    commit = snaps[0];  // a cache written without refs (e.g. by hand): its only snapshot
  } else {
    fail("hf:{}: no revision '{}' in {} (refs/{} is missing)", name, revision, dir.string(), revision);
  }
  const fs::path snapshot = dir / "snapshots" / commit;
  if (!fs::is_directory(snapshot, ec))
    fail("hf:{}: revision '{}' is commit {}, whose snapshot is missing from {}", name, revision, commit, dir.string());

  ResolvedModel r;
  r.name = name;
  if (file.empty()) {
    r.path = model_in_snapshot(snapshot, name);
    return r;
  }
  for (auto part : split(file, '/'))
    if (!is_safe_part(part, 255)) fail("hf:{}: '{}' is not a file name inside the repository", name, file);
  r.path = snapshot / fs::path(std::string(file));
  if (!fs::exists(r.path, ec)) fail("hf:{}: no file '{}' in snapshot {}", name, file, commit);
  return r;
}

OllamaManifest parse_ollama_manifest(std::string_view json, std::string_view where) {
  const Json doc = parse_json(json, where);
  if (!doc.is_object() || !doc.contains("layers") || !doc["layers"].is_array())
    fail("{}: not an Ollama manifest (no 'layers' array)", where);
  OllamaManifest m;
  for (const auto& l : doc["layers"]) {
    if (!l.is_object()) fail("{}: a layer is not an object", where);
    auto string_field = [&](const char* key) {
      auto it = l.find(key);
      if (it == l.end() || !it->is_string()) fail("{}: a layer has no '{}' string", where, key);
      return it->get<std::string>();
    };
    OllamaLayer layer;
    layer.media_type = string_field("mediaType");
    layer.digest = string_field("digest");
    if (layer.digest.size() != 71 || layer.digest.rfind("sha256:", 0) != 0 || !is_hex(std::string_view(layer.digest).substr(7)))
      fail("{}: layer digest '{}' is not sha256:<64 lowercase hex digits>", where, layer.digest);
    auto size = l.find("size");
    if (size == l.end() || !size->is_number_unsigned()) fail("{}: layer {} has no non-negative integer 'size'", where, layer.digest);
    layer.size = size->get<std::uint64_t>();
    m.layers.push_back(std::move(layer));
  }
  return m;
}

ResolvedModel resolve_ollama(std::string_view spec, const fs::path& models_dir) {
  std::string_view path_part = spec;
  std::string tag = "latest";
  if (auto colon = spec.rfind(':'); colon != std::string_view::npos && spec.find('/', colon) == std::string_view::npos) {
    tag = std::string(spec.substr(colon + 1));
    path_part = spec.substr(0, colon);
  }
  auto parts = split(path_part, '/');
  bool ok = !parts.empty() && parts.size() <= 3 && is_safe_part(tag);
  for (auto p : parts) ok = ok && is_safe_part(p);
  if (!ok) fail("ollama:{}: not an Ollama model name ([HOST/][NAMESPACE/]NAME[:TAG])", spec);
  std::vector<std::string> full(parts.begin(), parts.end());
  if (full.size() < 2) full.insert(full.begin(), "library");
  if (full.size() < 3) full.insert(full.begin(), kOllamaRegistry);
  const std::string shown = std::string(path_part) + ":" + tag;

  const fs::path model_dir = models_dir / "manifests" / full[0] / full[1] / full[2];
  std::error_code ec;
  if (!fs::is_directory(model_dir, ec))
    fail("ollama:{}: not in Ollama's store {} (`ollama pull {}` downloads it)", shown, models_dir.string(), shown);
  const fs::path manifest_path = model_dir / tag;
  if (!fs::is_regular_file(manifest_path, ec)) {
    std::vector<std::string> tags;
    for (fs::directory_iterator it(model_dir, ec), end; !ec && it != end; it.increment(ec))
      tags.push_back(it->path().filename().string());
    std::sort(tags.begin(), tags.end());
    fail("ollama:{}: no tag '{}' (tags there: {})", shown, tag, tags.empty() ? "none" : fmt::format("{}", fmt::join(tags, ", ")));
  }
  const auto manifest = parse_ollama_manifest(read_small_file(manifest_path, kMaxManifestBytes), manifest_path.string());
  auto blob = [&](const OllamaLayer& layer, std::string_view what) {
    fs::path p = models_dir / "blobs" / layer.blob_name();
    std::error_code size_ec;
    if (!fs::is_regular_file(p, size_ec)) fail("ollama:{}: the {} blob {} is missing from {}", shown, what, layer.digest, (models_dir / "blobs").string());
    auto size = fs::file_size(p, size_ec);
    if (size_ec || size != layer.size)
      fail("ollama:{}: the {} blob {} is {} bytes where the manifest says {} (an unfinished download?)", shown, what,
           layer.blob_name(), size_ec ? 0 : size, layer.size);
    return p;
  };

  ResolvedModel r;
  r.name = shown;
  const OllamaLayer* model = manifest.find(kOllamaModelLayer);
  if (!model) fail("ollama:{}: the manifest has no model layer ({})", shown, kOllamaModelLayer);
  r.path = blob(*model, "model");
  if (const OllamaLayer* t = manifest.find(kOllamaTemplateLayer)) {
    r.chat_template = read_small_file(blob(*t, "template"), kMaxLayerTextBytes);
    // Ollama's own templates are Go templates, which aero's Jinja interpreter cannot render.
    if (looks_like_go_template(r.chat_template)) r.chat_template.clear();
  }
  if (const OllamaLayer* p = manifest.find(kOllamaParamsLayer)) {
    const auto where = "ollama:" + shown + " params";
    r.params = parse_json(read_small_file(blob(*p, "params"), kMaxLayerTextBytes), where);
    if (!r.params.is_object()) fail("{}: not a JSON object", where);
  }
  return r;
}

std::optional<ResolvedModel> resolve_model_name(std::string_view name) {
  if (name.rfind("hf:", 0) == 0) return resolve_hf(name.substr(3), hf_hub_cache());
  if (name.rfind("ollama:", 0) == 0) return resolve_ollama(name.substr(7), ollama_models_dir());
  // A bare ORG/NAME that is no path is a Hugging Face id, as transformers takes it.
  std::error_code ec;
  auto parts = split(name, '/');
  if (parts.size() != 2 || !is_safe_part(parts[0]) || !is_safe_part(parts[1]) || fs::exists(fs::path(name), ec))
    return std::nullopt;
  const fs::path cache = hf_hub_cache();
  try {
    (void)parse_hf_repo_id(name);
  } catch (const Error&) {
    return std::nullopt;
  }
  if (!fs::is_directory(cache / HfRepoId{std::string(parts[0]), std::string(parts[1])}.cache_folder(), ec))
    fail("{}: no such file or folder, nor a model of that name in the Hugging Face cache {}", name, cache.string());
  return resolve_hf(name, cache);
}

std::vector<StoredModel> list_hf_cache(const fs::path& cache) {
  std::vector<StoredModel> out;
  for (const auto& folder : subfolders(cache)) {
    if (folder.rfind("models--", 0) != 0) continue;
    std::string id = folder.substr(8);
    auto sep = id.find("--");
    if (sep == std::string::npos) continue;
    id = id.substr(0, sep) + "/" + id.substr(sep + 2);
    StoredModel m{"hf:" + id, 0, ""};
    const fs::path dir = cache / folder;
    std::error_code ec;
    std::string commit;
    if (fs::is_regular_file(dir / "refs" / "main", ec)) commit = trim(read_small_file(dir / "refs" / "main", 256));
    if (commit.empty() || !is_safe_part(commit) || !fs::is_directory(dir / "snapshots" / commit, ec)) {
      auto snaps = subfolders(dir / "snapshots");
      m.detail = snaps.empty() ? "no snapshot" : fmt::format("no refs/main; snapshots: {}", fmt::join(snaps, ", "));
    } else {
      m.detail = "main = " + commit.substr(0, 12);
      m.bytes = tree_bytes(dir / "snapshots" / commit);
    }
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<StoredModel> list_ollama_store(const fs::path& models_dir) {
  std::vector<StoredModel> out;
  const fs::path root = models_dir / "manifests";
  for (const auto& host : subfolders(root))
    for (const auto& ns : subfolders(root / host))
      for (const auto& name : subfolders(root / host / ns)) {
        std::vector<std::string> tags;
        std::error_code ec;
        for (fs::directory_iterator it(root / host / ns / name, ec), end; !ec && it != end; it.increment(ec))
          if (it->is_regular_file(ec)) tags.push_back(it->path().filename().string());
        std::sort(tags.begin(), tags.end());
        std::string shown = host == kOllamaRegistry ? (ns == "library" ? name : ns + "/" + name) : host + "/" + ns + "/" + name;
        for (const auto& tag : tags) {
          StoredModel m{"ollama:" + shown + ":" + tag, 0, ""};
          try {
            const auto path = root / host / ns / name / tag;
            auto manifest = parse_ollama_manifest(read_small_file(path, kMaxManifestBytes), path.string());
            for (const auto& l : manifest.layers) m.bytes += l.size;
            const OllamaLayer* model = manifest.find(kOllamaModelLayer);
            m.detail = model ? model->digest.substr(0, 19) : "no model layer";
          } catch (const Error& e) {
            m.detail = e.what();
          }
          out.push_back(std::move(m));
        }
      }
  return out;
}

}  // namespace aero::format
