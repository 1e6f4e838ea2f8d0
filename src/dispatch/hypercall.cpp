#include "dispatch/hypercall.h"

#include <fmt/core.h>
#include <linux/kvm_para.h>

namespace iovmm::dispatch {

std::string probe_vmcall_carrier(const kvm::System& system) {
  int xen = system.check_extension(KVM_CAP_XEN_HVM);
  if (xen & KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL) {
    return "possible through Xen HVM hypercall interception (not used: the port carrier is portable)";
  }
  int forwarded = system.check_extension(KVM_CAP_EXIT_HYPERCALL);
  return fmt::format("unavailable: KVM_CAP_EXIT_HYPERCALL forwards only hypercall mask {:#x} (KVM_HC_MAP_GPA_RANGE is "
                     "bit {}) and KVM_CAP_XEN_HVM is {:#x}, so a vmcall never reaches user space",
                     forwarded, KVM_HC_MAP_GPA_RANGE, xen);
}

void execute_hypercall(HypercallRegisters& regs, io::Bus& pio, io::Bus& mmio) {
  constexpr uint64_t kKnownFlags = kHypercallSizeMask | kHypercallWrite | kHypercallPio;
  auto size = static_cast<unsigned>(regs.rcx & kHypercallSizeMask);
  bool is_pio = regs.rcx & kHypercallPio;
  if ((regs.rcx & ~kKnownFlags) || !io::valid_access_size(size) || (is_pio && regs.rbx > 0xffff)) {
    regs.rcx = kHypercallBadRequest;
    return;
  }
  io::Bus& bus = is_pio ? pio : mmio;
  io::AccessResult result;
  if (regs.rcx & kHypercallWrite) {
    result = bus.write(regs.rbx, size, regs.rax & io::size_mask(size), io::Path::hypercall);
  } else {
    uint64_t value = 0;
    result = bus.read(regs.rbx, size, value, io::Path::hypercall);
    regs.rax = value;
  }
  regs.rcx = result == io::AccessResult::ok ? kHypercallDone : kHypercallUnmapped;
}

}  // namespace iovmm::dispatch
