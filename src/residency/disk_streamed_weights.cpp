// The disk tier (disk_weights.h). A layer's matrices are found in the model's files, grouped
// into aligned extents (neighbouring tensors read as one), and laid out in a buffer of their
// own: a cached layer's, or a ring slot that later layers reuse. The LayerWeights handed out
// are the validated ones of model::ModelWeights with their matrices pointed into that buffer.
#include "aero/residency/disk_weights.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <utility>

#include "aero/error.h"
#include "aero/hash.h"
#include "aero/mapped_file.h"
#include "aero/parallel.h"
#include "residency/direct_reader.h"

namespace aero::residency {
namespace {

constexpr std::uint64_t kMergeGap = 1u << 20;  // tensors this close are read as one extent

std::uint64_t align_down(std::uint64_t v) { return v / kDirectAlign * kDirectAlign; }
std::uint64_t align_up(std::uint64_t v) { return (v + kDirectAlign - 1) / kDirectAlign * kDirectAlign; }

// Where some matrices lie in the files and where they go in a buffer of `bytes`.
struct Layout {
  struct Page {  // a page digest to check: bytes [offset, offset + length) of the extent's file
    const Digest* digest;
    std::uint64_t offset, length;
    std::size_t index;           // within its shard
    const std::string* shard;
  };
  struct Extent {
    int file;
    std::uint64_t offset, length, required;  // aligned offset and length; bytes the file must have
    std::uint64_t at;                         // in the buffer
    std::vector<Page> pages;                  // with verify: the whole pages it holds
  };
  std::vector<Extent> extents;
  std::vector<std::uint64_t> matrix_at;  // each matrix's first byte in the buffer
  std::uint64_t bytes = 0;
};

}  // namespace

struct DiskStreamedWeights::Impl {
  model::ModelWeights weights;
  std::vector<bool> cached;
  DiskWeightsOptions options;
  std::vector<Layout> layouts;  // per layer
  std::vector<AlignedBuffer> layer_buffers;  // cached layers' (empty for disk layers)
  AlignedBuffer embedding_buffer, output_buffer;
  struct Slot {
    AlignedBuffer buffer;
    std::int64_t layer = -1;
    std::uint64_t ticket = 0;
    bool reading = false, in_use = false;
  };
  std::vector<Slot> slots;
  std::vector<std::int64_t> disk_layers;  // ascending
  Stats stats;
  std::uint64_t bytes_per_token = 0;
  // Declared last: destroyed first, waiting for its reads before the buffers above go.
  DirectReader reader;
  std::map<std::filesystem::path, int> files;

  std::vector<format::PageDigests> pages;  // with verify

  Impl(const format::ModelSource& source, const model::ModelSpec& spec, std::vector<bool> cached_layers,
       DiskWeightsOptions o)
      : weights(source, spec),
        cached(std::move(cached_layers)),
        options(std::move(o)),
        reader({.in_flight = options.reads_in_flight, .piece_bytes = options.piece_bytes, .io_uring = options.io_uring,
                .direct = options.direct}) {
    if (cached.size() != weights.layers.size())
      fail("disk tier: a placement for {} layers given for a model of {}", cached.size(), weights.layers.size());
    if (options.verify) {
      pages = source.page_digests();
      if (pages.empty())
        fail("--verify: this {} model carries no page digests (.aero files written with --integrity do)",
             format::source_format_name(source.format()));
    }
    bytes_per_token = weights.bytes_per_token;
    for (auto& l : weights.layers) {
      layouts.push_back(layout(source, std::as_const(l).matrices()));
    }
    // Globals first (every pass reads the head; embedding rows are looked up), owned from now on.
    auto& g = weights.globals;
    const bool tied = g.output.data == g.embedding.data;
    embedding_buffer = load(source, g.embedding);
    if (tied) g.output.data = g.embedding.data;
    else output_buffer = load(source, g.output);
    stats.ram_bytes = embedding_buffer.size() + output_buffer.size();

    // Cached layers: read once, all queued together.
    layer_buffers.resize(weights.layers.size());
    std::vector<std::uint64_t> tickets;
    for (std::size_t i = 0; i < weights.layers.size(); ++i) {
      if (!cached[i]) {
        disk_layers.push_back(static_cast<std::int64_t>(i));
        continue;
      }
      layer_buffers[i] = AlignedBuffer(layouts[i].bytes);
      stats.ram_bytes += layouts[i].bytes;
      tickets.push_back(reader.submit(jobs(layouts[i], layer_buffers[i].data())));
      point(static_cast<std::int64_t>(i), layer_buffers[i].data());
    }
    for (auto t : tickets) reader.wait(t);
    for (std::size_t i = 0; i < weights.layers.size(); ++i)
      if (cached[i]) verify(layouts[i], layer_buffers[i].data());

    std::uint64_t slot_bytes = 0;
    for (auto i : disk_layers) slot_bytes = std::max(slot_bytes, layouts[static_cast<std::size_t>(i)].bytes);
    const auto n_slots = std::min<std::size_t>(static_cast<std::size_t>(std::max(options.slots, 1)), disk_layers.size());
    slots.resize(n_slots);
    for (auto& s : slots) s.buffer = AlignedBuffer(slot_bytes), stats.ram_bytes += slot_bytes;
    stats.engine = reader.engine();
    if (!disk_layers.empty()) prefetch(disk_layers.back());  // the first pass's layers, now
  }

