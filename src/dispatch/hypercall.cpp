#include "dispatch/hypercall.h"

#include <cstring>

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

namespace {

thread_local ExitContext* current_exit_context = nullptr;

constexpr io::Register kPortRegisters[] = {{"hypercall", 0, 4, io::Access::rw, io::Effect::synchronous}};
constexpr io::RegisterBlock kPortBlocks[] = {{0, "pio", kPortRegisters}};

// The port as the bus sees it; all it does is in HypercallRoute, which takes no device lock: vCPUs call in
// parallel, and the target device's own lock serialises what must be.
class HypercallPort final : public io::Device {
 public:
  HypercallPort() : io::Device("hypercall") {}
  [[nodiscard]] uint64_t read(unsigned, uint64_t, unsigned size) override { return io::size_mask(size); }
  void write(unsigned, uint64_t, unsigned, uint64_t) override {}
  [[nodiscard]] std::span<const io::RegisterBlock> register_blocks() const override { return kPortBlocks; }
};

class HypercallRoute final : public io::WindowRoute {
 public:
  HypercallRoute(io::Bus& pio, io::Bus& mmio) : pio_(pio), mmio_(mmio) {}

  // A hypercall that names the port itself reaches it with via == hypercall: it is not a call (it would recurse on
  // the same registers) and reads all-ones.
  io::Path read(const io::Window&, uint32_t, uint64_t offset, unsigned, io::Path via, uint64_t& value) const override {
    // Discovery: the guest reads the signature before it trusts the port (QEMU reads all-ones here).
    const bool discovery = offset == 0 && via == io::Path::exit;
    value = discovery ? kHypercallSignature : ~0ull;
    if (discovery && current_exit_context) current_exit_context->expect_hypercalls();
    return via;
  }
  io::Path write(const io::Window&, uint32_t, uint64_t offset, unsigned, uint64_t, io::Path via) const override {
    ExitContext* context = current_exit_context;
    if (offset != 0 || via != io::Path::exit || !context) return via;
    // The call's own access looks its window up afresh rather than through the vCPU's Reader: the Reader may move
    // on to a newer table, and the bus is still inside the port's window of the table it has.
    HypercallRegisters regs = context->load_registers();
    execute_hypercall(regs, pio_, mmio_);
    context->store_registers(regs);
    return via;
  }
  io::Path transfer_string(const io::Window&, io::Direction direction, uint64_t, unsigned size, uint32_t count,
                           uint8_t* data) const override {
    if (direction == io::Direction::read) std::memset(data, 0xFF, size_t{size} * count);  // not a way to call
    return io::Path::exit;
  }

 private:
  io::Bus& pio_;
  io::Bus& mmio_;
};

}  // namespace

void set_thread_exit_context(ExitContext* context) { current_exit_context = context; }

void attach_hypercall_port(io::Bus& pio, io::Bus& mmio) {
  auto port = std::make_shared<HypercallPort>();
  pio.bind(*port, 0, std::make_shared<const HypercallRoute>(pio, mmio));
  pio.map(io::Window{.base = kHypercallPort, .size = 4, .device = port, .region = 0, .label = "hypercall"});
}

}  // namespace iovmm::dispatch
