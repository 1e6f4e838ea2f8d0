#include "io/register_map.h"

#include <algorithm>

namespace iovmm::io {

RegisterMap::RegisterMap(std::span<const Register> registers) : registers_(registers) {
  std::vector<uint32_t> order(registers.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return registers[a].offset < registers[b].offset; });
  uint64_t end = 0;
  for (uint32_t i : order) {
    overlapping_ |= registers[i].offset < end;
    end = std::max(end, registers[i].offset + registers[i].width);
  }
  uint64_t dense_end = 0;
  for (const auto& reg : registers) {
    if (reg.offset + reg.width <= kDenseLimit) dense_end = std::max(dense_end, reg.offset + reg.width);
  }
  dense_.assign(dense_end, 0);
  // Later rows first, so that where rows overlap a byte names the first row in table order.
  for (uint32_t i = static_cast<uint32_t>(registers.size()); i-- > 0;) {
    const Register& reg = registers[i];
    if (reg.offset + reg.width <= kDenseLimit) {
      std::fill_n(dense_.begin() + static_cast<ptrdiff_t>(reg.offset), reg.width, i + 1);
    }
  }
  for (uint32_t i : order) {
    if (registers[i].offset + registers[i].width > kDenseLimit) sorted_.push_back(i);
  }
}

uint32_t RegisterMap::search(uint64_t offset) const {
  // The last row starting at or before `offset`; index() checks that it covers the access.
  auto it = std::upper_bound(sorted_.begin(), sorted_.end(), offset,
                             [&](uint64_t off, uint32_t i) { return off < registers_[i].offset; });
  return it == sorted_.begin() ? kNone : *(it - 1);
}

uint32_t RegisterMap::scan(uint64_t offset, unsigned size) const {
  const Register* reg = find_register(registers_, offset, size);
  return reg ? static_cast<uint32_t>(reg - registers_.data()) : kNone;
}

}  // namespace iovmm::io
