#include "aero/convert/convert.h"

#include "aero/error.h"
#include "aero/format/aero_model.h"
#include "aero/format/safetensors.h"

namespace aero::convert {

SourceKind detect_source(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail("{}: no such file or folder", path.string());
  if (format::looks_like_aero(path)) return SourceKind::Aero;
  if (path.extension() == ".safetensors" || path.filename() == "model.safetensors.index.json") return SourceKind::Safetensors;
  if (std::filesystem::is_directory(path, ec) && (std::filesystem::exists(path / "model.safetensors", ec) ||
                                                  std::filesystem::exists(path / "model.safetensors.index.json", ec)))
    return SourceKind::Safetensors;
  fail("{}: unrecognised model format (expected .aero, AEROSET or safetensors)", path.string());
}

OutputKind output_kind(const std::filesystem::path& out, const std::string& to) {
  if (to == "aero") return OutputKind::Aero;
  if (to == "aeroset") return OutputKind::AeroSet;
  if (!to.empty()) fail("unknown output format '{}' (expected aero or aeroset)", to);
  std::error_code ec;
  if (out.filename() == "model.aeroset.json" || std::filesystem::is_directory(out, ec) || out.extension().empty())
    return OutputKind::AeroSet;
  if (out.extension() == ".aero") return OutputKind::Aero;
  fail("{}: cannot tell the output format from its name; use --to aero|aeroset", out.string());
}

namespace {

format::WriteSummary write(const std::filesystem::path& out, OutputKind kind, const format::ModelDescription& model,
                           const std::vector<format::TensorWrite>& tensors, const ConvertOptions& options) {
  if (kind == OutputKind::Aero) return format::write_aero(out, model, tensors, options.write);
  auto dir = out.filename() == "model.aeroset.json" ? out.parent_path() : out;
  return format::write_aeroset(dir, model, tensors, options.write, options.part_shards);
}

}  // namespace

format::WriteSummary convert(const std::filesystem::path& in, const std::filesystem::path& out, OutputKind kind,
                             const ConvertOptions& options) {
  format::ModelDescription model;
  std::vector<format::TensorWrite> tensors;
  // Sources stay open (mapped) while the producers read from them.
  std::optional<format::AeroModel> aero;
  std::optional<format::SafetensorsModel> st;
  switch (detect_source(in)) {
    case SourceKind::Aero:
      aero.emplace(format::AeroModel::open(in));
      model = format::describe(*aero);
      tensors = format::tensors_of(*aero);
      break;
    case SourceKind::Safetensors:
      st.emplace(format::SafetensorsModel::open(in));
      model.name = "converted";
      model.architecture = "unknown";
      model.meta["source_format"] = "safetensors";
      for (const auto& t : st->tensors()) {
        format::TensorWrite w;
        w.name = t.name;
        w.dtype = t.aero_dtype;
        w.shape = t.shape;
        w.data_len = t.end - t.begin;
        w.write_data = [&st, &t](format::ByteSink& sink) { sink.write(st->data(t)); };
        tensors.push_back(std::move(w));
      }
      break;
  }
  if (!options.model_name.empty()) model.name = options.model_name;
  if (!options.architecture.empty()) model.architecture = options.architecture;
  return write(out, kind, model, tensors, options);
}

}  // namespace aero::convert
