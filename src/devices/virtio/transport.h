// What virtio-mmio and virtio-pci share (VIRTIO 1.2 sections 2.1-2.2, 3.1, 4.1.4.3, 4.2.2, and the legacy
// interfaces of 4.1.4.8 and 4.2.4): the device status state machine, feature negotiation, the queues' configuration,
// the interrupt status bits (virtio-mmio InterruptStatus, virtio-pci ISR), the device configuration space, and the
// VirtioContext lent to the device type. A transport device (VirtioMmio, VirtioPci) owns one VirtioTransport, maps
// its registers onto these calls, and decides how an interrupt reaches the guest (InterruptSink).
//
// Everything here runs with the owning io::Device's mutex held, including the fd watch handlers the transport runs
// for the device type. Only interrupt_status() may be read without it (an atomic: virtio-mmio's lock-free read).
//
// Rules applied to what the guest writes (all of it hostile):
//   - Status only gains bits (the spec forbids clearing one); writing 0 resets. FEATURES_OK stays clear when the
//     driver's features are not a subset of the offered ones, or lack VERSION_1 on the modern interface; DRIVER_OK
//     stays clear on the modern interface until FEATURES_OK is set. NEEDS_RESET is the device's bit alone.
//   - Driver features are frozen once FEATURES_OK (or, on a legacy interface, DRIVER_OK) is set.
//   - A queue's size and ring addresses cannot change while the queue is ready (4.1.4.3.2, 4.2.2.2); legacy
//     QueuePFN may always be written (0 stops the queue).
//   - Selectors past the queue count or the feature words are stored (a driver may read them back) but select
//     nothing: reads give 0, writes are dropped.
//   - Configuration-space accesses past config_size() read 0 and are not written.
// Leaves out: packed rings, VIRTIO_F_NOTIFICATION_DATA, VIRTIO_F_RING_RESET, shared memory regions, device-initiated
// configuration-change interrupts other than VirtioContext::fail (no device type needs them yet).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "devices/device_context.h"
#include "devices/virtio/device.h"
#include "devices/virtio/queue.h"

namespace iovmm::devices::virtio {

// Which of a transport's interfaces an access came through: virtio 1.x, or the legacy (0.9.5) one that
// virtio-mmio version 1 and a transitional virtio-pci's I/O BAR speak. Feature negotiation differs between them.
enum class Interface : uint8_t { modern, legacy };

// How the owning device delivers interrupts. Called with its mutex held.
class InterruptSink {
 public:
  // An interrupt for `queue` (used buffers), or for a configuration change when empty. The interrupt status bit is
  // already set.
  virtual void raise(std::optional<unsigned> queue) = 0;
  // The interrupt status was cleared (acknowledged, read, reset): a level-triggered line follows it.
  virtual void interrupt_status_cleared() = 0;
  // The device was reset (status 0 or quiesce): transport-specific state goes back to its reset value.
  virtual void transport_reset() = 0;

 protected:
  ~InterruptSink() = default;
};

class VirtioTransport {
 public:
  static constexpr unsigned kMaxQueues = 1024;
  static constexpr uint16_t kMaxQueueSize = 32768;  // VIRTIO 1.2 2.7: a split ring holds at most 2^15 entries
  static constexpr uint32_t kLegacyPageSize = 4096;  // virtio-pci's legacy page (VIRTIO_PCI_QUEUE_ADDR_SHIFT)
  static constexpr uint32_t kLegacyAlign = 4096;     // VIRTIO_PCI_VRING_ALIGN, virtio-mmio's default QueueAlign

  // Throws UsageError naming `name` for a null device or memory or watcher, or a device whose queue count or
  // maximum queue size is out of range. `lock` is the owning device's mutex; `sink` outlives the transport.
  VirtioTransport(std::string name, std::unique_ptr<VirtioDevice> device, const DeviceContext& context,
                  std::mutex& lock, InterruptSink& sink);
  VirtioTransport(const VirtioTransport&) = delete;
  VirtioTransport& operator=(const VirtioTransport&) = delete;
  ~VirtioTransport();

  [[nodiscard]] VirtioDevice& device() { return *device_; }
  [[nodiscard]] const VirtioDevice& device() const { return *device_; }
  [[nodiscard]] unsigned queue_count() const { return static_cast<unsigned>(queues_.size()); }
  [[nodiscard]] uint64_t offered_features(Interface interface) const;

  // Features. The selectors pick a 32-bit word (0: bits 0-31, 1: bits 32-63).
  void set_device_features_select(uint32_t select) { device_features_select_ = select; }
  [[nodiscard]] uint32_t device_features_select() const { return device_features_select_; }
  [[nodiscard]] uint32_t device_features_word(Interface interface) const;
  void set_driver_features_select(uint32_t select) { driver_features_select_ = select; }
  [[nodiscard]] uint32_t driver_features_select() const { return driver_features_select_; }
  void write_driver_features_word(uint32_t value);
  [[nodiscard]] uint32_t driver_features_word() const;
  // The legacy virtio-pci register: the whole feature set is one 32-bit word.
  void write_legacy_driver_features(uint32_t value);
  [[nodiscard]] uint64_t driver_features() const { return driver_features_; }

