#include "dispatch/hypercall.h"

namespace iovmm::dispatch {

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
