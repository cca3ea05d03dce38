#include <algorithm>
#include <unordered_set>

#include "aero/error.h"
#include "aero/format/gguf.h"
#include "common/bytes.h"

namespace aero::format {
namespace {

constexpr std::uint64_t kMaxEntries = 1u << 24;     // tensors or key/values
constexpr std::uint64_t kMaxStringBytes = 1u << 30;  // one string
constexpr std::uint32_t kMaxDims = 4;                // GGML_MAX_DIMS

// A cursor over the mapped header that refuses to read past the end.
class Cursor {
 public:
  Cursor(std::span<const std::uint8_t> bytes, std::string where) : bytes_(bytes), where_(std::move(where)) {}

  template <class T>
  T read() {
    need(sizeof(T), "a value");
    T v = load_le<T>(bytes_.data() + at_);
    at_ += sizeof(T);
    return v;
  }
  std::string read_string() {
    auto n = read<std::uint64_t>();
    if (n > kMaxStringBytes) fail("{}: string of {} bytes at offset {} is implausible", where_, n, at_ - 8);
    need(n, "a string");
    std::string s(reinterpret_cast<const char*>(bytes_.data() + at_), n);
    at_ += n;
    return s;
  }
  void need(std::uint64_t n, const char* what) const {
    if (!range_inside(at_, n, bytes_.size()))
      fail("{}: truncated: {} at offset {} runs past the end of the file", where_, what, at_);
  }
  std::uint64_t remaining() const { return bytes_.size() - at_; }
  std::uint64_t position() const { return at_; }
  const std::string& where() const { return where_; }

 private:
  std::span<const std::uint8_t> bytes_;
  std::uint64_t at_ = 0;
  std::string where_;
};

std::size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::Bool: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    case GgufType::String: return 8;  // at least its length
    case GgufType::Array: return 12;  // at least type + count
  }
  return 1;
}

GgufType read_type(Cursor& c) {
  auto t = c.read<std::uint32_t>();
  if (t > 12) fail("{}: unknown metadata value type {} at offset {}", c.where(), t, c.position() - 4);
  return static_cast<GgufType>(t);
}

Json read_value(Cursor& c, GgufType type, GgufType* element_type) {
  switch (type) {
    case GgufType::U8: return c.read<std::uint8_t>();
    case GgufType::I8: return c.read<std::int8_t>();
    case GgufType::U16: return c.read<std::uint16_t>();
    case GgufType::I16: return c.read<std::int16_t>();
    case GgufType::U32: return c.read<std::uint32_t>();
    case GgufType::I32: return c.read<std::int32_t>();
    case GgufType::F32: return c.read<float>();
    case GgufType::U64: return c.read<std::uint64_t>();
    case GgufType::I64: return c.read<std::int64_t>();
    case GgufType::F64: return c.read<double>();
    case GgufType::Bool: {
      auto b = c.read<std::uint8_t>();
      if (b > 1) fail("{}: boolean value {} at offset {}", c.where(), b, c.position() - 1);
      return b == 1;
    }
    case GgufType::String: return c.read_string();
    case GgufType::Array: {
      GgufType inner = read_type(c);
      // ggml's own reader refuses arrays of arrays; so do we (and nothing recurses).
      if (inner == GgufType::Array) fail("{}: nested arrays are not supported (offset {})", c.where(), c.position() - 4);
      auto n = c.read<std::uint64_t>();
      // Every element takes at least scalar_size bytes: a count the file cannot hold is refused
      // before anything is allocated.
      if (n > c.remaining() / scalar_size(inner))
        fail("{}: array of {} elements at offset {} is larger than the file", c.where(), n, c.position() - 8);
      if (element_type) *element_type = inner;
      Json arr = Json::array();
      arr.get_ref<Json::array_t&>().reserve(n);
      for (std::uint64_t i = 0; i < n; ++i) arr.push_back(read_value(c, inner, nullptr));
      return arr;
    }
  }
  fail("{}: unknown value type", c.where());
}

}  // namespace

