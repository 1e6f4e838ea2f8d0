#include "dispatch/coalesced.h"

#include <algorithm>
#include <cstring>

namespace iovmm::dispatch {

void CoalescedReplay::add_zone(io::Space space, uint64_t addr, uint32_t size, const io::Window& window) {
  std::lock_guard lock(zones_mutex_);
  auto zones = std::make_shared<Zones>(*zones_.load());
  zones->push_back({space, addr, size, window});
  zones_.store(std::move(zones));
  ever_zoned_.store(true, std::memory_order_release);
}

void CoalescedReplay::remove_zone(io::Space space, uint64_t addr, uint32_t size) {
  std::lock_guard lock(zones_mutex_);
  auto zones = std::make_shared<Zones>(*zones_.load());
  std::erase_if(*zones, [&](const Zone& z) { return z.space == space && z.addr == addr && z.size == size; });
  zones_.store(std::move(zones));
}

void CoalescedReplay::replay(const Zones& zones, const kvm_coalesced_mmio& entry) {
  uint64_t value = 0;
  unsigned size = entry.len <= sizeof value ? entry.len : 0;  // a corrupt length is refused by the bus
  std::memcpy(&value, entry.data, size);
  const io::Space space = entry.pio ? io::Space::pio : io::Space::mmio;
  for (const Zone& zone : zones) {
    if (zone.space == space && entry.phys_addr >= zone.addr && entry.phys_addr - zone.addr < zone.size &&
        io::valid_access_size(size) && size <= zone.size - (entry.phys_addr - zone.addr)) {
      bus(space).write_window(zone.window, entry.phys_addr - zone.window.base, size, value, io::Path::coalesced);
      return;
    }
  }
  // Queued before its zone went away (a BAR moved): wherever the bus has the address now.
  (void)bus(space).write(entry.phys_addr, size, value, io::Path::coalesced);
}

size_t CoalescedReplay::drain(CoalescedRing ring) {
  if (!ever_zoned_.load(std::memory_order_acquire) || !ring.ring || ring.entries == 0) return 0;
  // KVM publishes `last` after filling an entry; we publish `first` after consuming one.
  std::atomic_ref<uint32_t> last(ring.ring->last);
  std::atomic_ref<uint32_t> first(ring.ring->first);
  if (first.load(std::memory_order_relaxed) == last.load(std::memory_order_acquire)) return 0;
  std::lock_guard lock(drain_mutex_);
  const std::shared_ptr<const Zones> zones = zones_.load();
  size_t handled = 0;
  uint32_t head = first.load(std::memory_order_relaxed);
  while (head != last.load(std::memory_order_acquire)) {
    if (head >= ring.entries) {  // a corrupt index must not walk us off the page
      first.store(last.load(std::memory_order_relaxed), std::memory_order_release);
      break;
    }
    kvm_coalesced_mmio entry = ring.ring->coalesced_mmio[head];
    replay(*zones, entry);
    head = (head + 1) % ring.entries;
    first.store(head, std::memory_order_release);
    ++handled;
  }
  return handled;
}

}  // namespace iovmm::dispatch