  // Device status.
  [[nodiscard]] uint8_t status() const { return status_; }
  void write_status(uint8_t value, Interface interface);
  [[nodiscard]] bool active() const { return active_; }

  // Interrupt status bits (VIRTIO_MMIO_INT_VRING = used buffers, VIRTIO_MMIO_INT_CONFIG = configuration change;
  // virtio-pci's ISR uses the same bits). interrupt_status() is safe without the lock.
  [[nodiscard]] uint8_t interrupt_status() const { return interrupt_status_.load(std::memory_order_acquire); }
  void acknowledge_interrupt(uint32_t bits);  // virtio-mmio InterruptACK
  [[nodiscard]] uint8_t take_interrupt_status();  // virtio-pci ISR: reading clears

  // Queue configuration, for the queue QueueSel selects.
  void set_queue_select(uint32_t select) { queue_select_ = select; }
  [[nodiscard]] uint32_t queue_select() const { return queue_select_; }
  // The selected queue, or null when the selector is past the queue count.
  [[nodiscard]] Virtqueue* selected_queue();
  [[nodiscard]] const Virtqueue* selected_queue() const;
  [[nodiscard]] uint16_t queue_max_size() const;  // 0: no such queue
  [[nodiscard]] uint16_t queue_size() const;      // 0: no such queue
  void set_queue_size(uint32_t size);
  enum class Ring : uint8_t { desc, avail, used };
  // One 32-bit half (high = bits 32-63) of a ring address.
  void set_queue_address_half(Ring ring, bool high, uint32_t value);
  [[nodiscard]] uint32_t queue_address_half(Ring ring, bool high) const;
  [[nodiscard]] bool queue_ready() const;
  void set_queue_ready(bool ready);

  // Legacy queue layout: the rings sit in one guest area at QueuePFN * page size, the used ring aligned to the
  // queue's QueueAlign. virtio-mmio version 1 sets the page size and alignment; legacy virtio-pci uses 4096 for both.
  void set_legacy_page_size(uint32_t size);
  void set_legacy_queue_align(uint32_t align);
  void set_legacy_queue_pfn(uint32_t pfn);
  [[nodiscard]] uint32_t legacy_queue_pfn() const;

  // Device configuration space, offsets relative to its start; `size` is 1, 2, 4 or 8.
  [[nodiscard]] uint64_t read_config(uint64_t offset, unsigned size);
  void write_config(uint64_t offset, unsigned size, uint64_t value);
  [[nodiscard]] uint32_t config_generation() const { return device_->config_generation(); }

  // QueueNotify (a write or its eventfd): the device type hears about `queue` when it is active and healthy.
  void notify(uint64_t queue);

  // Status 0: resets the device type, the queues, negotiation and interrupt status, and stops every fd watch.
  void reset();
  // The machine is going away: reset, then never raise an interrupt or run a watch handler again.
  void quiesce();

 private:
  struct LegacyQueue {
    uint32_t pfn = 0;
    uint32_t align = kLegacyAlign;
  };

  [[nodiscard]] static std::vector<Virtqueue> make_queues(const std::string& name, const VirtioDevice* device);
  [[nodiscard]] bool features_acceptable(Interface interface) const;
  void activate(Interface interface);
  void apply_legacy_layout(unsigned index);
  [[nodiscard]] bool queue_locked(const char* what) const;
  void raise(std::optional<unsigned> queue);
  // VirtioContext's callbacks.
  void used_buffers(unsigned queue);
  void fail(std::string_view why);
  void watch(int fd, std::function<void()> handler);
  void unwatch(int fd);
  void unwatch_all();
  // Runs device-type code that the guest can make throw (a broken queue): the device fails instead.
  template <typename F>
  void guarded(const char* what, F&& call);

  std::string name_;
  std::unique_ptr<VirtioDevice> device_;
  io::FdWatcher& watcher_;
  std::mutex& lock_;
  InterruptSink& sink_;
  std::vector<Virtqueue> queues_;
  std::vector<LegacyQueue> legacy_queues_;
  VirtioContext context_;

  uint8_t status_ = 0;
  bool active_ = false;  // DRIVER_OK accepted and the device type activated
  bool failed_ = false;  // VirtioContext::fail since the last reset
  bool quiesced_ = false;
  uint32_t device_features_select_ = 0;
  uint32_t driver_features_select_ = 0;
  uint64_t driver_features_ = 0;
  uint32_t queue_select_ = 0;
  uint32_t legacy_page_size_ = kLegacyPageSize;
  std::atomic<uint8_t> interrupt_status_{0};
  // Watched fd → generation of that watch, so a handler the watcher had already fetched when the fd was unwatched
  // (or watched anew) does nothing.
  std::map<int, uint64_t> watches_;
  uint64_t watch_generation_ = 0;
};

}  // namespace iovmm::devices::virtio
