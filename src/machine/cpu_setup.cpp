#include "machine/cpu_setup.h"

#include <array>

#include "common/error.h"
#include "kvm/cpuid.h"

namespace iovmm {
namespace {
constexpr uint16_t kCodeSelector = 0x10;
constexpr uint16_t kDataSelector = 0x18;
constexpr uint16_t kTssSelector = 0x20;

// Descriptor from the fields KVM also wants in kvm_segment; one source for both keeps them in agreement.
uint64_t gdt_entry(const kvm_segment& s) {
  uint64_t limit = s.g ? (s.limit >> 12) : s.limit;
  return (limit & 0xffff) | ((s.base & 0xffffffull) << 16) | (uint64_t{s.type} << 40) | (uint64_t{s.s} << 44) |
         (uint64_t{s.dpl} << 45) | (uint64_t{s.present} << 47) | (((limit >> 16) & 0xf) << 48) |
         (uint64_t{s.avl} << 52) | (uint64_t{s.l} << 53) | (uint64_t{s.db} << 54) | (uint64_t{s.g} << 55) |
         ((s.base >> 24 & 0xffull) << 56);
}

kvm_segment flat_segment(uint16_t selector, uint8_t type) {
  kvm_segment s{};
  s.base = 0;
  s.limit = 0xffffffff;
  s.selector = selector;
  s.type = type;
  s.present = 1;
  s.dpl = 0;
  s.db = 1;
  s.s = 1;
  s.g = 1;
  return s;
}
}  // namespace

void enter_flat_protected_mode(kvm::Vcpu& vcpu, GuestMemory& memory, uint64_t gdt_gpa, const FlatEntry& entry) {
  kvm_segment code = flat_segment(kCodeSelector, 0xb);  // execute/read, accessed
  kvm_segment data = flat_segment(kDataSelector, 0x3);  // read/write, accessed
  kvm_segment tss{};
  tss.selector = kTssSelector;
  tss.limit = 0x67;
  tss.type = 0xb;  // busy 32-bit TSS: VMX refuses protected mode without a usable TR
  tss.present = 1;

  std::array<uint64_t, 5> gdt{0, 0, gdt_entry(code), gdt_entry(data), gdt_entry(tss)};
  if (!memory.write(gdt_gpa, gdt.data(), sizeof gdt)) throw Error("boot GDT lies outside guest RAM");

  kvm_sregs sregs = vcpu.sregs();
  sregs.cs = code;
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
  sregs.tr = tss;
  sregs.gdt.base = gdt_gpa;
  sregs.gdt.limit = sizeof gdt - 1;
  sregs.cr0 = 0x11;  // PE | ET; paging off
  sregs.cr4 = 0;
  sregs.efer = 0;
  vcpu.set_sregs(sregs);

  kvm_regs regs{};
  regs.rip = entry.eip;
  regs.rax = entry.eax;
  regs.rbx = entry.ebx;
  regs.rflags = 0x2;
  vcpu.set_regs(regs);
}

void set_vcpu_cpuid(kvm::Vcpu& vcpu, const kvm::System& system, uint32_t cpu_count) {
  vcpu.set_cpuid(kvm::vcpu_cpuid(system.supported_cpuid(), vcpu.id(), cpu_count));
}

}  // namespace iovmm
