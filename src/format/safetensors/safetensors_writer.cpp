#include "aero/error.h"
#include "aero/format/safetensors.h"
#include "aero/mapped_file.h"
#include "aero/output_file.h"
#include "common/bytes.h"

namespace aero::format {
namespace {

std::string_view safetensors_name(DType d) {
  switch (d) {
    case DType::F16: return "F16";
    case DType::F32: return "F32";
    case DType::BF16: return "BF16";
    case DType::F64: return "F64";
    case DType::I8: return "I8";
    case DType::U8: return "U8";
    case DType::I16: return "I16";
    case DType::U16: return "U16";
    case DType::I32: return "I32";
    case DType::U32: return "U32";
    case DType::I64: return "I64";
    case DType::U64: return "U64";
    case DType::Bool: return "BOOL";
    case DType::Packed: return "";
  }
  return "";
}

}  // namespace

std::uint64_t write_safetensors(const std::filesystem::path& path, const std::vector<SafetensorsTensorWrite>& tensors,
                                const Json& metadata, const std::function<void(std::uint64_t)>& progress) {
  Json header = Json::object();
  std::uint64_t offset = 0;
  for (const auto& t : tensors) {
    auto name = safetensors_name(t.dtype);
    if (name.empty()) fail("tensor '{}': safetensors has no type for block-quantized data", t.name);
    if (header.contains(t.name)) fail("duplicate tensor name '{}'", t.name);
    header[t.name] = Json{{"dtype", name}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  text.resize(align_up(text.size(), 8), ' ');
  OutputFile out(path);
  std::string length;
  append_le<std::uint64_t>(length, text.size());
  out.write(length);
  out.write(text);
  for (const auto& t : tensors)
    MappedFile::stream(t.data, [&](auto piece) {
      out.write(piece);
      if (progress) progress(piece.size());
    });
  const std::uint64_t size = out.position();
  out.commit();
  return size;
}

}  // namespace aero::format
