// `aero pull hf:ORG/NAME`: downloads a Hugging Face repository into the cache layout
// huggingface_hub itself writes (models--ORG--NAME/{blobs,snapshots/<commit>,refs}), so that
// transformers, huggingface-cli and aero all find it. Each file is fetched into
// blobs/<id>.incomplete (resumed with a Range request when one is there), checked against the
// size and hash the hub lists (LFS files: SHA-256; others: the git blob id), and only then
// renamed to blobs/<id> and linked from the snapshot; refs/<revision> is written last.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace aero::hub {

struct HubFile {
  std::string path;     // inside the repository, '/'-separated
  std::uint64_t size = 0;
  std::string blob_id;  // LFS: the SHA-256 of the content; otherwise the git blob id (SHA-1)
  bool lfs = false;
};

struct HubListing {
  std::string commit;
  std::vector<HubFile> files;
};

// The hub's answer to GET /api/models/ORG/NAME/revision/REV?blobs=true ('sha', 'siblings' with
// 'rfilename', 'size', 'blobId', 'lfs': {'sha256', 'size'}). Throws aero::Error naming `where`
// on anything malformed, and on a file path that could leave the snapshot folder.
HubListing parse_hub_listing(std::string_view json, std::string_view where);

struct PullOptions {
  std::string endpoint;           // empty: $HF_ENDPOINT, else https://huggingface.co
  std::string revision = "main";  // a branch, tag or commit
  std::filesystem::path cache;    // empty: format::hf_hub_cache()
  // Globs (fnmatch, '*' crosses '/') on the repository's paths. Empty: every file except
  // weights aero cannot read (.bin, .pth, .pt, .h5, .msgpack, .onnx, .ot, .ckpt, original/*);
  // a repository of several GGUF files then needs one chosen.
  std::vector<std::string> include;
  // Progress: a file starts (with the bytes already there from an earlier attempt), bytes arrive.
  std::function<void(const HubFile&, std::uint64_t already)> on_file;
  std::function<void(std::uint64_t bytes)> on_bytes;
};

struct PullResult {
  std::string commit;
  std::filesystem::path snapshot;
  std::size_t files = 0;             // files in the snapshot after the pull
  std::size_t already_present = 0;   // of them, blobs that were already complete
  std::uint64_t downloaded = 0;      // bytes fetched now
};

// `repo_id`: ORG/NAME. Throws aero::Error (one line) on network, HTTP, size or hash failures;
// a file whose size or hash is wrong is deleted, an interrupted one is kept to resume.
PullResult pull_hf(std::string_view repo_id, const PullOptions& options);

}  // namespace aero::hub
