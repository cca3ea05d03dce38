#include <map>

#include "aero/backend/backend.h"
#include "aero/error.h"
#include "aero/format/aero_model.h"
#include "cli/commands.h"
#include "cli/display.h"
#include "cli/info_source.h"

namespace aero::cli {
namespace {

struct InfoOptions {
  std::string path;
  bool devices = false;
  bool chunks = false;
  bool tensors = false;
  bool json = false;
};

struct TypeSummary {
  std::size_t count = 0;
  std::uint64_t bytes = 0;
};

std::string source_format(const format::AeroFile& f) {
  auto s = f.meta().find("source_format");
  return s != f.meta().end() && s->is_string() ? s->get<std::string>() : "unknown";
}

Json info_json(const format::AeroModel& model, const InfoOptions& opt) {
  const auto& index = model.index();
  Json j = Json::object();
  j["path"] = model.path().string();
  j["container"] = model.is_set() ? "AEROSET" : "AERO";
  j["version"] = fmt::format("{}.{}", index.header().version_major, index.header().version_minor);
  j["uuid"] = to_hex(index.header().uuid);
  j["model_name"] = index.model_name();
  j["architecture"] = index.architecture();
  j["source_format"] = source_format(index);
  j["shape_order"] = index.shape_order() == format::ShapeOrder::Gguf ? "gguf" : "row-major";
  j["meta"] = index.meta();
  std::uint64_t total = 0;
  Json types = Json::object();
  for (const auto& t : model.tensors()) {
    total += t.data_len;
    auto& slot = types[element_type_text(t)];
    if (slot.is_null()) slot = Json{{"tensors", 0}, {"bytes", 0}};
    slot["tensors"] = slot["tensors"].get<std::uint64_t>() + 1;
    slot["bytes"] = slot["bytes"].get<std::uint64_t>() + t.data_len;
  }
  j["tensor_count"] = model.tensors().size();
  j["tensor_bytes"] = total;
  j["types"] = types;
  if (opt.tensors) {
    Json list = Json::array();
    for (const auto& t : model.tensors()) {
      Json e{{"name", t.name},       {"type", element_type_text(t)}, {"shape", t.shape},
             {"stored_shape", t.stored_shape}, {"shard_id", t.shard_id}, {"data_off", t.data_off},
             {"data_len", t.data_len}};
      if (!t.hash_b3.empty()) e["hash_b3"] = t.hash_b3;
      list.push_back(std::move(e));
    }
    j["tensors"] = std::move(list);
  }
  if (opt.chunks) {
    Json files = Json::array();
    for (const auto* f : model.files()) {
      Json chunks = Json::array();
      for (const auto& c : f->chunks())
        chunks.push_back(Json{{"fourcc", c.fourcc}, {"name", c.name}, {"flags", c.flags}, {"offset", c.offset},
                              {"length", c.length}, {"ulen", c.ulen}, {"blake3", to_hex(c.blake3)}});
      files.push_back(Json{{"file", f->path().string()}, {"chunks", std::move(chunks)}, {"manifest", f->manifest()}});
    }
    j["files"] = std::move(files);
  }
  j["warnings"] = model.warnings();
  return j;
}

void print_text(const format::AeroModel& model, const InfoOptions& opt) {
  const auto& index = model.index();
  std::map<std::string, TypeSummary> types;
  std::uint64_t total = 0;
  for (const auto& t : model.tensors()) {
    auto& s = types[element_type_text(t)];
    ++s.count;
    s.bytes += t.data_len;
    total += t.data_len;
  }
  bool ihsh = false, phsh = false, tensor_hashes = !model.tensors().empty();
  for (const auto* f : model.files())
    for (const auto& c : f->chunks()) {
      ihsh |= c.fourcc == "IHSH";
      phsh |= c.fourcc == "PHSH";
    }
  for (const auto& t : model.tensors()) tensor_hashes &= !t.hash_b3.empty();

  fmt::print("file:          {}\n", model.path().string());
  if (model.is_set())
    fmt::print("container:     AEROSET ({} files)\n", model.files().size());
  else
    fmt::print("container:     AERO {}.{}\n", index.header().version_major, index.header().version_minor);
  fmt::print("model:         {}\n", index.model_name().empty() ? "(unnamed)" : index.model_name());
  fmt::print("architecture:  {}\n", index.architecture().empty() ? "(unknown)" : index.architecture());
  fmt::print("source:        {} ({} shapes)\n", source_format(index),
             index.shape_order() == format::ShapeOrder::Gguf ? "GGUF-order" : "row-major");
  fmt::print("tensors:       {} ({})\n", model.tensors().size(), human_bytes(total));
  for (const auto& [name, s] : types) fmt::print("  {:<12} {:>6} tensors  {:>12}\n", name, s.count, human_bytes(s.bytes));
  fmt::print("integrity:     IHSH {} · PHSH {} · tensor hashes {}\n", ihsh ? "yes" : "no", phsh ? "yes" : "no",
             tensor_hashes ? "yes" : "no");
  if (opt.chunks) {
    for (const auto* f : model.files()) {
      fmt::print("chunks of {}:\n", f->path().filename().string());
      fmt::print("  {:>3}  {:<6} {:<22} {:>5} {:>12} {:>12} {:>12}  {}\n", "#", "fourcc", "name", "flags", "offset",
                 "length", "ulen", "blake3");
      for (const auto& c : f->chunks())
        fmt::print("  {:>3}  {:<6} {:<22} {:>#5x} {:>12} {:>12} {:>12}  {}\n", c.toc_index, c.fourcc, c.name, c.flags,
                   c.offset, c.length, c.ulen, to_hex(c.blake3).substr(0, 16));
    }
  }
  if (opt.tensors) {
    fmt::print("tensors:\n");
    for (const auto& t : model.tensors())
      fmt::print("  {:<48} {:<7} {:<20} shard {} +{} ({})\n", t.name, element_type_text(t), shape_text(t.shape),
                 t.shard_id, t.data_off, human_bytes(t.data_len));
  }
  for (const auto& w : model.warnings()) fmt::print(stderr, "warning: {}\n", w);
}

// The GPUs the CUDA backend can run on (aero info --devices).
void print_devices(bool json) {
  std::string why;
  const auto gpus = backend::list_gpus(&why);
  if (json) {
    Json list = Json::array();
    for (const auto& g : gpus)
      list.push_back(Json{{"index", g.index}, {"name", g.name}, {"total_bytes", g.total_bytes}, {"free_bytes", g.free_bytes},
                          {"compute_capability", fmt::format("{}.{}", g.cc_major, g.cc_minor)}});
    Json j{{"cuda_backend", backend::built_with_cuda()}, {"gpus", std::move(list)}};
    if (gpus.empty()) j["why_none"] = why;
    fmt::print("{}\n", to_pretty_json(j));
    return;
  }
  if (gpus.empty()) {
    fmt::print("no CUDA GPU: {}\n", why);
    return;
  }
  for (const auto& g : gpus)
    fmt::print("cuda:{}  {}  {} ({} free)  compute capability {}.{}\n", g.index, g.name, human_bytes(g.total_bytes),
               human_bytes(g.free_bytes), g.cc_major, g.cc_minor);
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto opt = std::make_shared<InfoOptions>();
  auto* cmd = app.add_subcommand("info", "Describe a model file: architecture, tensors, types, integrity; or list GPUs (--devices)");
  auto* file = cmd->add_option("file", opt->path, "a .aero file, AEROSET, GGUF, safetensors or Hugging Face folder");
  cmd->add_flag("--devices", opt->devices, "list the CUDA GPUs aero can run on instead (index, name, memory, compute capability)")
      ->excludes(file);
  cmd->add_flag("--chunks", opt->chunks, "list the chunks of every file");
  cmd->add_flag("--tensors", opt->tensors, "list every tensor");
  cmd->add_flag("--json", opt->json, "print JSON instead of text");
  cmd->callback([opt] {
    if (opt->devices) return print_devices(opt->json);
    if (opt->path.empty()) fail("give a model FILE to describe (or --devices to list GPUs)");
    if (!format::looks_like_aero(opt->path)) {
      if (opt->chunks) fail("--chunks is for .aero files and AEROSETs");
      return print_source_info(opt->path, opt->tensors, opt->json);
    }
    auto model = format::AeroModel::open(opt->path);
    if (opt->json)
      fmt::print("{}\n", to_pretty_json(info_json(model, *opt)));
    else
      print_text(model, *opt);
  });
}

}  // namespace aero::cli
