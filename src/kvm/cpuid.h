// The CPUID a vCPU sees: the host's KVM-supported set, adjusted per vCPU (APIC ids) and with what must not be
// exposed removed.
#pragma once

#include "kvm/uapi.h"

#include <cstdint>
#include <vector>

namespace iovmm::kvm {

// ARCH_CAPABILITIES (leaf 7 EDX bit 29) is cleared: guests would read MSR 0x10a, which this backend cannot set.
[[nodiscard]] std::vector<kvm_cpuid_entry2> vcpu_cpuid(std::vector<kvm_cpuid_entry2> supported, uint32_t apic_id,
                                                       uint32_t cpu_count);

}  // namespace iovmm::kvm
