// The disk tier: a LayerResidency for models larger than the RAM budget. Layers the plan keeps
// in RAM are read once into owned aligned buffers; the others are read from the model file on
// every pass, with O_DIRECT (io_uring, or a pool of pread threads), into a ring of reused
// buffers: while layer i computes, the next two disk layers are already being read, and
// release(i) hands i's buffer to the third. Nothing relies on the page cache, and nothing reads
// the mapping after construction (a file truncated or rewritten under a running model is an
// aero::Error from acquire(), not garbage and not a SIGBUS).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "aero/format/model_source.h"
#include "aero/model/spec.h"
#include "aero/model/weights.h"

namespace aero::residency {

struct DiskWeightsOptions {
  int slots = 3;                        // ring buffers for disk layers
  int reads_in_flight = 8;              // pieces being read at once
  std::size_t piece_bytes = 4u << 20;   // each read request
  bool io_uring = true;                 // false: the pread thread pool
  bool direct = true;                   // false: through the page cache (dropped after each read)
  // Check every page read against the file's page digests (.aero PHSH; --verify): reads cover
  // whole pages, a page whose bytes differ is an aero::Error naming it. A source without page
  // digests is refused.
  bool verify = false;
  std::function<void(std::int64_t layer)> on_read;  // called as each disk layer's reads are queued
};

class DiskStreamedWeights final : public model::LayerResidency {
 public:
  // `cached[i]`: layer i stays in RAM; the others are read each pass. Reads the cached layers,
  // the embedding and the output head before returning; throws aero::Error as ResidentWeights.
  DiskStreamedWeights(const format::ModelSource& source, const model::ModelSpec& spec, std::vector<bool> cached,
                      DiskWeightsOptions options = {});
  ~DiskStreamedWeights() override;

  const model::GlobalWeights& globals() const override;
  const model::LayerWeights& acquire(std::int64_t layer) override;
  void release(std::int64_t layer) override;
  const model::LayerWeights& layout(std::int64_t layer) override;
  std::uint64_t bytes_per_token() const;

  struct Stats {
    std::uint64_t bytes_read = 0;  // by disk layers since construction
    std::uint64_t layer_reads = 0;
    double wait_seconds = 0;       // acquire() blocked on reads
    std::uint64_t ram_bytes = 0;   // cached layers, globals and the ring
    std::uint64_t pages_verified = 0;  // page digests checked (--verify)
    std::string engine;            // "io_uring, O_DIRECT", ...
  };
  Stats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// --verify for a model that is not read from disk each pass: every page digest of `source`
// checked once against its mapped bytes, on every core. Returns the pages checked; throws
// aero::Error naming the first page that differs, or when the source has no page digests.
std::uint64_t verify_pages(const format::ModelSource& source);

// GB/s of sequential reads of (up to) `bytes` of `path` as the disk tier reads: O_DIRECT,
// `options.reads_in_flight` pieces of `options.piece_bytes` in flight.
double measure_disk_read(const std::filesystem::path& path, std::uint64_t bytes, const DiskWeightsOptions& options = {});

}  // namespace aero::residency
