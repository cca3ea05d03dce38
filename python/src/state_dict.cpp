// Model files as tensors for Python (aero._aero.Source): what a file holds, and state dicts.
// A tensor stored unquantized whose rows stay in place is a read-only numpy view of the mapped
// file, kept alive through the array's base (a capsule owning the source); every other tensor
// (quantized: decoded to f32 by aero's decoders; llama q/k from GGUF: rows un-permuted) is a new
// array filled in parallel with the GIL released.
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "aero/format/model_source.h"
#include "aero/model/spec.h"
#include "aero/model/weights.h"
#include "aero/parallel.h"
#include "aero/quant/types.h"
#include "bindings.h"
#include "convert/tensor_names.h"
#include "errors.h"

namespace aero::python {

namespace py = pybind11;
namespace fs = std::filesystem;

namespace {

struct Source {
  std::string path;
  std::unique_ptr<format::ModelSource> source;
  std::optional<model::ModelSpec> spec;  // when the metadata describes a model aero knows
  std::string no_spec;                   // why there is none

  bool gguf_names() const { return source->find(model::kGgufEmbedding) != nullptr; }
};
using SourcePtr = std::shared_ptr<Source>;

SourcePtr open_source(const std::string& path, const std::string& metadata_from) {
  auto s = std::make_shared<Source>();
  s->path = path;
  s->source = open_or_not_found(path, [&] { return format::ModelSource::open(path); });
  if (!metadata_from.empty())
    s->source->adopt_metadata(
        open_or_not_found(metadata_from, [&] { return format::ModelSource::open(metadata_from); })->metadata());
  try {
    s->spec = model::read_spec(*s->source);
  } catch (const Error& e) {
    s->no_spec = e.what();
  }
  return s;
}

// Bytes on disk: the file, or the files of the folder a model is (HF folder, AEROSET, an index).
std::uint64_t file_bytes(const std::string& path) {
  std::error_code ec;
  fs::path dir = fs::is_directory(path, ec) ? fs::path(path) : fs::path();
  if (dir.empty() && fs::path(path).extension() == ".json") dir = fs::path(path).parent_path();
  if (dir.empty()) return fs::file_size(path, ec);
  std::uint64_t total = 0;
  for (const auto& entry : fs::directory_iterator(dir.empty() ? "." : dir, ec))
    if (entry.is_regular_file(ec)) total += entry.file_size(ec);
  return total;
}

// "gguf" or "safetensors": the format the tensors came from, as the original runtime names it
// (a .aero file converted from GGUF keeps GGUF's shape order and names).
std::string origin_format(const format::ModelSource& s) {
  if (s.format() == format::SourceFormat::Gguf || s.native_order() == format::ShapeOrder::Gguf) return "gguf";
  if (s.format() == format::SourceFormat::Aero) return s.find(model::kGgufEmbedding) ? "gguf" : "safetensors";
  return "safetensors";
}

std::string type_name(const format::SourceTensor& t) {
  if (t.dtype == format::DType::Packed) {
    const auto traits = quant::type_traits(static_cast<std::uint32_t>(t.ggml_type));
    return traits ? std::string(traits->name) : "ggml type " + std::to_string(t.ggml_type);
  }
  return std::string(format::dtype_name(t.dtype));
}

// numpy's type for a stored element type; BF16 travels as uint16 (numpy has no bfloat16).
std::optional<py::dtype> numpy_dtype(format::DType d) {
  using format::DType;
  switch (d) {
    case DType::F16: return py::dtype("float16");
    case DType::F32: return py::dtype("float32");
    case DType::BF16: return py::dtype("uint16");
    case DType::F64: return py::dtype("float64");
    case DType::I8: return py::dtype("int8");
    case DType::U8: return py::dtype("uint8");
    case DType::I16: return py::dtype("int16");
    case DType::U16: return py::dtype("uint16");
    case DType::I32: return py::dtype("int32");
    case DType::U32: return py::dtype("uint32");
    case DType::I64: return py::dtype("int64");
    case DType::U64: return py::dtype("uint64");
    case DType::Bool: return py::dtype("bool");
    case DType::Packed: return std::nullopt;
  }
  return std::nullopt;
}

// One tensor of a state dict that needs filling: rows of the source, decoded or copied, each to
// its place in `out`.
struct Fill {
  const format::SourceTensor* tensor;
  std::optional<quant::TypeTraits> packed;  // decoded when set, copied otherwise
  std::uint64_t rows, src_row_bytes, out_row_bytes, cols;
  std::uint64_t head_dim;  // rows un-permuted within heads of this many rows; 0: in place
  std::uint8_t* out;
};

void fill_rows(const Fill& f, std::uint64_t begin, std::uint64_t end) {
  for (std::uint64_t r = begin; r < end; ++r) {
    const std::uint64_t to = f.head_dim ? convert::permuted_source_row(r, f.head_dim) : r;
    const auto src = f.tensor->data.subspan(r * f.src_row_bytes, f.src_row_bytes);
    std::uint8_t* dst = f.out + to * f.out_row_bytes;
    if (f.packed)
      quant::decode_to_f32(f.packed->type, src, {reinterpret_cast<float*>(dst), f.cols});
    else
      std::memcpy(dst, src.data(), src.size());
  }
}

// [(name, array, is_bf16)] in the source's order.
py::list state_dict(const SourcePtr& self, std::optional<bool> map_names, unsigned threads) {
  const bool gguf = self->gguf_names();
  bool map = gguf && self->spec.has_value();
  if (map_names) {
    if (*map_names && gguf && !self->spec)
      fail_argument("{}: cannot map its GGUF names to Hugging Face names: {}", self->path, self->no_spec);
    map = *map_names && gguf;
  }
  py::capsule keep_alive(new SourcePtr(self), [](void* p) { delete static_cast<SourcePtr*>(p); });
  py::list out;
  std::vector<Fill> fills;
  for (const auto& t : self->source->tensors()) {
    std::string name = t.name;
    std::uint64_t head_dim = 0;
    float offset = 0;  // GGUF's Gemma norms hold 1 + w; transformers' w
    if (map) {
      const auto mapping = convert::hf_name_of(t.name, *self->spec);
      if (!mapping && t.name == model::kGgufRopeFreqs) continue;  // transformers derives it from the config
      if (mapping) {
        name = mapping->name;
        offset = mapping->offset;
        if (mapping->permute_heads > 0) {
          const std::uint64_t rows = t.shape.empty() ? 1 : t.shape.front();
          head_dim = rows / static_cast<std::uint64_t>(mapping->permute_heads);
          if (head_dim * static_cast<std::uint64_t>(mapping->permute_heads) != rows || head_dim % 2 != 0)
            fail("{}: tensor '{}': {} rows do not split into {} heads of even size", self->path, t.name, rows,
                 mapping->permute_heads);
        }
      }
    }
    std::vector<py::ssize_t> shape(t.shape.begin(), t.shape.end());
    const std::uint64_t cols = t.shape.empty() ? 1 : t.shape.back();
    std::uint64_t elements = 1;
    for (auto d : t.shape) elements *= d;
    const std::uint64_t rows = cols ? elements / cols : 0;
    const bool bf16 = t.dtype == format::DType::BF16;
    if (offset != 0) {  // a norm vector: decoded here, less the offset
      const auto type = format::ggml_type_of(t.dtype, t.ggml_type);
      const auto traits = type ? quant::type_traits(static_cast<std::uint32_t>(*type)) : std::nullopt;
      const auto bytes = traits ? quant::row_bytes(*traits, elements) : std::nullopt;
      if (!bytes || *bytes != t.data.size()) fail("{}: tensor '{}' is not a float norm vector", self->path, t.name);
      py::array_t<float> values(shape);
      const std::span<float> v(values.mutable_data(), static_cast<std::size_t>(elements));
      quant::decode_to_f32(*type, t.data, v);
      for (float& x : v) x -= offset;
      out.append(py::make_tuple(name, values, false));
      continue;
    }
    if (const auto dtype = numpy_dtype(t.dtype)) {
      if (head_dim == 0) {
        py::array view(*dtype, shape, {}, t.data.data(), keep_alive);
        view.attr("flags").attr("writeable") = false;
        out.append(py::make_tuple(name, view, bf16));
        continue;
      }
      py::array copy(*dtype, shape);
      const std::uint64_t row_bytes = rows ? t.data.size() / rows : 0;
      fills.push_back({&t, std::nullopt, rows, row_bytes, row_bytes, cols, head_dim, static_cast<std::uint8_t*>(copy.mutable_data())});
      out.append(py::make_tuple(name, copy, bf16));
      continue;
    }
    const auto traits = quant::type_traits(static_cast<std::uint32_t>(t.ggml_type));
    if (!traits || !traits->decode) fail("{}: tensor '{}' is {}, which aero cannot decode", self->path, t.name, type_name(t));
    const auto row_bytes = quant::row_bytes(*traits, cols);
    if (!row_bytes || *row_bytes * rows != t.data.size())
      fail("{}: tensor '{}': rows of {} elements are not whole {} blocks", self->path, t.name, cols, traits->name);
    py::array_t<float> decoded(shape);
    fills.push_back({&t, traits, rows, *row_bytes, cols * sizeof(float), cols, head_dim,
                     reinterpret_cast<std::uint8_t*>(decoded.mutable_data())});
    out.append(py::make_tuple(name, decoded, false));
  }

  // Tasks of about a million elements, over every tensor at once.
  struct Task {
    const Fill* fill;
    std::uint64_t begin, end;
  };
  std::vector<Task> tasks;
  for (const auto& f : fills) {
    const std::uint64_t step = std::max<std::uint64_t>(1, (std::uint64_t{1} << 20) / std::max<std::uint64_t>(f.cols, 1));
    for (std::uint64_t r = 0; r < f.rows; r += step) tasks.push_back({&f, r, std::min(f.rows, r + step)});
  }
  {
    py::gil_scoped_release release;
    parallel_for(tasks.size(), threads ? threads : default_thread_count(),
                 [&](std::size_t i) { fill_rows(*tasks[i].fill, tasks[i].begin, tasks[i].end); });
  }
  return out;
}

py::list tensor_infos(const Source& self) {
  py::list out;
  for (const auto& t : self.source->tensors())
    out.append(py::make_tuple(t.name, type_name(t), std::vector<std::uint64_t>(t.shape.begin(), t.shape.end()),
                              t.data.size()));
  return out;
}

}  // namespace

void bind_source(py::module_& m) {
  py::class_<Source, SourcePtr>(m, "Source", "A model file opened for its tensors and metadata (any format aero reads).")
      .def(py::init(&open_source), py::arg("path"), py::arg("metadata_from") = "",
           "Opens PATH (.aero, AEROSET, GGUF, safetensors or a Hugging Face folder); METADATA_FROM (an HF "
           "folder or GGUF) supplies config and tokenizer to files without them.")
      .def_property_readonly("path", [](const Source& s) { return s.path; })
      .def_property_readonly("name", [](const Source& s) { return s.source->metadata().name; })
      .def_property_readonly("architecture",
                             [](const Source& s) {
                               const auto& a = s.source->metadata().architecture;
                               return !a.empty() || !s.spec ? a : s.spec->architecture;
                             })
      .def_property_readonly("container", [](const Source& s) { return std::string(format::source_format_name(s.source->format())); })
      .def_property_readonly("origin_format", [](const Source& s) { return origin_format(*s.source); })
      .def_property_readonly("tensor_count", [](const Source& s) { return s.source->tensors().size(); })
      .def_property_readonly("file_bytes", [](const Source& s) { return file_bytes(s.path); })
      .def_property_readonly("gguf_names", &Source::gguf_names)
      .def_property_readonly("model_error", [](const Source& s) { return s.spec ? std::optional<std::string>() : s.no_spec; })
      .def("tensors", &tensor_infos, "[(name, type, row-major shape, bytes)] as stored.")
      .def("state_dict", &state_dict, py::arg("map_names") = py::none(), py::arg("threads") = 0,
           "[(name, array, is_bf16)]: views of the file where the stored rows serve as they are, else decoded "
           "(f32) or reordered copies. map_names: GGUF names to Hugging Face names (None: when the model is known).");
}

}  // namespace aero::python
