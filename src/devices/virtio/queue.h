// A split virtqueue (VIRTIO 1.2, section 2.7) as the device side walks it: descriptor table, available ring and used
// ring in guest memory, indirect descriptors (VIRTIO_F_INDIRECT_DESC) and event index (VIRTIO_F_EVENT_IDX).
// The transport configures it (size, ring addresses, ready); the device model pops chains and pushes them back.
//
// Hostile input: every address, length and index the guest wrote is checked before use. A descriptor outside RAM,
// a chain longer than the queue (a loop), an index past the queue size, an indirect table that is not a whole
// number of descriptors or nests, an avail index that jumps by more than the queue size: pop()/push() throw
// QueueError and the device marks itself as needing reset. Nothing the guest writes can make the walker loop,
// allocate without bound or touch host memory outside guest RAM.
// Leaves out: packed virtqueues (VIRTIO_F_RING_PACKED), VIRTIO_F_NOTIFICATION_DATA.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "memory/guest_memory.h"

namespace iovmm::devices::virtio {

// The guest broke the queue's rules; the device needs reset (VIRTIO_CONFIG_S_NEEDS_RESET).
class QueueError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Descriptor {
  uint64_t addr = 0;  // guest-physical; [addr, addr+len) checked to be RAM when the chain was popped
  uint32_t len = 0;
  bool device_writable = false;
};

struct DescriptorChain {
  uint16_t head = 0;  // what push() hands back
  std::vector<Descriptor> descriptors;  // in chain order, indirect tables flattened
};

class Virtqueue {
 public:
  explicit Virtqueue(uint16_t max_size);

  // Transport side. Addresses and size are only checked when the queue is used: the guest may write them in any
  // order before setting ready.
  [[nodiscard]] uint16_t max_size() const { return max_size_; }
  [[nodiscard]] uint16_t size() const { return size_; }
  void set_size(uint16_t size);  // ignored unless a power of two in 1..max_size (legacy: any value is refused)
  void set_desc_addr(uint64_t gpa) { desc_ = gpa; }
  void set_avail_addr(uint64_t gpa) { avail_ = gpa; }
  void set_used_addr(uint64_t gpa) { used_ = gpa; }
  [[nodiscard]] uint64_t desc_addr() const { return desc_; }
  [[nodiscard]] uint64_t avail_addr() const { return avail_; }
  [[nodiscard]] uint64_t used_addr() const { return used_; }
  void set_ready(bool ready) { ready_ = ready; }
  [[nodiscard]] bool ready() const { return ready_; }
  // The features the driver accepted that change the ring format or notifications.
  void set_features(bool event_idx, bool indirect);
  void reset();  // back to max_size, addresses 0, not ready, indices 0

  // Device side (memory = guest RAM). Throw QueueError on a broken queue.
  // The next available chain, or nothing when the driver has not made one available.
  [[nodiscard]] std::optional<DescriptorChain> pop(const GuestMemory& memory);
  // Returns a chain to the driver with `written` bytes written into its device-writable part.
  void push(GuestMemory& memory, uint16_t head, uint32_t written);
  // Whether the driver wants an interrupt for what was pushed since the last call (VIRTQ_AVAIL_F_NO_INTERRUPT, or
  // used_event with VIRTIO_F_EVENT_IDX). Call once per batch of push()es, before signalling.
  [[nodiscard]] bool needs_interrupt(const GuestMemory& memory);
  // Tells the driver whether to notify (kick) when it adds buffers: VIRTQ_USED_F_NO_NOTIFY, or avail_event with
  // VIRTIO_F_EVENT_IDX. A device that polls the ring may turn notifications off while it works.
  void set_notifications(GuestMemory& memory, bool enabled);

  [[nodiscard]] uint16_t last_avail_index() const { return last_avail_; }
  [[nodiscard]] uint16_t used_index() const { return used_idx_; }

 private:
  // The ring addresses check_rings() last accepted; the guest may rewrite them before the queue is used again.
  struct RingLayout {
    uint16_t size;
    uint64_t desc, avail, used;
    bool operator==(const RingLayout&) const = default;
  };
  void check_rings(const GuestMemory& memory);
  [[nodiscard]] uint16_t read_u16(const GuestMemory& memory, uint64_t gpa, const char* what) const;
  void write_u16(GuestMemory& memory, uint64_t gpa, uint16_t value, const char* what) const;
  void walk_chain(const GuestMemory& memory, uint16_t head, std::vector<Descriptor>& out) const;
  void walk_indirect(const GuestMemory& memory, uint16_t from, uint64_t table, uint32_t table_len,
                     std::vector<Descriptor>& out) const;

  uint16_t max_size_;
  uint16_t size_;
  uint64_t desc_ = 0;
  uint64_t avail_ = 0;
  uint64_t used_ = 0;
  bool ready_ = false;
  bool event_idx_ = false;
  bool indirect_ = false;
  uint16_t last_avail_ = 0;
  uint16_t used_idx_ = 0;
  uint16_t signalled_used_ = 0;  // used index at the last interrupt decision
  bool notifications_ = true;    // set_notifications(): whether pop() keeps avail_event up to date
  std::optional<RingLayout> checked_;
};

}  // namespace iovmm::devices::virtio
