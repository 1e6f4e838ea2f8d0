#include "machine/cpu_setup.h"

#include "kvm/cpuid.h"

namespace iovmm {
namespace {
kvm_segment to_kvm(const boot::SegmentState& s) {
  kvm_segment k{};
  k.base = s.base;
  k.limit = s.limit;
  k.selector = s.selector;
  k.type = s.type;
  k.present = s.present ? 1 : 0;
  k.s = s.code_or_data ? 1 : 0;
  k.db = s.default_32bit ? 1 : 0;
  k.g = s.granularity_4k ? 1 : 0;
  return k;
}
}  // namespace

void apply_entry_state(kvm::Vcpu& vcpu, const boot::EntryState& entry) {
  kvm_sregs sregs = vcpu.sregs();
  sregs.cs = to_kvm(entry.code);
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = to_kvm(entry.data);
  sregs.tr = to_kvm(entry.tss);
  sregs.gdt.base = entry.gdt_base;
  sregs.gdt.limit = entry.gdt_limit;
  sregs.cr0 = entry.cr0;
  sregs.cr4 = 0;
  sregs.efer = 0;
  vcpu.set_sregs(sregs);

  kvm_regs regs{};
  regs.rip = entry.eip;
  regs.rax = entry.eax;
  regs.rbx = entry.ebx;
  regs.rflags = 0x2;  // bit 1 is reserved and must be set
  vcpu.set_regs(regs);
}

void set_vcpu_cpuid(kvm::Vcpu& vcpu, const kvm::System& system, uint32_t cpu_count) {
  vcpu.set_cpuid(kvm::vcpu_cpuid(system.supported_cpuid(), vcpu.id(), cpu_count));
}

}  // namespace iovmm
