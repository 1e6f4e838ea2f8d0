// Register state for the boot protocols' 32-bit flat entry (PVH and Multiboot both enter in protected mode with
// paging off), and the per-vCPU CPUID.
#pragma once

#include <cstdint>

#include "kvm/system.h"
#include "kvm/vcpu.h"
#include "memory/guest_memory.h"

namespace iovmm {

struct FlatEntry {
  uint32_t eip = 0;
  uint32_t eax = 0;
  uint32_t ebx = 0;
};

// Writes a small flat GDT at `gdt_gpa` (null, unused, code 0x10, data 0x18, TSS 0x20) and loads it with the
// segment registers as the protocols require: CS a 32-bit execute/read segment with base 0 and limit 4 GiB.
void enter_flat_protected_mode(kvm::Vcpu& vcpu, GuestMemory& memory, uint64_t gdt_gpa, const FlatEntry& entry);

void set_vcpu_cpuid(kvm::Vcpu& vcpu, const kvm::System& system, uint32_t cpu_count);

}  // namespace iovmm
