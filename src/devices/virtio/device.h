// A virtio device type (block, later net) as the transports see it: feature bits, a configuration space, queues,
// and what to do when the driver kicks a queue. The transports (virtio-mmio, virtio-pci) own the device status
// state machine, feature negotiation, the queues' configuration registers, ISR and interrupts; a device type never
// learns which transport carries it.
//
// Threads and locking: the transport calls every method with its own (io::Device) mutex held. Work the device
// finishes later (disk completions) arrives through VirtioContext::watch, whose handlers the transport also runs
// under that mutex. So a device type needs no lock of its own.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "devices/virtio/queue.h"
#include "memory/guest_memory.h"

namespace iovmm::devices::virtio {

// What the transport lends the device between activate() and reset().
struct VirtioContext {
  GuestMemory& memory;
  std::span<Virtqueue> queues;  // queue_count() of them, configured and ready (or not ready: skip those)
  // Returns buffers: the transport signals the queue's interrupt if Virtqueue::needs_interrupt says so.
  std::function<void(unsigned queue)> used_buffers;
  // The guest broke a queue's rules or the device cannot go on: sets DEVICE_NEEDS_RESET, raises a configuration
  // interrupt and logs `why` once. The device stops processing until reset().
  std::function<void(std::string_view why)> fail;
  // Runs `handler` (with the transport's lock held) whenever `fd` is readable; unwatch before reset() returns.
  std::function<void(int fd, std::function<void()> handler)> watch;
  std::function<void(int fd)> unwatch;
};

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;

  [[nodiscard]] virtual uint32_t device_id() const = 0;  // VIRTIO_ID_BLOCK, ...
  // Device-type feature bits; the transport adds VIRTIO_F_VERSION_1, VIRTIO_RING_F_INDIRECT_DESC and
  // VIRTIO_RING_F_EVENT_IDX itself.
  [[nodiscard]] virtual uint64_t device_features() const = 0;
  [[nodiscard]] virtual unsigned queue_count() const = 0;
  [[nodiscard]] virtual uint16_t queue_max_size() const = 0;

  // Device configuration space (little-endian for modern drivers; legacy drivers on x86 read the same bytes).
  // Reads beyond config_size() return 0; writes to read-only fields are ignored.
  [[nodiscard]] virtual uint32_t config_size() const = 0;
  [[nodiscard]] virtual uint64_t config_read(uint64_t offset, unsigned size) = 0;
  virtual void config_write(uint64_t offset, unsigned size, uint64_t value) = 0;
  // Bumped whenever the configuration changes on its own (virtio-mmio ConfigGeneration, virtio-pci config_generation).
  [[nodiscard]] virtual uint32_t config_generation() const { return 0; }

  // DRIVER_OK: the driver has negotiated `features` (device and transport bits) and set up its queues. The
  // context stays valid until reset().
  virtual void activate(VirtioContext& context, uint64_t features) = 0;
  // The driver made buffers available on `queue` (a QueueNotify write or its eventfd; several writes may be
  // merged into one call). Ignored before activate().
  virtual void queue_notify(unsigned queue) = 0;
  // The driver wrote 0 to the status register, or the machine is shutting down: finish or cancel in-flight work
  // (its buffers are guest memory), unwatch every fd, and forget the context.
  virtual void reset() = 0;

  // For log lines: "virtio-blk".
  [[nodiscard]] virtual std::string_view type_name() const = 0;
};

}  // namespace iovmm::devices::virtio
