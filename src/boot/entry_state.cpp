#include "boot/entry_state.h"

#include <array>

#include "boot/layout.h"
#include "common/error.h"

namespace iovmm::boot {
namespace {

constexpr uint16_t kCodeSelector = 0x08;
constexpr uint16_t kDataSelector = 0x10;
constexpr uint16_t kTssSelector = 0x18;
constexpr uint32_t kTssLimit = 0x67;  // a 32-bit TSS is 104 bytes

// Packs a segment into the 8-byte descriptor format of the Intel SDM vol. 3, 3.4.5.
uint64_t encode_descriptor(const SegmentState& s) {
  const uint64_t raw_limit = s.granularity_4k ? s.limit >> 12 : s.limit;
  uint64_t d = 0;
  d |= raw_limit & 0xFFFF;
  d |= (s.base & 0xFFFFFF) << 16;
  d |= uint64_t{s.type & 0xFu} << 40;
  d |= uint64_t{s.code_or_data} << 44;
  d |= uint64_t{s.present} << 47;
  d |= ((raw_limit >> 16) & 0xF) << 48;
  d |= uint64_t{s.default_32bit} << 54;
  d |= uint64_t{s.granularity_4k} << 55;
  d |= ((s.base >> 24) & 0xFF) << 56;
  return d;
}

}  // namespace

EntryState setup_protected_mode_entry(GuestMemory& memory, uint32_t eip, uint32_t eax, uint32_t ebx) {
  EntryState state;
  state.eip = eip;
  state.eax = eax;
  state.ebx = ebx;
  state.code = {kCodeSelector, 0, 0xFFFFFFFF, 0xB, true, true, true, true};
  state.data = {kDataSelector, 0, 0xFFFFFFFF, 0x3, true, true, true, true};
  state.tss = {kTssSelector, kBootTssAddress, kTssLimit, 0xB, false, true, false, false};

  const std::array<uint64_t, 4> gdt = {0, encode_descriptor(state.code), encode_descriptor(state.data),
                                       encode_descriptor(state.tss)};
  state.gdt_base = kBootGdtAddress;
  state.gdt_limit = sizeof(gdt) - 1;
  const std::array<uint8_t, kTssLimit + 1> zero_tss{};
  if (!memory.write_obj(kBootGdtAddress, gdt) || !memory.write_obj(kBootTssAddress, zero_tss)) {
    throw Error("boot: the boot GDT at 0x500 is not in guest RAM");
  }
  return state;
}

}  // namespace iovmm::boot
