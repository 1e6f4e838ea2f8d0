// The pattern the disk guests (disk-bench, ide-bench) write and check: byte i of sector s is
// (uint8_t)(s * 31 + i * 7 + seed). The tests write it on the host for the guest to read, and check on the host
// what the guest wrote.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/core.h>

namespace iovmm::test {

inline uint8_t pattern_byte(uint64_t sector, unsigned offset, uint32_t seed) {
  return static_cast<uint8_t>(sector * 31 + offset * 7 + seed);
}

inline void write_pattern(const std::string& image, uint64_t start, uint64_t sectors, uint32_t seed) {
  std::fstream file(image, std::ios::in | std::ios::out | std::ios::binary);
  std::vector<char> sector(512);
  for (uint64_t s = start; s < start + sectors; ++s) {
    for (unsigned i = 0; i < 512; ++i) sector[i] = static_cast<char>(pattern_byte(s, i, seed));
    file.seekp(static_cast<std::streamoff>(s * 512));
    file.write(sector.data(), 512);
  }
}

// "" when the image holds the pattern, else where it first differs.
inline std::string first_pattern_mismatch(const std::string& image, uint64_t start, uint64_t sectors, uint32_t seed) {
  std::ifstream file(image, std::ios::binary);
  std::vector<char> sector(512);
  for (uint64_t s = start; s < start + sectors; ++s) {
    file.seekg(static_cast<std::streamoff>(s * 512));
    if (!file.read(sector.data(), 512)) return fmt::format("sector {}: cannot read", s);
    for (unsigned i = 0; i < 512; ++i) {
      if (static_cast<uint8_t>(sector[i]) != pattern_byte(s, i, seed)) {
        return fmt::format("sector {} byte {}: {:#x}, want {:#x}", s, i, static_cast<uint8_t>(sector[i]),
                           pattern_byte(s, i, seed));
      }
    }
  }
  return "";
}

}  // namespace iovmm::test
