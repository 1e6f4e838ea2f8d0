// A register table compiled for lookup: offset → row in one indexed load for the small windows registers live in
// (a byte-indexed array up to kDenseLimit bytes), a binary search over sorted rows beyond. Built once, when a window
// is mapped or a device built, never per access. Rows may overlap (fw_cfg's 16-bit selector spans its data port):
// the first row in table order that covers the whole access wins, as find_register() decides.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "io/registers.h"

namespace iovmm::io {

class RegisterMap {
 public:
  static constexpr uint64_t kDenseLimit = 4096;
  static constexpr uint32_t kNone = UINT32_MAX;

  RegisterMap() = default;
  explicit RegisterMap(std::span<const Register> registers);

  // The index (into the span given at construction) of the row containing all of [offset, offset+size), or kNone.
  [[nodiscard]] uint32_t index(uint64_t offset, unsigned size) const {
    uint32_t i = kNone;
    if (offset < dense_.size()) {
      i = dense_[offset] - 1;  // 0 in the array means no row: wraps to kNone
    } else if (!sorted_.empty()) {
      i = search(offset);
    }
    if (i != kNone && registers_[i].covers(offset, size)) return i;
    return overlapping_ ? scan(offset, size) : kNone;
  }
  [[nodiscard]] const Register* find(uint64_t offset, unsigned size) const {
    uint32_t i = index(offset, size);
    return i == kNone ? nullptr : &registers_[i];
  }
  [[nodiscard]] std::span<const Register> registers() const { return registers_; }

 private:
  [[nodiscard]] uint32_t search(uint64_t offset) const;
  [[nodiscard]] uint32_t scan(uint64_t offset, unsigned size) const;

  std::span<const Register> registers_;
  std::vector<uint32_t> dense_;   // byte offset → row index + 1 (0: none), for rows below kDenseLimit
  std::vector<uint32_t> sorted_;  // row indices by offset, for rows reaching past kDenseLimit
  bool overlapping_ = false;      // a miss may still be a hit on a row the index does not name
};

// Reads [offset, offset+size) of a window whose wide accesses reach every register they touch, as bytes:
// read_row(row) runs once for each row the access touches, in ascending order, and the bytes the access overlaps
// land where they lie in it; bytes outside every row read 0. `size` is at most 8.
template <typename ReadRow>
[[nodiscard]] uint64_t compose(const RegisterMap& map, uint64_t offset, unsigned size, ReadRow&& read_row) {
  uint64_t value = 0;
  uint32_t current = RegisterMap::kNone;
  uint64_t current_value = 0;
  for (unsigned i = 0; i < size; ++i) {
    uint32_t index = map.index(offset + i, 1);
    if (index == RegisterMap::kNone) continue;
    const Register& row = map.registers()[index];
    if (index != current) {
      current = index;
      current_value = read_row(row);
    }
    uint64_t byte = offset + i - row.offset;
    if (byte < 8) value |= ((current_value >> (8 * byte)) & 0xFF) << (8 * i);
  }
  return value;
}

}  // namespace iovmm::io
