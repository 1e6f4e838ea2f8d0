// A KVM virtual machine: memory slots, the in-kernel irqchip and PIT, interrupt lines, ioeventfds, irqfds and
// coalesced MMIO/PIO zones. Policy (what goes where) belongs to the machine, not here.
#pragma once

#include "kvm/uapi.h"

#include <cstdint>
#include <span>

#include "common/fd.h"
#include "kvm/system.h"

namespace iovmm::kvm {

enum class IoSpace : uint8_t { pio, mmio };

struct IoeventfdSpec {
  IoSpace space = IoSpace::mmio;
  uint64_t addr = 0;
  uint32_t len = 0;  // 0 = any length (KVM_CAP_IOEVENTFD_ANY_LENGTH), else 1, 2, 4 or 8
  bool datamatch = false;
  uint64_t data = 0;
};

class Vm {
 public:
  explicit Vm(const System& system);

  [[nodiscard]] int fd() const { return fd_.get(); }
  [[nodiscard]] const System& system() const { return system_; }

  void set_memory_region(uint32_t slot, uint64_t gpa, uint64_t size, void* host, uint32_t flags = 0);
  // In-kernel PIC, IOAPIC and per-vCPU LAPIC; must precede vCPU creation.
  void create_irqchip();
  void create_pit();
  // Addresses of the pages KVM may need for real-mode emulation on some hosts (VMX); outside RAM and MMIO windows.
  void set_tss_and_identity_map(uint64_t tss_addr, uint64_t identity_map_addr);

  // Level of a GSI on the in-kernel irqchip. Safe from any thread.
  void set_irq_line(uint32_t gsi, bool level);

  // Replaces the whole GSI routing table (KVM_SET_GSI_ROUTING): the irqchip routes KVM sets up by default (GSIs 0-15
  // to the PIC and IOAPIC, 16-23 to the IOAPIC) followed by `msi_routes`, one MSI message per extra GSI. KVM keeps
  // no default routes once a table is set, so they are always included.
  struct MsiRoute {
    uint32_t gsi;
    uint64_t address;
    uint32_t data;
  };
  static constexpr uint32_t kIrqchipGsiCount = 24;
  void set_gsi_routing(std::span<const MsiRoute> msi_routes);

  void add_ioeventfd(const IoeventfdSpec& spec, int eventfd);
  void remove_ioeventfd(const IoeventfdSpec& spec, int eventfd);
  void add_irqfd(uint32_t gsi, int eventfd, int resample_eventfd = -1);
  void remove_irqfd(uint32_t gsi, int eventfd);

  void register_coalesced(IoSpace space, uint64_t addr, uint32_t size);
  void unregister_coalesced(IoSpace space, uint64_t addr, uint32_t size);

 private:
  const System& system_;
  Fd fd_;
};

}  // namespace iovmm::kvm
