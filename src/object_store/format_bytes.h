// Byte counts for error messages: readable, and exact for whoever needs the number.
#pragma once

#include <cstdint>
#include <cstdio>
#include <iterator>
#include <string>

namespace lumen::object_store {

/// "1.5 GiB", or "512 bytes" below 1 KiB.
inline std::string ReadableBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " bytes";
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f", value);
  std::string readable = text;
  if (readable.ends_with(".0")) readable.resize(readable.size() - 2);
  return readable + " " + kUnits[unit];
}

/// "1.5 GiB (1610612736 bytes)", or "512 bytes" below 1 KiB.
inline std::string FormatBytes(uint64_t bytes) {
  if (bytes < 1024) return ReadableBytes(bytes);
  return ReadableBytes(bytes) + " (" + std::to_string(bytes) + " bytes)";
}

}  // namespace lumen::object_store
