// One address space (port I/O or MMIO): an immutable, sorted table of windows, replaced as a whole on every change
// so that a vCPU in the middle of an access keeps the table (and the device) it looked up alive.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "io/device.h"
#include "io/registers.h"

namespace iovmm::io {

// Per-window access counts by (offset, size, direction, path). Guarded by its own lock, not the device's, so that
// paths which skip the device lock can still count.
class AccessCounts {
 public:
  struct Key {
    uint64_t offset;
    unsigned size;
    Direction direction;
    Path path;
    auto operator<=>(const Key&) const = default;
  };
  void add(uint64_t offset, unsigned size, Direction direction, Path path, uint64_t n = 1);
  [[nodiscard]] std::map<Key, uint64_t> snapshot() const;

 private:
  mutable std::mutex mutex_;
  std::map<Key, uint64_t> counts_;
};

// How the accesses of one window travel, chosen by the dispatch layer from the device's register table.
struct WindowBinding {
  struct BoundRegister {
    Register reg;
    Path path;
  };
  Path whole = Path::exit;  // exit, or ioregionfd when `carrier` forwards the window to a device server
  std::vector<BoundRegister> registers;  // registers taking another path than `whole`
  // When set, every access to the window goes to the carrier (with the carrier's own locking) instead of the
  // window's device: an ioregionfd proxy, while the device itself keeps its PCI configuration space in the VMM.
  std::shared_ptr<Device> carrier;

  [[nodiscard]] const BoundRegister* find(uint64_t offset, unsigned size) const;
};

struct Window {
  uint64_t base = 0;
  uint64_t size = 0;
  std::shared_ptr<Device> device;
  unsigned region = 0;
  std::string label = {};  // e.g. "uart0" or "pci-testdev.bar0", for stats and errors
  std::shared_ptr<AccessCounts> counts = std::make_shared<AccessCounts>();
  std::shared_ptr<const WindowBinding> binding = {};  // null: everything by exit
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

  // Attaches a binding to (device, region): to its window now, and to any window it gets later (a PCI BAR mapped
  // after start-up). Listeners see the change as the window removed and added again.
  void bind(const Device& device, unsigned region, std::shared_ptr<const WindowBinding> binding);

  // Told of every change with the bus's writer lock held: `removed` and/or `added` (a move is both). A listener
  // must not call back into this bus.
  using Listener = std::function<void(const Window* removed, const Window* added)>;
  void add_listener(Listener listener);

  // The vCPU path, and the replay of accesses that took another path (`via`). `value` is all-ones (masked to
  // size) unless the result is ok. Registers bound to `fastpath` are read without the device lock.
  [[nodiscard]] AccessResult read(uint64_t addr, unsigned size, uint64_t& value, Path via = Path::exit);
  [[nodiscard]] AccessResult write(uint64_t addr, unsigned size, uint64_t value, Path via = Path::exit);

  // String I/O (rep ins/outs): `count` elements of `size` bytes at the same address, back to back in `data`. One
  // exit, so one lookup, one lock and one count — under size*count bytes, which is how statistics tell a string
  // transfer from single accesses. Unmapped: reads fill all-ones, writes are dropped.
  [[nodiscard]] AccessResult transfer_string(Direction direction, uint64_t addr, unsigned size, uint32_t count,
                                             uint8_t* data);

  // (device, region) → its current window, if mapped.
  [[nodiscard]] std::optional<Window> find_window(const Device& device, unsigned region) const;

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
  void notify(const Window* removed, const Window* added);
  // Throws Error when `window` is empty, wraps, or overlaps a window in `table`.
  void check_free(const Table& table, const Window& window) const;

  Space space_;
  std::mutex writer_mutex_;  // serialises map/unmap/move; readers never take it
  std::atomic<std::shared_ptr<const Table>> table_;
  std::atomic<uint64_t> unmapped_reads_{0};
  std::atomic<uint64_t> unmapped_writes_{0};
  std::vector<Listener> listeners_;
  std::map<std::pair<const Device*, unsigned>, std::shared_ptr<const WindowBinding>> bindings_;
};

}  // namespace iovmm::io