  int file_index(const format::FileLocation& at) {
    auto it = files.find(at.path);
    if (it != files.end()) return it->second;
    const int index = reader.open(at.path, at.file_size);
    files.emplace(at.path, index);
    return index;
  }

  Layout layout(const format::ModelSource& source, const std::vector<const model::Matrix*>& ms) {
    struct Range {
      int file;
      std::uint64_t offset, length;
      std::size_t matrix;
    };
    std::vector<Range> ranges;
    for (std::size_t m = 0; m < ms.size(); ++m) {
      const auto at = source.locate({ms[m]->data, ms[m]->bytes()});
      ranges.push_back({file_index(at), at.offset, ms[m]->bytes(), m});
    }
    std::sort(ranges.begin(), ranges.end(),
              [](const Range& a, const Range& b) { return std::tie(a.file, a.offset) < std::tie(b.file, b.offset); });
    Layout l;
    l.matrix_at.resize(ms.size());
    for (std::size_t r = 0; r < ranges.size(); ++r) {
      const Range& x = ranges[r];
      auto* e = l.extents.empty() ? nullptr : &l.extents.back();
      const auto [lo, end] = whole_pages(x.file, x.offset, x.offset + x.length);
      if (e && e->file == x.file && lo <= e->offset + e->required + kMergeGap) {
        e->required = std::max(e->required, end - e->offset);
        e->length = align_up(e->required);
      } else {
        const std::uint64_t start = align_down(lo);
        l.extents.push_back({x.file, start, align_up(end - start), end - start, 0, {}});
      }
      e = &l.extents.back();
      l.matrix_at[x.matrix] = x.offset - e->offset;  // within the extent, fixed up below
    }
    for (auto& e : l.extents) e.pages = pages_within(e.file, e.offset, e.offset + e.required);
    // Extents one after another in the buffer; matrices inside theirs.
    std::uint64_t at = 0;
    std::size_t r = 0;
    for (auto& e : l.extents) {
      e.at = at;
      for (; r < ranges.size() && ranges[r].file == e.file && ranges[r].offset >= e.offset &&
             ranges[r].offset + ranges[r].length <= e.offset + e.required;
           ++r)
        l.matrix_at[ranges[r].matrix] = e.at + (ranges[r].offset - e.offset);
      at += e.length;
    }
    // The aligned end may pass the end of the file: only `required` bytes must arrive.
    for (auto& e : l.extents) {
      const auto& f = reader.file(e.file);
      if (e.offset + e.required > f.size) fail("{}: tensor data past the end of the file", f.path.string());
    }
    l.bytes = at;
    return l;
  }

  // With verify: [begin, end) of a file widened to the pages of a digested shard it touches.
  std::pair<std::uint64_t, std::uint64_t> whole_pages(int file, std::uint64_t begin, std::uint64_t end) {
    for (const auto& p : pages) {
      if (p.path != reader.file(file).path || begin < p.offset || begin >= p.offset + p.length) continue;
      const std::uint64_t first = (begin - p.offset) / p.page_size, last = (end - p.offset + p.page_size - 1) / p.page_size;
      return {p.offset + first * p.page_size, std::min(p.offset + last * p.page_size, p.offset + p.length)};
    }
    return {begin, end};
  }

  // The digested pages lying wholly within [begin, end) of a file.
  std::vector<Layout::Page> pages_within(int file, std::uint64_t begin, std::uint64_t end) {
    std::vector<Layout::Page> out;
    for (const auto& p : pages) {
      if (p.path != reader.file(file).path) continue;
      for (std::size_t i = 0; i < p.digests.size(); ++i) {
        const std::uint64_t at = p.offset + i * p.page_size, length = std::min(p.page_size, p.length - i * p.page_size);
        if (at >= begin && at + length <= end) out.push_back({&p.digests[i], at, length, i, &p.shard});
      }
    }
    return out;
  }

