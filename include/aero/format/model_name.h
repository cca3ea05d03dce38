// Model names for models users already have: `hf:ORG/NAME[@REV][/FILE]` (or a bare ORG/NAME
// that is no path) in the Hugging Face cache, `ollama:[HOST/][NS/]NAME[:TAG]` in Ollama's
// store. ModelSource::open resolves them here, so every command, the C ABI and Python take
// them wherever they take a model path.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "aero/json.h"

namespace aero::format {

// What a name points at: the file or folder to open, and what the store adds to it.
struct ResolvedModel {
  std::filesystem::path path;
  std::string name;           // "ORG/NAME" or "NAME:TAG", as the user would write it again
  std::string chat_template;  // Ollama's template layer (empty: none)
  Json params = Json::object();  // Ollama's params layer: temperature, top_k, stop, num_ctx, ...
};

// nullopt when `name` is a path (or not a model name at all): the caller opens it as one.
// Throws aero::Error (one line) for a name whose model, revision, tag or blob is missing.
std::optional<ResolvedModel> resolve_model_name(std::string_view name);

// The stores, as their own tools find them.
// HF: $HF_HUB_CACHE (or its older name $HUGGINGFACE_HUB_CACHE), else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
std::filesystem::path hf_hub_cache();
// Ollama: $OLLAMA_MODELS, else ~/.ollama/models.
std::filesystem::path ollama_models_dir();

// ORG/NAME checked to be a Hugging Face repository id (no "..", no empty part, hub characters).
struct HfRepoId {
  std::string org, name;
  std::string id() const { return org + "/" + name; }
  // The cache folder: models--ORG--NAME.
  std::string cache_folder() const { return "models--" + org + "--" + name; }
};
HfRepoId parse_hf_repo_id(std::string_view text);  // throws on a malformed id

// `spec`: ORG/NAME[@REV][/FILE]. REV is a ref (refs/REV) or a commit; default main.
ResolvedModel resolve_hf(std::string_view spec, const std::filesystem::path& cache);
// `spec`: [HOST/][NS/]NAME[:TAG]; NS defaults to library, HOST to registry.ollama.ai, TAG to latest.
ResolvedModel resolve_ollama(std::string_view spec, const std::filesystem::path& models_dir);

// An Ollama manifest: an OCI image manifest whose layers are the model's parts.
struct OllamaLayer {
  std::string media_type;  // application/vnd.ollama.image.{model,template,params,license,...}
  std::string digest;      // sha256:<64 hex>
  std::uint64_t size = 0;
  std::string blob_name() const;  // sha256-<64 hex>, the file under blobs/
};
struct OllamaManifest {
  std::vector<OllamaLayer> layers;
  const OllamaLayer* find(std::string_view media_type) const;
};
// Throws aero::Error naming `where` on malformed JSON, a missing field or a bad digest.
OllamaManifest parse_ollama_manifest(std::string_view json, std::string_view where);

// What is in each store, for `aero list --hf / --ollama`.
struct StoredModel {
  std::string name;  // as aero takes it: hf:ORG/NAME, ollama:NAME:TAG
  std::uint64_t bytes = 0;
  std::string detail;  // the revision, or the model layer's digest
};
std::vector<StoredModel> list_hf_cache(const std::filesystem::path& cache);
std::vector<StoredModel> list_ollama_store(const std::filesystem::path& models_dir);

}  // namespace aero::format
