#include "aero/error.h"
#include "aero/format/gguf.h"
#include "aero/output_file.h"
#include "common/bytes.h"

namespace aero::format {
namespace {

void put_string(std::string& out, std::string_view s) {
  append_le<std::uint64_t>(out, s.size());
  out.append(s);
}

void put_value(std::string& out, GgufType type, const Json& v, const std::string& key, GgufType element_type) {
  auto integer = [&](auto tag) {
    using T = decltype(tag);
    if (!v.is_number_integer() && !v.is_boolean()) fail("GGUF key '{}': value is not an integer", key);
    append_le<T>(out, static_cast<T>(v.is_boolean() ? v.get<bool>() : v.get<std::int64_t>()));
  };
  switch (type) {
    case GgufType::U8: return integer(std::uint8_t{});
    case GgufType::I8: return integer(std::int8_t{});
    case GgufType::U16: return integer(std::uint16_t{});
    case GgufType::I16: return integer(std::int16_t{});
    case GgufType::U32: return integer(std::uint32_t{});
    case GgufType::I32: return integer(std::int32_t{});
    case GgufType::U64:
      if (!v.is_number_integer()) fail("GGUF key '{}': value is not an integer", key);
      return append_le<std::uint64_t>(out, v.get<std::uint64_t>());
    case GgufType::I64: return integer(std::int64_t{});
    case GgufType::F32:
      if (!v.is_number()) fail("GGUF key '{}': value is not a number", key);
      return append_le<float>(out, static_cast<float>(v.get<double>()));
    case GgufType::F64:
      if (!v.is_number()) fail("GGUF key '{}': value is not a number", key);
      return append_le<double>(out, v.get<double>());
    case GgufType::Bool:
      if (!v.is_boolean()) fail("GGUF key '{}': value is not a boolean", key);
      return append_le<std::uint8_t>(out, v.get<bool>() ? 1 : 0);
    case GgufType::String:
      if (!v.is_string()) fail("GGUF key '{}': value is not a string", key);
      return put_string(out, v.get_ref<const std::string&>());
    case GgufType::Array:
      if (!v.is_array()) fail("GGUF key '{}': value is not an array", key);
      append_le<std::uint32_t>(out, static_cast<std::uint32_t>(element_type));
      append_le<std::uint64_t>(out, v.size());
      if (element_type == GgufType::Array) fail("GGUF key '{}': nested arrays are not supported", key);
      for (const auto& e : v) put_value(out, element_type, e, key, GgufType::U8);
      return;
  }
}

}  // namespace

std::uint64_t write_gguf(const std::filesystem::path& path, const GgufMetadata& metadata,
                         const std::vector<GgufTensorWrite>& tensors) {
  std::uint64_t alignment = 32;
  if (auto a = metadata.get_int("general.alignment")) {
    if (*a <= 0 || (*a & (*a - 1))) fail("general.alignment {} is not a power of two", *a);
    alignment = static_cast<std::uint64_t>(*a);
  }
  std::string head;
  head.append("GGUF", 4);
  append_le<std::uint32_t>(head, 3);
  append_le<std::uint64_t>(head, tensors.size());
  append_le<std::uint64_t>(head, metadata.entries.size());
  for (const auto& kv : metadata.entries) {
    put_string(head, kv.key);
    append_le<std::uint32_t>(head, static_cast<std::uint32_t>(kv.type));
    put_value(head, kv.type, kv.value, kv.key, kv.element_type);
  }
  std::uint64_t offset = 0;
  for (const auto& t : tensors) {
    auto traits = quant::type_traits(static_cast<std::uint32_t>(t.type));
    std::uint64_t rows = 1;
    for (std::size_t d = 1; d < t.ne.size(); ++d) rows *= t.ne[d];
    auto row = traits ? quant::row_bytes(*traits, t.ne.empty() ? 1 : t.ne[0]) : std::nullopt;
    if (!row || *row * rows != t.size) fail("tensor '{}': {} bytes do not fit its type and shape", t.name, t.size);
    put_string(head, t.name);
    append_le<std::uint32_t>(head, static_cast<std::uint32_t>(t.ne.size()));
    for (auto n : t.ne) append_le<std::uint64_t>(head, n);
    append_le<std::uint32_t>(head, static_cast<std::uint32_t>(t.type));
    append_le<std::uint64_t>(head, offset);
    offset += align_up(t.size, alignment);
  }
  // The data section starts aligned; a file without tensors (vocab-only) ends unpadded.
  if (!tensors.empty()) head.resize(align_up(head.size(), alignment), '\0');

  OutputFile out(path);
  out.write(head);
  for (const auto& t : tensors) {
    const std::uint64_t start = out.position();
    t.write_data([&](std::span<const std::uint8_t> bytes) { out.write(bytes); });
    if (out.position() - start != t.size)
      fail("tensor '{}' produced {} bytes, expected {}", t.name, out.position() - start, t.size);
    out.pad_to(align_up(out.position(), alignment));
  }
  const std::uint64_t size = out.position();
  out.commit();
  return size;
}

}  // namespace aero::format
