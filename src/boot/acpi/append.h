// Appending bytes to the vectors the ACPI and AML builders return.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

namespace iovmm::boot {

// resize + copy_n rather than vector::insert(end, first, last): at -O3, GCC 12 inlines insert's reallocating path and
// reports a false -Warray-bounds ("offset N is out of the bounds [0, N]", N the size it knows the vector has) for
// moving the old elements into the new storage. No code is wrong there; this form gives it nothing to misjudge.
inline void append_bytes(std::vector<uint8_t>& out, std::span<const uint8_t> more) {
  const size_t offset = out.size();
  out.resize(offset + more.size());
  std::copy_n(more.begin(), more.size(), out.begin() + static_cast<std::ptrdiff_t>(offset));
}

}  // namespace iovmm::boot
