// One address space (port I/O or MMIO): an immutable, sorted table of windows, replaced as a whole on every change
// so that a vCPU in the middle of an access keeps the table (and the device) it looked up alive.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "io/device.h"

namespace iovmm::io {

// Per-window access counts by (offset, size, direction). Guarded by its own lock, not the device's, so that paths
// which skip the device lock can still count.
class AccessCounts {
 public:
  struct Key {
    uint64_t offset;
    unsigned size;
    Direction direction;
    auto operator<=>(const Key&) const = default;
  };
  void add(uint64_t offset, unsigned size, Direction direction, uint64_t n = 1);
  [[nodiscard]] std::map<Key, uint64_t> snapshot() const;

 private:
  mutable std::mutex mutex_;
  std::map<Key, uint64_t> counts_;
};

struct Window {
  uint64_t base = 0;
  uint64_t size = 0;
  std::shared_ptr<Device> device;
  unsigned region = 0;
  std::string label = {};  // e.g. "uart0" or "pci-testdev.bar0", for stats and errors
  std::shared_ptr<AccessCounts> counts = std::make_shared<AccessCounts>();
};

enum class AccessResult : uint8_t {
  ok,
  unmapped,     // no window at that address: reads return all-ones, writes are dropped
  crosses_end,  // starts inside a window but runs past its end: treated as unmapped
  bad_size,     // not 1, 2, 4 or 8 bytes
};

class Bus {
 public:
  explicit Bus(Space space);

  [[nodiscard]] Space space() const { return space_; }

  // Throws Error naming both windows when [base, base+size) overlaps an existing one.
  void map(Window window);
  // Removes the window of (device, region). False when there was none.
  bool unmap(const Device& device, unsigned region);
  // Moves (device, region) to new_base, keeping its counts (a guest reprogramming a PCI BAR). Throws on overlap,
  // leaving the window where it was.
  void move(const Device& device, unsigned region, uint64_t new_base);

  // The vCPU path. `value` is all-ones (masked to size) unless the result is ok.
  [[nodiscard]] AccessResult read(uint64_t addr, unsigned size, uint64_t& value);
  [[nodiscard]] AccessResult write(uint64_t addr, unsigned size, uint64_t value);

  [[nodiscard]] std::vector<Window> windows() const;
  [[nodiscard]] uint64_t unmapped_reads() const { return unmapped_reads_.load(std::memory_order_relaxed); }
  [[nodiscard]] uint64_t unmapped_writes() const { return unmapped_writes_.load(std::memory_order_relaxed); }

 private:
  using Table = std::vector<Window>;
  struct Hit {
    std::shared_ptr<const Table> table;  // keeps the window's device alive during the access
    const Window* window;
    AccessResult result;
  };
  [[nodiscard]] Hit lookup(uint64_t addr, unsigned size) const;
  void note_bad_access(AccessResult result, Direction direction, uint64_t addr, unsigned size, uint64_t value);
  void publish(Table table);
  // Throws Error when `window` is empty, wraps, or overlaps a window in `table`.
  void check_free(const Table& table, const Window& window) const;

  Space space_;
  std::mutex writer_mutex_;  // serialises map/unmap/move; readers never take it
  std::atomic<std::shared_ptr<const Table>> table_;
  std::atomic<uint64_t> unmapped_reads_{0};
  std::atomic<uint64_t> unmapped_writes_{0};
};

}  // namespace iovmm::io
