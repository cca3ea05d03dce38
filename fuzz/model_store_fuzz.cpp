// What aero reads from the model stores: Ollama manifests, the Hugging Face hub's file list
// (aero pull), and model names themselves, resolved against empty stores. Each either parses
// or throws aero::Error; a digest or path that gets through must stay inside its store.
#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>

#include "aero/error.h"
#include "aero/format/model_name.h"
#include "aero/hub/hf_pull.h"

namespace {

// Relative, and no part empty, "." or "..": the path stays inside the snapshot folder.
bool stays_inside(std::string_view path) {
  if (path.empty() || path.front() == '/') return false;
  for (std::size_t start = 0; start <= path.size();) {
    auto end = std::min(path.find('/', start), path.size());
    auto part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto manifest = aero::format::parse_ollama_manifest(text, "fuzz");
    for (const auto& layer : manifest.layers)
      if (layer.blob_name().find('/') != std::string::npos || layer.blob_name().size() != 71) std::abort();
  } catch (const aero::Error&) {
  }
  try {
    const auto listing = aero::hub::parse_hub_listing(text, "fuzz");
    for (const auto& f : listing.files)
      if (!stays_inside(f.path)) std::abort();
  } catch (const aero::Error&) {
  }
  // Names: the stores are folders that do not exist, so every name ends in an error or a path.
  static const bool stores = [] {
    ::setenv("HF_HUB_CACHE", "/nonexistent-aero-fuzz/hub", 1);
    ::setenv("OLLAMA_MODELS", "/nonexistent-aero-fuzz/ollama", 1);
    return true;
  }();
  (void)stores;
  if (size < 512 && text.find('\0') == std::string_view::npos) {
    for (const char* prefix : {"hf:", "ollama:", ""}) {
      try {
        (void)aero::format::resolve_model_name(std::string(prefix) + std::string(text));
      } catch (const aero::Error&) {
      }
    }
  }
  return 0;
}
