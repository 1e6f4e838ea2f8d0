// The CPU state both of our boot protocols (PVH and Multiboot) hand over: 32-bit protected mode, paging off, flat
// 4 GiB code and data segments, and a TSS in TR (PVH asks for one; Multiboot does not mind). The boot layer writes
// the matching GDT into guest memory so a kernel that reloads a selector before installing its own GDT still works;
// the machine copies these descriptors into the vCPU's segment registers.
#pragma once

#include <cstdint>

#include "memory/guest_memory.h"

namespace iovmm::boot {

// One segment register's hidden part, in the shape KVM's kvm_segment wants.
struct SegmentState {
  uint16_t selector;
  uint64_t base;
  uint32_t limit;        // in bytes (already scaled when granularity is set)
  uint8_t type;          // descriptor type field: 0xB execute/read accessed, 0x3 read/write accessed, 0xB busy TSS
  bool code_or_data;     // descriptor S bit; false for system segments such as the TSS
  bool present;
  bool default_32bit;    // D/B bit
  bool granularity_4k;   // G bit
};

struct EntryState {
  uint32_t eip = 0;
  uint32_t eax = 0;
  uint32_t ebx = 0;
  uint32_t cr0 = 0x11;  // PE | ET: protected mode, paging off
  uint64_t gdt_base = 0;
  uint16_t gdt_limit = 0;
  SegmentState code{};  // CS
  SegmentState data{};  // DS, ES, FS, GS, SS
  SegmentState tss{};   // TR
};

// Writes the boot GDT and TSS at their layout addresses and returns the state that goes with them.
// Throws Error if those addresses are not RAM.
[[nodiscard]] EntryState setup_protected_mode_entry(GuestMemory& memory, uint32_t eip, uint32_t eax, uint32_t ebx);

}  // namespace iovmm::boot
