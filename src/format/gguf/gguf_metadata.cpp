#include "aero/error.h"
#include "aero/format/gguf.h"

namespace aero::format {

const GgufKv* GgufMetadata::find(std::string_view key) const {
  for (const auto& kv : entries)
    if (kv.key == key) return &kv;
  return nullptr;
}

std::optional<std::string> GgufMetadata::get_string(std::string_view key) const {
  const GgufKv* kv = find(key);
  if (!kv || !kv->value.is_string()) return std::nullopt;
  return kv->value.get<std::string>();
}

std::optional<std::int64_t> GgufMetadata::get_int(std::string_view key) const {
  const GgufKv* kv = find(key);
  if (!kv || !kv->value.is_number_integer()) return std::nullopt;
  return kv->value.get<std::int64_t>();
}

std::optional<double> GgufMetadata::get_float(std::string_view key) const {
  const GgufKv* kv = find(key);
  if (!kv || !kv->value.is_number()) return std::nullopt;
  return kv->value.get<double>();
}

void GgufMetadata::set(GgufKv kv) {
  for (auto& e : entries)
    if (e.key == kv.key) {
      e = std::move(kv);
      return;
    }
  entries.push_back(std::move(kv));
}

// [{"k": key, "t": type, "v": value[, "e": element type]}, ...]: every value keeps its GGUF
// type, so writing GGUF back from it is exact.
Json GgufMetadata::to_json() const {
  Json list = Json::array();
  for (const auto& kv : entries) {
    Json e = Json::object();
    e["k"] = kv.key;
    e["t"] = static_cast<std::uint32_t>(kv.type);
    if (kv.type == GgufType::Array) e["e"] = static_cast<std::uint32_t>(kv.element_type);
    e["v"] = kv.value;
    list.push_back(std::move(e));
  }
  return list;
}

GgufMetadata GgufMetadata::from_json(const Json& j, std::string_view where) {
  if (!j.is_array()) fail("{}: GGUF metadata is not a list", where);
  GgufMetadata m;
  for (const auto& e : j) {
    if (!e.is_object() || !e.contains("k") || !e["k"].is_string() || !e.contains("t") ||
        !e["t"].is_number_unsigned() || e["t"].get<std::uint64_t>() > 12 || !e.contains("v"))
      fail("{}: malformed GGUF metadata entry", where);
    GgufKv kv;
    kv.key = e["k"].get<std::string>();
    kv.type = static_cast<GgufType>(e["t"].get<std::uint32_t>());
    if (kv.type == GgufType::Array) {
      if (!e.contains("e") || !e["e"].is_number_unsigned() || e["e"].get<std::uint64_t>() > 12 || !e["v"].is_array())
        fail("{}: malformed GGUF array entry '{}'", where, kv.key);
      kv.element_type = static_cast<GgufType>(e["e"].get<std::uint32_t>());
    }
    kv.value = e["v"];
    m.entries.push_back(std::move(kv));
  }
  return m;
}

}  // namespace aero::format
