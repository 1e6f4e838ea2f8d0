#include "kvm/cpuid.h"

namespace iovmm::kvm {

std::vector<kvm_cpuid_entry2> vcpu_cpuid(std::vector<kvm_cpuid_entry2> entries, uint32_t apic_id,
                                         uint32_t cpu_count) {
  constexpr uint32_t kHypervisorBit = 1u << 31;
  constexpr uint32_t kArchCapabilitiesBit = 1u << 29;
  for (auto& e : entries) {
    switch (e.function) {
      case 1:
        // EBX[31:24] initial APIC id, EBX[23:16] logical processors per package; HTT tells the guest to look.
        e.ebx = (e.ebx & 0x0000ffff) | (apic_id << 24) | ((cpu_count & 0xff) << 16);
        if (cpu_count > 1) e.edx |= 1u << 28;
        e.ecx |= kHypervisorBit;
        break;
      case 7:
        if (e.index == 0) e.edx &= ~kArchCapabilitiesBit;
        break;
      case 0xb:
      case 0x1f:
        e.edx = apic_id;  // x2APIC id of this vCPU at every topology level
        break;
      default:
        break;
    }
  }
  return entries;
}

}  // namespace iovmm::kvm
