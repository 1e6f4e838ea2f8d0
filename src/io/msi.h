// Message-signalled interrupts as a device sees them: a vector it programs with the address/data pair the guest
// wrote (an MSI-X table entry) and signals when it has something to say. The machine implements a vector as a KVM
// GSI route (KVM_SET_GSI_ROUTING) plus an irqfd, so signal() is one eventfd write and KVM injects the interrupt
// without the VMM's help; the device never sees either.
#pragma once

#include <cstdint>
#include <memory>

namespace iovmm::io {

class MsiVector {
 public:
  virtual ~MsiVector() = default;
  // The message the guest programmed. Called whenever the table entry changes (unmasked entries only).
  virtual void set_message(uint64_t address, uint32_t data) = 0;
  // Raises the interrupt with the last message set. Safe from any thread; cheap (one eventfd write).
  virtual void signal() = 0;
};

class MsiAllocator {
 public:
  virtual ~MsiAllocator() = default;
  // Throws Error when the machine has no GSI left.
  [[nodiscard]] virtual std::unique_ptr<MsiVector> allocate() = 0;
};

}  // namespace iovmm::io
