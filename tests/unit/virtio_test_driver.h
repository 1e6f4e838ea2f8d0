// The driver's side of a split virtqueue, for tests: lays out the descriptor table and the available and used rings
// in a GuestMemory, adds descriptor chains (direct or through an indirect table), makes them available and reads
// the used ring, as a guest's virtio_ring.c would. Also writes raw ring fields, so that tests can play a hostile
// driver. Device-agnostic: queue, device and transport tests share it.
#pragma once

#define VIRTIO_RING_NO_LEGACY  // the legacy vring_init() does not compile as C++
#include <linux/virtio_ring.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "devices/virtio/queue.h"
#include "memory/guest_memory.h"

namespace iovmm::devices::virtio::testing {

struct Buffer {
  uint64_t gpa = 0;
  uint32_t len = 0;
  bool device_writable = false;
};

class VirtqueueDriver {
 public:
  // The rings start at `base` (4 KiB aligned): descriptor table, then the available ring, then the used ring on the
  // next 4 KiB boundary (the legacy layout; any aligned layout would do). footprint() bytes from `base` are used.
  VirtqueueDriver(GuestMemory& memory, uint64_t base, uint16_t size)
      : memory_(memory), size_(size), desc_(base), avail_(base + 16ull * size), used_(align(avail_ + 6 + 2ull * size)) {
    for (uint64_t gpa = base; gpa < base + footprint(size); gpa += 8) poke<uint64_t>(gpa, 0);
    for (uint16_t i = 0; i < size; ++i) free_.push_back(static_cast<uint16_t>(size - 1 - i));
  }

  [[nodiscard]] static uint64_t footprint(uint16_t size) {
    return align(align(16ull * size + 6 + 2ull * size) + 6 + 8ull * size);
  }
  [[nodiscard]] uint16_t size() const { return size_; }
  [[nodiscard]] uint64_t desc_addr() const { return desc_; }
  [[nodiscard]] uint64_t avail_addr() const { return avail_; }
  [[nodiscard]] uint64_t used_addr() const { return used_; }
  [[nodiscard]] size_t free_descriptors() const { return free_.size(); }

  // What a transport does when the driver sets the queue up.
  void configure(Virtqueue& queue, bool event_idx = false, bool indirect = false) const {
    queue.set_size(size_);
    queue.set_desc_addr(desc_);
    queue.set_avail_addr(avail_);
    queue.set_used_addr(used_);
    queue.set_features(event_idx, indirect);
    queue.set_ready(true);
  }

  // Puts `buffers` in free descriptors linked by NEXT; returns the head. Not yet available.
  uint16_t add_chain(std::span<const Buffer> buffers) {
    if (buffers.empty() || buffers.size() > free_.size()) throw std::runtime_error("virtqueue driver: no room");
    std::vector<uint16_t> ids;
    for (size_t i = 0; i < buffers.size(); ++i) {
      ids.push_back(free_.back());
      free_.pop_back();
    }
    for (size_t i = 0; i < buffers.size(); ++i) {
      const bool last = i + 1 == buffers.size();
      write_desc(
          ids[i], buffers[i].gpa, buffers[i].len,
          static_cast<uint16_t>((buffers[i].device_writable ? VRING_DESC_F_WRITE : 0) | (last ? 0 : VRING_DESC_F_NEXT)),
          last ? 0 : ids[i + 1]);
    }
    owned_[ids[0]] = ids;
    return ids[0];
  }

