// The coalesced MMIO/PIO path, host side: KVM queues writes to registered zones in a ring shared by every vCPU;
// each vCPU replays it, in order, before it handles any exit, so no read (and nothing else an exit does) overtakes
// a queued write. A zone resolves its window when it is registered, so a replayed entry costs no bus lookup.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "io/bus.h"
#include "kvm/uapi.h"

namespace iovmm::dispatch {

// Where KVM keeps the ring (the page after a vCPU's kvm_run), so tests can hand a ring of their own.
struct CoalescedRing {
  kvm_coalesced_mmio_ring* ring = nullptr;
  uint32_t entries = 0;  // slots in the ring, from the page size
};

class CoalescedReplay {
 public:
  CoalescedReplay(io::Bus& pio, io::Bus& mmio) : pio_(pio), mmio_(mmio) {}

  // Zones follow windows; the dispatcher calls these when a window with coalesced registers comes or goes.
  void add_zone(io::Space space, uint64_t addr, uint32_t size, const io::Window& window);
  void remove_zone(io::Space space, uint64_t addr, uint32_t size);

  // Replays what KVM queued, in order; returns how many entries. A VM that never had a zone pays one load of a
  // flag; an empty ring, two loads of its indices (a page KVM writes: a likely cache miss) and no lock.
  size_t drain(CoalescedRing ring);

 private:
  struct Zone {
    io::Space space;
    uint64_t addr;
    uint32_t size;
    io::Window window;  // keeps the device and its counts alive while the zone exists
  };
  using Zones = std::vector<Zone>;
  void replay(const Zones& zones, const kvm_coalesced_mmio& entry);
  [[nodiscard]] io::Bus& bus(io::Space space) { return space == io::Space::pio ? pio_ : mmio_; }

  io::Bus& pio_;
  io::Bus& mmio_;
  std::mutex drain_mutex_;  // one vCPU drains at a time: the ring is shared
  // Copied on change and published whole, so that a replayed write may itself change the zones (it would take
  // zones_mutex_, which a drain never holds) while the drain goes on with the zones it started with.
  std::mutex zones_mutex_;
  std::atomic<std::shared_ptr<const Zones>> zones_{std::make_shared<const Zones>()};
  std::atomic<bool> ever_zoned_{false};  // entries can outlive their zone, so this never goes back to false
};

}  // namespace iovmm::dispatch
