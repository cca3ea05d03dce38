// Model conversion between the containers aero reads and writes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "aero/format/aero_writer.h"

namespace aero::convert {

enum class OutputKind { Aero, AeroSet };

struct ConvertOptions {
  format::WriteOptions write;
  std::size_t part_shards = 2;   // AEROSET: shards per part file
  std::string model_name;        // overrides what the source says
  std::string architecture;
};

enum class SourceKind { Aero, Safetensors };
SourceKind detect_source(const std::filesystem::path& path);
// By --to when given ("aero", "aeroset"), else by the output name (a folder or
// model.aeroset.json means AEROSET).
OutputKind output_kind(const std::filesystem::path& out, const std::string& to);

format::WriteSummary convert(const std::filesystem::path& in, const std::filesystem::path& out, OutputKind kind,
                             const ConvertOptions& options);

}  // namespace aero::convert
