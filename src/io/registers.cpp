#include "io/registers.h"

namespace iovmm::io {

std::optional<Path> path_from_string(std::string_view text) {
  for (unsigned i = 0; i < kPathCount; ++i) {
    auto path = static_cast<Path>(i);
    if (to_string(path) == text) return path;
  }
  return std::nullopt;
}

std::string_view to_string(Effect effect) {
  switch (effect) {
    case Effect::latch: return "a latch";
    case Effect::doorbell: return "a doorbell";
    case Effect::read_sensitive: return "read-sensitive";
    case Effect::synchronous: return "synchronous";
    case Effect::constant: return "a constant";
  }
  return "unknown";
}

const Register* find_register(std::span<const Register> registers, uint64_t offset, unsigned size) {
  for (const auto& r : registers) {
    if (r.covers(offset, size)) return &r;
  }
  return nullptr;
}

}  // namespace iovmm::io