  // Checks the pages of a layout read into `buffer` (with verify; on every core).
  void verify(const Layout& l, const std::uint8_t* buffer) {
    std::vector<std::pair<const Layout::Extent*, const Layout::Page*>> all;
    for (const auto& e : l.extents)
      for (const auto& p : e.pages) all.emplace_back(&e, &p);
    if (all.empty()) return;
    std::vector<char> bad(all.size(), 0);
    parallel_for(all.size(), default_thread_count(), [&](std::size_t i) {
      const auto& [e, p] = all[i];
      bad[i] = blake3({buffer + e->at + (p->offset - e->offset), static_cast<std::size_t>(p->length)}) != *p->digest;
    });
    stats.pages_verified += all.size();
    for (std::size_t i = 0; i < all.size(); ++i)
      if (bad[i]) {
        const auto& [e, p] = all[i];
        fail("{}: page {} of shard {} (bytes {}..{}) fails its PHSH digest: the file is corrupt or was changed",
             reader.file(e->file).path.string(), p->index, *p->shard, p->offset, p->offset + p->length);
      }
  }

  std::vector<ReadJob> jobs(const Layout& l, std::uint8_t* buffer) {
    std::vector<ReadJob> out;
    for (const auto& e : l.extents)
      out.push_back({e.file, e.offset, static_cast<std::size_t>(e.length), static_cast<std::size_t>(e.required), buffer + e.at});
    return out;
  }

  AlignedBuffer load(const format::ModelSource& source, model::Matrix& m) {
    const Layout l = layout(source, {&m});
    AlignedBuffer b(l.bytes);
    reader.wait(reader.submit(jobs(l, b.data())));
    verify(l, b.data());
    m.data = b.data() + l.matrix_at[0];
    return b;
  }

  void point(std::int64_t layer, std::uint8_t* buffer) {
    auto ms = weights.layers[static_cast<std::size_t>(layer)].matrices();
    const Layout& l = layouts[static_cast<std::size_t>(layer)];
    for (std::size_t m = 0; m < ms.size(); ++m) ms[m]->data = buffer + l.matrix_at[m];
  }

  Slot* slot_of(std::int64_t layer) {
    for (auto& s : slots)
      if (s.layer == layer) return &s;
    return nullptr;
  }

