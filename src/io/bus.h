// One address space (port I/O or MMIO): an immutable, sorted table of windows, replaced as a whole on every change
// so that a vCPU in the middle of an access keeps the table (and the device) it looked up alive. The bus finds the
// window and counts the access; how the access travels (a plain locked call, the fastpath, a device server) is the
// window's route, which the dispatch layer compiles (src/dispatch/route.h).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "io/device.h"
#include "io/register_map.h"
#include "io/registers.h"

namespace iovmm::io {

// Per-window access counts by (offset, size, direction, path). An access of 1, 2, 4 or 8 bytes at a register's own
// offset — nearly every access — is one relaxed atomic add in a flat array sized when the window was mapped; the
// rest (string transfers, accesses inside a register or between registers) go to a small map under a mutex. No
// lock of the device is involved, so paths that skip the device lock count as well.
class AccessCounts {
 public:
  struct Key {
    uint64_t offset;
    unsigned size;
    Direction direction;
    Path path;
    auto operator<=>(const Key&) const = default;
  };
  explicit AccessCounts(std::span<const Register> registers = {});

  // The row of the window's table that contains the access, or RegisterMap::kNone.
  [[nodiscard]] uint32_t row(uint64_t offset, unsigned size) const { return map_.index(offset, size); }
  [[nodiscard]] const RegisterMap& registers() const { return map_; }
  void add(uint32_t row, uint64_t offset, unsigned size, Direction direction, Path path, uint64_t n = 1);
  void add(uint64_t offset, unsigned size, Direction direction, Path path, uint64_t n = 1) {
    add(row(offset, size), offset, size, direction, path, n);
  }
  [[nodiscard]] std::map<Key, uint64_t> snapshot() const;

 private:
  static constexpr unsigned kWidths = 4;  // 1, 2, 4, 8 bytes
  [[nodiscard]] static size_t slot(uint32_t row, Direction direction, Path path, unsigned width_index) {
    return ((size_t{row} * 2 + static_cast<size_t>(direction)) * kPathCount + static_cast<size_t>(path)) * kWidths +
           width_index;
  }

  RegisterMap map_;
  std::unique_ptr<std::atomic<uint64_t>[]> flat_;
  mutable std::mutex other_mutex_;
  std::map<Key, uint64_t> other_;
};

struct Window;

// How the accesses of a window travel when it is not simply "lock the device and call it". `row` is the window's
// table row that contains the access (RegisterMap::kNone for none); `via` is the path the access already took to
// get here (exit, or a replay: coalesced, hypercall). Each returns the path the access is counted under.
class WindowRoute {
 public:
  virtual ~WindowRoute() = default;
  [[nodiscard]] virtual Path read(const Window& window, uint32_t row, uint64_t offset, unsigned size, Path via,
                                  uint64_t& value) const = 0;
  [[nodiscard]] virtual Path write(const Window& window, uint32_t row, uint64_t offset, unsigned size, uint64_t value,
                                   Path via) const = 0;
  // `count` elements of `size` bytes at one offset (rep ins/outs), back to back in `data`.
  [[nodiscard]] virtual Path transfer_string(const Window& window, Direction direction, uint64_t offset, unsigned size,
                                             uint32_t count, uint8_t* data) const = 0;
};

// The `count` calls a string transfer makes of `target` (whose lock the caller holds, if it needs one).
void transfer_elements(Device& target, unsigned region, Direction direction, uint64_t offset, unsigned size,
                       uint32_t count, uint8_t* data);

struct Window {
  uint64_t base = 0;
  uint64_t size = 0;
  std::shared_ptr<Device> device;
  unsigned region = 0;
  std::string label = {};  // e.g. "uart0" or "pci-testdev.bar0", for stats and errors
  std::shared_ptr<AccessCounts> counts = {};       // made by map() from the device's table for `region`
  std::shared_ptr<const WindowRoute> route = {};   // null: every access is a plain call under the device's lock
};

enum class AccessResult : uint8_t {
  ok,
  unmapped,     // no window at that address: reads return all-ones, writes are dropped
  crosses_end,  // starts inside a window but runs past its end: treated as unmapped
  bad_size,     // not 1, 2, 4 or 8 bytes
};

class Bus {
  using Table = std::vector<Window>;

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

