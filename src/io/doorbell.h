// What a device may ask of the dispatch layer at run time: turn writes to one of its registers into eventfd
// signals (KVM ioeventfd), as QEMU's memory_region_add_eventfd does. pci-testdev registers its test's doorbell when
// the test is selected; virtio registers QueueNotify per queue. The device never sees KVM or the eventfd: the writes
// come back through io::DoorbellSink::doorbell (or as one write for a device without it).
#pragma once

#include <cstdint>
#include <optional>

#include "io/device.h"

namespace iovmm::io {

// When the writes reach the device: as soon as KVM signals (a doorbell that starts work, such as a virtqueue
// notify), or only when the device asks for them with take_pending() (a counter read later, such as pci-testdev's
// hits: no thread wakes up per write, as in QEMU, where nobody reads that eventfd).
enum class DoorbellDelivery : uint8_t { on_signal, on_demand };

class DoorbellHost {
 public:
  static constexpr int kNoDoorbell = -1;

  virtual ~DoorbellHost() = default;

  // Writes of `size` bytes at (region, offset) of `device` — only those writing `datamatch`, when given — stop
  // exiting to user space and are delivered later through device.doorbell(). Follows the window if it moves.
  // Called with the device's mutex held. Returns a handle for the calls below, or kNoDoorbell when none could be
  // made (the window is not mapped at that moment, KVM refused): the writes then keep arriving through write().
  virtual int add_doorbell(Device& device, unsigned region, uint64_t offset, unsigned size,
                           std::optional<uint64_t> datamatch,
                           DoorbellDelivery delivery = DoorbellDelivery::on_signal) = 0;
  // Stops the doorbell; signals not yet delivered are dropped. Called with the device's mutex held.
  virtual void remove_doorbell(int handle) = 0;
  // How many writes were signalled and not yet delivered, taking them (they will not reach doorbell()). Called with
  // the device's mutex held, so that a register depending on them is exact when the guest reads it: KVM signals the
  // eventfd during the guest's write, before that vCPU can read anything.
  [[nodiscard]] virtual uint64_t take_pending(int handle) = 0;
};

}  // namespace iovmm::io