  void settle(Slot& s) {  // waits for a slot's reads; the slot forgets its layer if they failed
    if (!s.reading) return;
    const auto start = std::chrono::steady_clock::now();
    try {
      reader.wait(s.ticket);
      verify(layouts[static_cast<std::size_t>(s.layer)], s.buffer.data());
    } catch (...) {
      s.reading = false;
      s.layer = -1;
      throw;
    }
    s.reading = false;
    stats.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  void start_read(Slot& s, std::int64_t layer) {
    const Layout& l = layouts[static_cast<std::size_t>(layer)];
    s.layer = -1;
    for (const auto& e : l.extents) reader.check_unchanged(e.file);
    s.ticket = reader.submit(jobs(l, s.buffer.data()));
    s.layer = layer;
    s.reading = true;
    stats.layer_reads++;
    for (const auto& e : l.extents) stats.bytes_read += e.length;
    if (options.on_read) options.on_read(layer);
  }

  // The disk layers that follow `layer` in pass order (wrapping into the next pass), as many
  // as there are slots not in use; each gets a slot, taken from layers not wanted soon.
  void prefetch(std::int64_t layer) {
    const auto free = std::count_if(slots.begin(), slots.end(), [](const Slot& s) { return !s.in_use; });
    std::vector<std::int64_t> want;
    auto next = std::upper_bound(disk_layers.begin(), disk_layers.end(), layer);
    for (std::size_t k = 0; k < disk_layers.size() && static_cast<std::int64_t>(want.size()) < free; ++k) {
      if (next == disk_layers.end()) next = disk_layers.begin();
      const std::int64_t l = *next++;
      const Slot* s = slot_of(l);
      if (!(s && s->in_use)) want.push_back(l);
    }
    for (std::int64_t l : want) {
      if (slot_of(l)) continue;
      Slot* victim = nullptr;
      for (auto& s : slots)
        if (!s.in_use && std::find(want.begin(), want.end(), s.layer) == want.end()) {
          victim = &s;
          break;
        }
      if (!victim) return;
      try {
        settle(*victim);  // (a read nobody wants any more: its buffer is still being written)
      } catch (const Error&) {
        // That layer's error surfaces when it is acquired and read again.
      }
      start_read(*victim, l);
    }
  }

  const model::LayerWeights& acquire(std::int64_t layer) {
    if (layer < 0 || static_cast<std::size_t>(layer) >= weights.layers.size())
      fail("layer {} is outside the model's {} layers", layer, weights.layers.size());
    const auto i = static_cast<std::size_t>(layer);
    if (cached[i]) return weights.layers[i];
    Slot* s = slot_of(layer);
    if (!s) {
      // Out of order (the first acquire after a release that reused this layer's slot): the
      // slot whose layer comes last from here gives way.
      const auto n = static_cast<std::int64_t>(weights.layers.size());
      auto distance = [&](const Slot& c) { return c.layer < 0 ? n : (c.layer - layer + n) % n; };
      for (auto& c : slots)
        if (!c.in_use && (!s || distance(c) > distance(*s))) s = &c;
      if (!s) fail("more than {} layers read from disk are in use at once", slots.size());
      try {
        settle(*s);
      } catch (const Error&) {
      }
      start_read(*s, layer);
    }
    settle(*s);
    s->in_use = true;
    point(layer, s->buffer.data());
    prefetch(layer);
    return weights.layers[i];
  }

  void release(std::int64_t layer) {
    if (layer < 0 || static_cast<std::size_t>(layer) >= weights.layers.size() || cached[static_cast<std::size_t>(layer)])
      return;
    if (Slot* s = slot_of(layer)) s->in_use = false;
    prefetch(layer);
  }
};

DiskStreamedWeights::DiskStreamedWeights(const format::ModelSource& source, const model::ModelSpec& spec,
                                         std::vector<bool> cached, DiskWeightsOptions options)
    : impl_(std::make_unique<Impl>(source, spec, std::move(cached), std::move(options))) {}
DiskStreamedWeights::~DiskStreamedWeights() = default;

const model::GlobalWeights& DiskStreamedWeights::globals() const { return impl_->weights.globals; }
const model::LayerWeights& DiskStreamedWeights::acquire(std::int64_t layer) { return impl_->acquire(layer); }
void DiskStreamedWeights::release(std::int64_t layer) { impl_->release(layer); }
const model::LayerWeights& DiskStreamedWeights::layout(std::int64_t layer) {
  if (layer < 0 || static_cast<std::size_t>(layer) >= impl_->weights.layers.size())
    fail("layer {} is outside the model's {} layers", layer, impl_->weights.layers.size());
  return impl_->weights.layers[static_cast<std::size_t>(layer)];
}
std::uint64_t DiskStreamedWeights::bytes_per_token() const { return impl_->bytes_per_token; }
DiskStreamedWeights::Stats DiskStreamedWeights::stats() const { return impl_->stats; }

std::uint64_t verify_pages(const format::ModelSource& source) {
  const auto pages = source.page_digests();
  if (pages.empty())
    fail("--verify: this {} model carries no page digests (.aero files written with --integrity do)",
         format::source_format_name(source.format()));
  std::uint64_t checked = 0;
  for (const auto& p : pages) {
    const auto file = MappedFile::open(p.path);
    if (p.offset + p.length > file.size()) fail("{}: shard {} lies past the end of the file", p.path.string(), p.shard);
    std::vector<char> bad(p.digests.size(), 0);
    parallel_for(p.digests.size(), default_thread_count(), [&](std::size_t i) {
      const std::uint64_t at = p.offset + i * p.page_size, length = std::min(p.page_size, p.length - i * p.page_size);
      bad[i] = blake3(file.bytes().subspan(static_cast<std::size_t>(at), static_cast<std::size_t>(length))) != p.digests[i];
    });
    for (std::size_t i = 0; i < bad.size(); ++i)
      if (bad[i])
        fail("{}: page {} of shard {} (bytes {}..{}) fails its PHSH digest: the file is corrupt or was changed",
             p.path.string(), i, p.shard, p.offset + i * p.page_size,
             p.offset + i * p.page_size + std::min(p.page_size, p.length - i * p.page_size));
    checked += p.digests.size();
  }
  return checked;
}

double measure_disk_read(const std::filesystem::path& path, std::uint64_t bytes, const DiskWeightsOptions& options) {
  DirectReader reader({.in_flight = options.reads_in_flight, .piece_bytes = options.piece_bytes,
                       .io_uring = options.io_uring, .direct = options.direct});
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) fail("{}: {}", path.string(), ec.message());
  const int f = reader.open(path, size);
  const std::uint64_t length = align_down(std::min<std::uint64_t>(bytes, size));
  if (length == 0) fail("{}: too small to measure reading", path.string());
  // One buffer reused for every piece: the bytes are not kept, only timed.
  const std::size_t chunk = std::min<std::uint64_t>(length, std::uint64_t{64} << 20);
  AlignedBuffer buffer(chunk);
  const auto start = std::chrono::steady_clock::now();
  for (std::uint64_t at = 0; at < length; at += chunk) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, length - at));
    reader.wait(reader.submit({{f, at, n, n, buffer.data()}}));
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return static_cast<double>(length) / s / 1e9;
}

}  // namespace aero::residency