  // Attaches a route to (device, region): to its window now, and to any window it gets later (a PCI BAR mapped
  // after start-up). Listeners see the change as the window removed and added again.
  void bind(const Device& device, unsigned region, std::shared_ptr<const WindowRoute> route);

  // Told of every change with the bus's writer lock held: `removed` and/or `added` (a move is both). A listener
  // must not call back into this bus.
  using Listener = std::function<void(const Window* removed, const Window* added)>;
  void add_listener(Listener listener);

  // A vCPU's view of the table: re-read only when the table changed since its last access (one generation
  // compare), so the exit path takes no reference count and no lock. Whatever table it holds stays alive until its
  // next access, which keeps a window being unmapped alive for an access already inside it.
  class Reader {
   public:
    explicit Reader(const Bus& bus) : bus_(bus) {}
    [[nodiscard]] const Table& table() {
      uint64_t generation = bus_.generation_.load(std::memory_order_acquire);
      if (generation != generation_) {
        table_ = bus_.table_.load(std::memory_order_acquire);
        generation_ = generation;
      }
      return *table_;
    }

   private:
    const Bus& bus_;
    uint64_t generation_ = 0;  // the bus starts at 1
    std::shared_ptr<const Table> table_;
  };

  // The access paths. `value` is all-ones (masked to size) unless the result is ok. `via` is the path the access
  // took before reaching the bus (exit, or a replay). With a Reader, the lookup is the vCPU's lock-free one.
  [[nodiscard]] AccessResult read(uint64_t addr, unsigned size, uint64_t& value, Path via = Path::exit);
  [[nodiscard]] AccessResult write(uint64_t addr, unsigned size, uint64_t value, Path via = Path::exit);
  [[nodiscard]] AccessResult read(Reader& reader, uint64_t addr, unsigned size, uint64_t& value,
                                  Path via = Path::exit);
  [[nodiscard]] AccessResult write(Reader& reader, uint64_t addr, unsigned size, uint64_t value,
                                   Path via = Path::exit);
  // An access to a window already found (a coalesced zone resolves its window once, when it is registered).
  void write_window(const Window& window, uint64_t offset, unsigned size, uint64_t value, Path via);

  // String I/O (rep ins/outs): `count` elements of `size` bytes at the same address, back to back in `data`. One
  // exit, so one lookup, one lock and one count — under size*count bytes, which is how statistics tell a string
  // transfer from single accesses. Unmapped: reads fill all-ones, writes are dropped.
  [[nodiscard]] AccessResult transfer_string(Reader& reader, Direction direction, uint64_t addr, unsigned size,
                                             uint32_t count, uint8_t* data);

  // (device, region) → its current window, if mapped.
  [[nodiscard]] std::optional<Window> find_window(const Device& device, unsigned region) const;

  [[nodiscard]] std::vector<Window> windows() const;
  [[nodiscard]] uint64_t unmapped_reads() const { return unmapped_reads_.load(std::memory_order_relaxed); }
  [[nodiscard]] uint64_t unmapped_writes() const { return unmapped_writes_.load(std::memory_order_relaxed); }

 private:
  struct Hit {
    const Window* window;
    AccessResult result;
  };
  [[nodiscard]] Hit lookup(const Table& table, uint64_t addr, unsigned size) const;
  [[nodiscard]] AccessResult read_in(const Table& table, uint64_t addr, unsigned size, uint64_t& value, Path via);
  [[nodiscard]] AccessResult write_in(const Table& table, uint64_t addr, unsigned size, uint64_t value, Path via);
  void note_bad_access(AccessResult result, Direction direction, uint64_t addr, unsigned size, uint64_t value);
  void publish(Table table);
  void notify(const Window* removed, const Window* added);
  // Throws Error when `window` is empty, wraps, or overlaps a window in `table`.
  void check_free(const Table& table, const Window& window) const;

  Space space_;
  std::mutex writer_mutex_;  // serialises map/unmap/move; readers never take it
  std::atomic<std::shared_ptr<const Table>> table_;
  std::atomic<uint64_t> generation_{1};
  std::atomic<uint64_t> unmapped_reads_{0};
  std::atomic<uint64_t> unmapped_writes_{0};
  std::vector<Listener> listeners_;
  std::map<std::pair<const Device*, unsigned>, std::shared_ptr<const WindowRoute>> routes_;
};

}  // namespace iovmm::io