  // Writes `buffers` as an indirect table at `table_gpa` and puts one INDIRECT descriptor in the ring.
  uint16_t add_indirect_chain(std::span<const Buffer> buffers, uint64_t table_gpa) {
    for (size_t i = 0; i < buffers.size(); ++i) {
      const bool last = i + 1 == buffers.size();
      write_raw_desc(
          table_gpa + 16 * i, buffers[i].gpa, buffers[i].len,
          static_cast<uint16_t>((buffers[i].device_writable ? VRING_DESC_F_WRITE : 0) | (last ? 0 : VRING_DESC_F_NEXT)),
          static_cast<uint16_t>(last ? 0 : i + 1));
    }
    const Buffer table{table_gpa, static_cast<uint32_t>(16 * buffers.size()), false};
    const uint16_t head = add_chain(std::span<const Buffer>(&table, 1));
    write_desc(head, table_gpa, table.len, VRING_DESC_F_INDIRECT, 0);
    return head;
  }

  // Publishes `head` in the next available slot and bumps avail->idx, with the barrier a driver uses.
  void make_available(uint16_t head) {
    poke<uint16_t>(avail_ + 4 + 2ull * (avail_idx_ % size_), head);
    std::atomic_thread_fence(std::memory_order_release);
    set_avail_idx(static_cast<uint16_t>(avail_idx_ + 1));
  }

  // The next used element the device returned, or nothing; its descriptors go back to the free list.
  std::optional<vring_used_elem> next_used() {
    if (used_idx() == last_used_) return std::nullopt;
    std::atomic_thread_fence(std::memory_order_acquire);
    const auto element = peek<vring_used_elem>(used_ + 4 + 8ull * (last_used_ % size_));
    ++last_used_;
    if (auto it = owned_.find(static_cast<uint16_t>(element.id)); it != owned_.end()) {
      free_.insert(free_.end(), it->second.begin(), it->second.end());
      owned_.erase(it);
    }
    return element;
  }

  // Raw fields, for hostile drivers and for checking what the device wrote.
  void write_desc(uint16_t index, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    write_raw_desc(desc_ + 16ull * index, addr, len, flags, next);
  }
  void write_raw_desc(uint64_t gpa, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    poke(gpa, vring_desc{addr, len, flags, next});
  }
  void write_avail_slot(uint16_t slot, uint16_t head) { poke<uint16_t>(avail_ + 4 + 2ull * slot, head); }
  void set_avail_idx(uint16_t idx) {
    avail_idx_ = idx;
    poke<uint16_t>(avail_ + 2, idx);
  }
  [[nodiscard]] uint16_t avail_idx() const { return avail_idx_; }
  void set_avail_flags(uint16_t flags) { poke<uint16_t>(avail_, flags); }
  void set_used_event(uint16_t idx) { poke<uint16_t>(avail_ + 4 + 2ull * size_, idx); }
  [[nodiscard]] uint16_t used_idx() const { return peek<uint16_t>(used_ + 2); }
  [[nodiscard]] uint16_t used_flags() const { return peek<uint16_t>(used_); }
  [[nodiscard]] uint16_t avail_event() const { return peek<uint16_t>(used_ + 4 + 8ull * size_); }
  [[nodiscard]] vring_used_elem used_elem(uint16_t slot) const {
    return peek<vring_used_elem>(used_ + 4 + 8ull * (slot % size_));
  }

  template <typename T>
  void poke(uint64_t gpa, const T& value) {
    if (!memory_.write_obj(gpa, value)) throw std::runtime_error("virtqueue driver: write outside RAM");
  }
  template <typename T>
  [[nodiscard]] T peek(uint64_t gpa) const {
    auto value = memory_.read_obj<T>(gpa);
    if (!value) throw std::runtime_error("virtqueue driver: read outside RAM");
    return *value;
  }

 private:
  static uint64_t align(uint64_t value) { return (value + 4095) & ~uint64_t{4095}; }

  GuestMemory& memory_;
  uint16_t size_;
  uint64_t desc_, avail_, used_;
  uint16_t avail_idx_ = 0;
  uint16_t last_used_ = 0;
  std::vector<uint16_t> free_;
  std::map<uint16_t, std::vector<uint16_t>> owned_;  // head -> the descriptors its chain holds
};

}  // namespace iovmm::devices::virtio::testing