GgufFile GgufFile::open(const std::filesystem::path& path) {
  GgufFile f;
  f.map_ = MappedFile::open(path);
  const std::string where = path.string();
  Cursor c(f.map_.bytes(), where);
  if (f.map_.size() < 4) fail("{}: truncated: too short for a GGUF header", where);
  if (std::memcmp(f.map_.bytes().data(), "GGUF", 4) != 0) fail("{}: not a GGUF file (bad magic)", where);
  c.read<std::uint32_t>();
  f.version_ = c.read<std::uint32_t>();
  if (f.version_ != 2 && f.version_ != 3)
    fail("{}: unsupported GGUF version {} (aero reads versions 2 and 3)", where, f.version_);
  const auto tensor_count = c.read<std::uint64_t>();
  const auto kv_count = c.read<std::uint64_t>();
  if (tensor_count > kMaxEntries || kv_count > kMaxEntries)
    fail("{}: {} tensors and {} key/values exceed the cap of {}", where, tensor_count, kv_count, kMaxEntries);

  std::unordered_set<std::string> keys;
  for (std::uint64_t i = 0; i < kv_count; ++i) {
    GgufKv kv;
    kv.key = c.read_string();
    kv.type = read_type(c);
    kv.value = read_value(c, kv.type, &kv.element_type);
    if (!keys.insert(kv.key).second) fail("{}: metadata key '{}' appears twice", where, kv.key);
    f.metadata_.entries.push_back(std::move(kv));
  }
  if (const GgufKv* a = f.metadata_.find("general.alignment")) {
    if (!a->value.is_number_unsigned() || a->value.get<std::uint64_t>() == 0 ||
        a->value.get<std::uint64_t>() > (1u << 20) || (a->value.get<std::uint64_t>() & (a->value.get<std::uint64_t>() - 1)))
      fail("{}: general.alignment must be a power of two", where);
    f.alignment_ = a->value.get<std::uint32_t>();
  }

  std::unordered_set<std::string> names;
  for (std::uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensor t;
    t.name = c.read_string();
    const std::string at = fmt::format("{}: tensor '{}'", where, t.name);
    auto dims = c.read<std::uint32_t>();
    if (dims == 0 || dims > kMaxDims) fail("{}: {} dimensions (1 to {} allowed)", at, dims, kMaxDims);
    std::uint64_t elements = 1, rows = 1;
    for (std::uint32_t d = 0; d < dims; ++d) {
      t.ne.push_back(c.read<std::uint64_t>());
      if (!checked_mul(elements, t.ne.back(), elements) || elements > (1ull << 50)) fail("{}: shape overflows", at);
      if (d > 0) rows *= t.ne.back();  // bounded by elements, cannot overflow
    }
    auto type = c.read<std::uint32_t>();
    auto traits = quant::type_traits(type);
    if (!traits) fail("{}: unknown tensor type {}", at, type);
    t.type = traits->type;
    t.offset = c.read<std::uint64_t>();
    if (t.offset % f.alignment_ != 0) fail("{}: data offset {} is not a multiple of the alignment {}", at, t.offset, f.alignment_);
    auto row = quant::row_bytes(*traits, t.ne[0]);
    if (!row) fail("{}: rows of {} elements are not whole {} blocks", at, t.ne[0], traits->name);
    if (!checked_mul(*row, rows, t.size)) fail("{}: size overflows", at);
    if (!names.insert(t.name).second) fail("{}: tensor name appears twice", at);
    f.tensors_.push_back(std::move(t));
  }
  f.data_start_ = align_up(c.position(), f.alignment_);
  if (f.data_start_ > f.map_.size() && !f.tensors_.empty())
    fail("{}: truncated: the tensor data section starts past the end of the file", where);
  const std::uint64_t data_size = f.map_.size() > f.data_start_ ? f.map_.size() - f.data_start_ : 0;
  std::vector<const GgufTensor*> by_offset;
  for (const auto& t : f.tensors_) {
    if (!range_inside(t.offset, t.size, data_size))
      fail("{}: truncated: tensor '{}' [{}, +{}) runs past the end of the data section ({} bytes)", where, t.name,
           t.offset, t.size, data_size);
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (std::size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i - 1]->offset + by_offset[i - 1]->size > by_offset[i]->offset && by_offset[i]->size > 0)
      fail("{}: tensors '{}' and '{}' overlap", where, by_offset[i - 1]->name, by_offset[i]->name);
  return f;
}

const GgufTensor* GgufFile::find(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

std::span<const std::uint8_t> GgufFile::data(const GgufTensor& t) const {
  return map_.bytes().subspan(data_start_ + t.offset, t.size);
}

}  // namespace aero::format
