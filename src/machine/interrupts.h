// How device interrupts reach the guest through KVM's in-kernel irqchip: ISA/PCI INTx lines as GSIs (KVM_IRQ_LINE),
// and MSI-X vectors as GSI routes (KVM_SET_GSI_ROUTING) each fed by an irqfd, so that a device thread raises an
// MSI with one eventfd write and no VMM thread is involved in the injection.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "io/device.h"
#include "io/msi.h"
#include "kvm/vm.h"

namespace iovmm {

class InterruptRouter final : public io::MsiAllocator {
 public:
  explicit InterruptRouter(kvm::Vm& vm);

  // A line on one of the irqchip's GSIs (0-23), level-triggered. Safe from any thread.
  [[nodiscard]] std::shared_ptr<io::IrqLine> line(uint32_t gsi);
  [[nodiscard]] std::unique_ptr<io::MsiVector> allocate() override;

 private:
  class Vector;
  void set_route(uint32_t gsi, uint64_t address, uint32_t data);
  void release(uint32_t gsi);
  void commit_locked();

  kvm::Vm& vm_;
  std::mutex mutex_;  // guards routes_ and the KVM table
  std::map<uint32_t, kvm::Vm::MsiRoute> routes_;
  std::vector<uint32_t> free_gsis_;
  uint32_t next_gsi_ = kvm::Vm::kIrqchipGsiCount;
};

}  // namespace iovmm
