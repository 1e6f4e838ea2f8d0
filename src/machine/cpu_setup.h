// Puts the boot layer's entry state into a vCPU, and gives each vCPU its CPUID.
#pragma once

#include <cstdint>

#include "boot/entry_state.h"
#include "kvm/system.h"
#include "kvm/vcpu.h"

namespace iovmm {

void apply_entry_state(kvm::Vcpu& vcpu, const boot::EntryState& entry);
void set_vcpu_cpuid(kvm::Vcpu& vcpu, const kvm::System& system, uint32_t cpu_count);

}  // namespace iovmm
