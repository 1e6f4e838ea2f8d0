// The split virtqueue walker (VIRTIO 1.2, section 2.7). What is checked and why: queue.h.
//
// Memory ordering: the driver runs on another CPU and writes the rings while we read them. Its side (Linux
// virtio_ring.c) writes descriptors and the ring slot, then a write barrier, then avail->idx; ours mirrors it:
//   pop:  read avail->idx, acquire fence, then the ring slot and descriptors (never the other way round).
//   push: write the used element, release fence, then used->idx.
//   needs_interrupt / set_notifications: a full fence between our store (used->idx, avail_event) and our load of
//         the driver's suppression fields, or both sides can miss each other's update and the queue stalls.
// Every guest value is read once into a local copy before it is checked and used, so a driver that changes a
// descriptor under us can make its own request fail but never slip past a check.
#define VIRTIO_RING_NO_LEGACY  // the legacy vring_init() is C that does not compile as C++; nothing here needs it
#include "devices/virtio/queue.h"

#include <fmt/core.h>
#include <linux/virtio_ring.h>

#include <atomic>
#include <cstddef>

#include "common/error.h"

namespace iovmm::devices::virtio {
namespace {

constexpr uint64_t kAvailFlags = offsetof(vring_avail, flags);
constexpr uint64_t kAvailIdx = offsetof(vring_avail, idx);
constexpr uint64_t kAvailRing = offsetof(vring_avail, ring);
constexpr uint64_t kUsedFlags = offsetof(vring_used, flags);
constexpr uint64_t kUsedIdx = offsetof(vring_used, idx);
constexpr uint64_t kUsedRing = offsetof(vring_used, ring);
constexpr uint64_t kDescSize = sizeof(vring_desc);
constexpr uint64_t kUsedElemSize = sizeof(vring_used_elem);
static_assert(kDescSize == 16 && kUsedElemSize == 8 && kAvailRing == 4 && kUsedRing == 4);

// The largest indirect table accepted. The spec sets no number; the drivers we serve put seg_max + 2 descriptors in
// one (virtio-blk advertises at most 1022 segments), and the bound keeps what one pop() allocates small.
constexpr uint32_t kMaxIndirectDescriptors = 4096;

constexpr uint32_t kMaxQueueSize = 32768;  // VIRTIO 1.2 §2.7: Queue Size is at most 32768

bool is_power_of_two(uint32_t value) { return value != 0 && (value & (value - 1)) == 0; }

}  // namespace

Virtqueue::Virtqueue(uint16_t max_size) : max_size_(max_size), size_(max_size) {
  if (!is_power_of_two(max_size) || max_size > kMaxQueueSize) {
    throw Error(fmt::format("virtqueue: maximum size {} is not a power of two in 1..{}", max_size, kMaxQueueSize));
  }
}

void Virtqueue::set_size(uint16_t size) {
  if (is_power_of_two(size) && size <= max_size_) size_ = size;
}

void Virtqueue::set_features(bool event_idx, bool indirect) {
  event_idx_ = event_idx;
  indirect_ = indirect;
}

void Virtqueue::reset() {
  size_ = max_size_;
  desc_ = avail_ = used_ = 0;
  ready_ = false;
  event_idx_ = indirect_ = false;
  last_avail_ = used_idx_ = signalled_used_ = 0;
  notifications_ = true;
  checked_.reset();
}

void Virtqueue::check_rings(const GuestMemory& memory) {
  const RingLayout layout{size_, desc_, avail_, used_};
  if (checked_ == layout) return;
  // Alignment: VIRTIO 1.2 §2.7 (table "Virtqueue Part Alignment").
  if (desc_ % VRING_DESC_ALIGN_SIZE || avail_ % VRING_AVAIL_ALIGN_SIZE || used_ % VRING_USED_ALIGN_SIZE) {
    throw QueueError(
        fmt::format("rings misaligned: descriptor table {:#x} (needs 16), available ring {:#x} (2), "
                    "used ring {:#x} (4)",
                    desc_, avail_, used_));
  }
  // Sizes include the event index fields whether or not VIRTIO_F_EVENT_IDX was negotiated, as the spec's table does.
  const uint64_t desc_bytes = kDescSize * size_;
  const uint64_t avail_bytes = kAvailRing + 2ull * size_ + 2;
  const uint64_t used_bytes = kUsedRing + kUsedElemSize * size_ + 2;
  const struct {
    const char* name;
    uint64_t gpa, bytes;
  } parts[] = {{"descriptor table", desc_, desc_bytes},
               {"available ring", avail_, avail_bytes},
               {"used ring", used_, used_bytes}};
  for (const auto& part : parts) {
    if (!memory.contains(part.gpa, part.bytes)) {
      throw QueueError(fmt::format("{} at {:#x} ({} bytes for queue size {}) is not guest RAM", part.name, part.gpa,
                                   part.bytes, size_));
    }
  }
  checked_ = layout;
}

uint16_t Virtqueue::read_u16(const GuestMemory& memory, uint64_t gpa, const char* what) const {
  auto value = memory.read_obj<uint16_t>(gpa);
  if (!value) throw QueueError(fmt::format("{} at {:#x} is not guest RAM", what, gpa));
  return *value;
}

void Virtqueue::write_u16(GuestMemory& memory, uint64_t gpa, uint16_t value, const char* what) const {
  if (!memory.write_obj(gpa, value)) throw QueueError(fmt::format("{} at {:#x} is not guest RAM", what, gpa));
}

std::optional<DescriptorChain> Virtqueue::pop(const GuestMemory& memory) {
  if (!ready_) return std::nullopt;
  check_rings(memory);
  const uint16_t avail_idx = read_u16(memory, avail_ + kAvailIdx, "avail->idx");
  std::atomic_thread_fence(std::memory_order_acquire);  // the ring slot and descriptors are read after idx
  const auto pending = static_cast<uint16_t>(avail_idx - last_avail_);
  if (pending > size_) {
    throw QueueError(fmt::format("avail index jumped from {} to {}, queue size {}", last_avail_, avail_idx, size_));
  }
  if (pending == 0) return std::nullopt;

  const uint64_t slot = avail_ + kAvailRing + 2ull * (last_avail_ % size_);
  const uint16_t head = read_u16(memory, slot, "available ring entry");
  if (head >= size_) {
    throw QueueError(
        fmt::format("available ring entry {} names descriptor {}, queue size {}", last_avail_ % size_, head, size_));
  }
  DescriptorChain chain;
  chain.head = head;
  walk_chain(memory, head, chain.descriptors);
  ++last_avail_;

  if (event_idx_ && notifications_) {
    // "Kick me when you make entry last_avail_ available": avail_event lives after the used ring.
    // pop() takes const memory (it reads the guest's rings); avail_event is the one field it writes back. Guest RAM
    // is never a const object, only this view of it is.
    write_u16(const_cast<GuestMemory&>(memory), used_ + kUsedRing + kUsedElemSize * size_, last_avail_, "avail_event");
    // The next pop() reads avail->idx after this store is visible, or a kick could be lost in between.
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  return chain;
}

void Virtqueue::walk_chain(const GuestMemory& memory, uint16_t head, std::vector<Descriptor>& out) const {
  uint16_t index = head;
  // A well-formed chain visits each descriptor at most once, so size_ hops is the most it can take; one more is a
  // loop.
  for (uint32_t hops = 0;; ++hops) {
    if (hops == size_) {
      throw QueueError(
          fmt::format("descriptor chain from head {} is longer than the queue size {} (a loop)", head, size_));
    }
    const auto desc = memory.read_obj<vring_desc>(desc_ + kDescSize * index);
    if (!desc) throw QueueError(fmt::format("descriptor {} is not guest RAM", index));
    if (desc->flags & VRING_DESC_F_INDIRECT) {
      if (!indirect_) {
        throw QueueError(fmt::format("descriptor {} is indirect but VIRTIO_F_INDIRECT_DESC was not negotiated", index));
      }
      // §2.7.5.3.1: the driver MUST NOT set both INDIRECT and NEXT, so the table ends the chain.
      if (desc->flags & VRING_DESC_F_NEXT) {
        throw QueueError(fmt::format("descriptor {} has both INDIRECT and NEXT", index));
      }
      walk_indirect(memory, index, desc->addr, desc->len, out);
      return;
    }
    if (!memory.contains(desc->addr, desc->len)) {
      throw QueueError(fmt::format("descriptor {}: buffer {:#x}+{:#x} is not guest RAM", index, desc->addr, desc->len));
    }
    out.push_back(Descriptor{desc->addr, desc->len, (desc->flags & VRING_DESC_F_WRITE) != 0});
    if (!(desc->flags & VRING_DESC_F_NEXT)) return;
    if (desc->next >= size_) {
      throw QueueError(fmt::format("descriptor {} chains to {}, queue size {}", index, desc->next, size_));
    }
    index = desc->next;
  }
}

void Virtqueue::walk_indirect(const GuestMemory& memory, uint16_t from, uint64_t table, uint32_t table_len,
                              std::vector<Descriptor>& out) const {
  if (table_len == 0 || table_len % kDescSize != 0) {
    throw QueueError(
        fmt::format("descriptor {}: indirect table at {:#x} is {} bytes, not a whole number of "
                    "descriptors",
                    from, table, table_len));
  }
  const uint32_t count = table_len / kDescSize;
  if (count > kMaxIndirectDescriptors) {
    throw QueueError(fmt::format("descriptor {}: indirect table at {:#x} holds {} descriptors, more than {}", from,
                                 table, count, kMaxIndirectDescriptors));
  }
  if (!memory.contains(table, table_len)) {
    throw QueueError(fmt::format("descriptor {}: indirect table {:#x}+{:#x} is not guest RAM", from, table, table_len));
  }
  uint32_t index = 0;
  for (uint32_t hops = 0;; ++hops) {
    if (hops == count) {
      throw QueueError(
          fmt::format("indirect table at {:#x}: chain longer than its {} descriptors (a loop)", table, count));
    }
    const auto desc = memory.read_obj<vring_desc>(table + kDescSize * index);
    if (!desc) throw QueueError(fmt::format("indirect table at {:#x}: entry {} is not guest RAM", table, index));
    if (desc->flags & VRING_DESC_F_INDIRECT) {
      throw QueueError(
          fmt::format("indirect table at {:#x}: entry {} is indirect again (nested tables)", table, index));
    }
    if (!memory.contains(desc->addr, desc->len)) {
      throw QueueError(fmt::format("indirect table at {:#x}: entry {}: buffer {:#x}+{:#x} is not guest RAM", table,
                                   index, desc->addr, desc->len));
    }
    out.push_back(Descriptor{desc->addr, desc->len, (desc->flags & VRING_DESC_F_WRITE) != 0});
    if (!(desc->flags & VRING_DESC_F_NEXT)) return;
    if (desc->next >= count) {
      throw QueueError(fmt::format("indirect table at {:#x}: entry {} chains to {}, table holds {}", table, index,
                                   desc->next, count));
    }
    index = desc->next;
  }
}

void Virtqueue::push(GuestMemory& memory, uint16_t head, uint32_t written) {
  if (!ready_) throw QueueError(fmt::format("push of descriptor {} to a queue that is not ready", head));
  check_rings(memory);
  if (head >= size_) throw QueueError(fmt::format("push of descriptor {}, queue size {}", head, size_));
  const vring_used_elem element{head, written};
  const uint64_t slot = used_ + kUsedRing + kUsedElemSize * (used_idx_ % size_);
  if (!memory.write_obj(slot, element)) throw QueueError(fmt::format("used ring entry at {:#x} is not RAM", slot));
  std::atomic_thread_fence(std::memory_order_release);  // the element is visible before the index that covers it
  ++used_idx_;
  write_u16(memory, used_ + kUsedIdx, used_idx_, "used->idx");
}

bool Virtqueue::needs_interrupt(const GuestMemory& memory) {
  if (!ready_) return false;
  check_rings(memory);
  // Our used->idx store must be visible before we read what the driver asked for (see the top of this file).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const uint16_t previous = signalled_used_;
  signalled_used_ = used_idx_;
  if (used_idx_ == previous) return false;  // nothing pushed since the last decision
  if (event_idx_) {
    const uint16_t used_event = read_u16(memory, avail_ + kAvailRing + 2ull * size_, "used_event");
    return vring_need_event(used_event, used_idx_, previous) != 0;
  }
  return (read_u16(memory, avail_ + kAvailFlags, "avail->flags") & VRING_AVAIL_F_NO_INTERRUPT) == 0;
}

void Virtqueue::set_notifications(GuestMemory& memory, bool enabled) {
  notifications_ = enabled;
  if (!ready_) return;
  check_rings(memory);
  if (event_idx_) {
    // Disabling needs no write: pop() stops moving avail_event, so the driver stops kicking once it passes it.
    if (enabled) {
      // Ask for a kick on the next entry the driver adds (entries already there are the caller's to pop).
      const uint16_t avail_idx = read_u16(memory, avail_ + kAvailIdx, "avail->idx");
      write_u16(memory, used_ + kUsedRing + kUsedElemSize * size_, avail_idx, "avail_event");
    }
  } else {
    write_u16(memory, used_ + kUsedFlags, enabled ? 0 : VRING_USED_F_NO_NOTIFY, "used->flags");
  }
  // A caller that enables notifications checks the ring again afterwards; that read must follow this store.
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

}  // namespace iovmm::devices::virtio
