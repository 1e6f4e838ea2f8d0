// What the machine lends a device model when it builds one: guest memory for DMA, doorbells, an fd watcher for
// asynchronous work, MSI vectors and fixed ISA interrupt lines. Each is optional: a process or a unit test that has
// no machine around the device leaves it null, and a device that needs it refuses to be built (UsageError, one
// line) rather than failing later.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "io/device.h"
#include "io/doorbell.h"
#include "io/fd_watcher.h"
#include "io/msi.h"
#include "memory/guest_memory.h"

namespace iovmm::devices {

// What the host can do that changes how a device is built.
struct HostFeatures {
  bool ioeventfd_any_length = false;  // KVM_CAP_IOEVENTFD_ANY_LENGTH: a doorbell may match any access width
};

struct DeviceContext {
  HostFeatures host;
  GuestMemory* memory = nullptr;          // DMA (virtqueues, PRD tables)
  io::DoorbellHost* doorbells = nullptr;  // run-time ioeventfds (pci-testdev's tests)
  io::FdWatcher* watcher = nullptr;       // disk completions
  io::MsiAllocator* msi = nullptr;        // MSI-X vectors; null: INTx only
  // The line for an ISA interrupt a device owns by definition (IDE: 14 and 15). Null: no interrupts.
  std::function<std::shared_ptr<io::IrqLine>(uint32_t gsi)> isa_irq;
};

}  // namespace iovmm::devices
