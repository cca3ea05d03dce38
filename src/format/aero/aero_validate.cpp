#include "aero/format/aero_validate.h"

#include <atomic>
#include <mutex>

#include "aero/error.h"
#include "aero/format/aero_model.h"
#include "aero/parallel.h"
#include "format/aero/integrity.h"

namespace aero::format {
namespace {

class Findings {
 public:
  void error(std::string message) {
    std::lock_guard lock(mutex_);
    report_.errors.push_back(std::move(message));
  }
  void warning(std::string message) {
    std::lock_guard lock(mutex_);
    report_.warnings.push_back(std::move(message));
  }
  void hashed(std::uint64_t bytes) { hashed_ += bytes; }
  ValidationReport take() {
    report_.bytes_hashed = hashed_.load();
    return std::move(report_);
  }

 private:
  std::mutex mutex_;
  ValidationReport report_;
  std::atomic<std::uint64_t> hashed_{0};
};

std::string label(const AeroFile& f, const Chunk& c) {
  return fmt::format("{}: chunk {} ({} '{}')", f.path().filename().string(), c.toc_index, c.fourcc, c.name);
}

void check_control_plane(const AeroFile& file, Findings& out, bool required) {
  const Chunk* ihsh = file.find_chunk("IHSH", "");
  if (!ihsh) {
    if (required) out.error(fmt::format("{}: no IHSH chunk, so there is no control-plane digest to check",
                                        file.path().filename().string()));
    return;
  }
  try {
    auto payload = file.payload(*ihsh);
    Json j = parse_msgpack(payload, label(file, *ihsh), /*zero_padded=*/true);
    auto digest = j.find("digest");
    auto ranges = j.find("covered_ranges");
    if (!j.is_object() || j.value("algo", "") != "blake3-256" || digest == j.end() || !digest->is_binary() ||
        digest->get_binary().size() != 32 || ranges == j.end() || !ranges->is_array() || ranges->size() != 1)
      return out.error(label(file, *ihsh) + ": malformed IHSH payload");
    const Json& range = (*ranges)[0];
    if (!range.is_array() || range.size() != 2 || range[0] != 0 || !range[1].is_number_unsigned())
      return out.error(label(file, *ihsh) + ": IHSH covers an unexpected range");
    std::uint64_t end = range[1].get<std::uint64_t>();
    if (end != file.payload_start())
      return out.error(fmt::format("{}: IHSH covers [0, {}), the control plane ends at {}", label(file, *ihsh), end,
                                   file.payload_start()));
    Digest expected;
    std::copy(digest->get_binary().begin(), digest->get_binary().end(), expected.begin());
    auto actual = integrity::control_plane_digest(file.mapped().bytes(), file.header().toc_offset,
                                                  static_cast<std::uint32_t>(file.chunks().size()), end);
    if (actual != expected)
      out.error(fmt::format("{}: control-plane digest mismatch: header, TOC or string table altered",
                            file.path().filename().string()));
  } catch (const Error& e) {
    out.error(e.what());
  }
}

struct WeightJob {
  const AeroFile* file;
  const Chunk* chunk;
  const Chunk* phsh;  // may be null
};

// One pass over a shard feeds the chunk hash and, when PHSH exists, the page hashes.
void check_weights(const WeightJob& job, Findings& out) {
  const AeroFile& file = *job.file;
  const Chunk& c = *job.chunk;
  auto bytes = file.stored_bytes(c);
  file.mapped().advise_sequential(c.offset, c.length);
  std::optional<integrity::PageHashes> pages;
  if (job.phsh) {
    try {
      pages = integrity::parse_phsh(file.payload(*job.phsh), label(file, *job.phsh));
      if (pages->digests.size() != integrity::page_count(c.length, pages->page_size)) {
        out.error(fmt::format("{}: {} page digests for a {}-byte shard of {}-byte pages", label(file, *job.phsh),
                              pages->digests.size(), c.length, pages->page_size));
        pages.reset();
      }
    } catch (const Error& e) {
      out.error(e.what());
    }
  }
  const std::uint64_t step = pages ? pages->page_size : (8ull << 20);
  Blake3 whole;
  std::size_t bad_pages = 0, first_bad = 0;
  for (std::uint64_t at = 0, page = 0; at < c.length; at += step, ++page) {
    auto piece = bytes.subspan(at, std::min<std::uint64_t>(step, c.length - at));
    whole.update(piece);
    if (pages && blake3(piece) != pages->digests[page]) {
      if (bad_pages++ == 0) first_bad = page;
    }
  }
  out.hashed(c.length * (pages ? 2 : 1));
  if (whole.finish() != c.blake3) out.error(label(file, c) + ": BLAKE3 mismatch (weight data corrupt)");
  if (bad_pages)
    out.error(fmt::format("{}: {} page(s) fail their PHSH digest, first at byte {}", label(file, c), bad_pages,
                          first_bad * pages->page_size));
}

}  // namespace

ValidationReport validate(const std::filesystem::path& path, ValidationLevel level, unsigned threads) {
  Findings out;
  std::optional<AeroModel> opened;
  try {
    opened.emplace(AeroModel::open(path));
  } catch (const Error& e) {
    out.error(e.what());
    return out.take();
  }
  const AeroModel& model = *opened;
  for (const auto& w : model.warnings()) out.warning(w);

  if (level == ValidationLevel::Control) {
    for (const AeroFile* f : model.files()) check_control_plane(*f, out, /*required=*/true);
    return out.take();
  }

  std::vector<WeightJob> weights;
  for (const AeroFile* f : model.files()) {
    check_control_plane(*f, out, /*required=*/false);
    for (const Chunk& c : f->chunks()) {
      if (c.fourcc == "WTSH") {
        const Chunk* phsh = f->find_chunk("PHSH", c.name + ".phsh");
        weights.push_back({f, &c, phsh});
        continue;
      }
      // MJSN/MMSG/TIDX were verified on open; every other chunk is checked here.
      if (c.fourcc == "MJSN" || c.fourcc == "MMSG" || c.fourcc == "TIDX") continue;
      try {
        if (blake3(f->payload(c)) != c.blake3) out.error(label(*f, c) + ": BLAKE3 mismatch");
      } catch (const Error& e) {
        out.error(e.what());
      }
    }
  }
  if (level != ValidationLevel::Full) return out.take();

  // Jobs: weight shards (largest first, so the long ones start early), tensor hashes, set checksums.
  std::sort(weights.begin(), weights.end(), [](auto& a, auto& b) { return a.chunk->length > b.chunk->length; });
  std::vector<std::function<void()>> jobs;
  for (const auto& w : weights) jobs.emplace_back([&out, w] { check_weights(w, out); });
  for (const auto& t : model.tensors()) {
    if (t.hash_b3.empty()) continue;
    jobs.emplace_back([&out, &model, &t] {
      auto data = model.tensor_data(t);
      out.hashed(data.size());
      if (to_hex(blake3(data)) != t.hash_b3) out.error(fmt::format("tensor '{}': hash_b3 mismatch", t.name));
    });
  }
  for (const auto& f : model.set_files()) {
    if (f.sha256.empty()) continue;
    jobs.emplace_back([&out, f] {
      try {
        if (sha256_file_hex(f.path) != f.sha256)
          out.error(fmt::format("{}: SHA-256 differs from the set manifest", f.path.filename().string()));
      } catch (const Error& e) {
        out.error(e.what());
      }
    });
  }
  parallel_for(jobs.size(), threads, [&](std::size_t i) { jobs[i](); });
  return out.take();
}

}  // namespace aero::format
