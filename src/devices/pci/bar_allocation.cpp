#include "devices/pci/bar_allocation.h"

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <mutex>

#include "common/error.h"

namespace iovmm::devices {
namespace {

constexpr uint64_t kMemBarMinimum = 0x1000;  // SeaBIOS PCI_DEVICE_MEM_MIN: one page per memory BAR
constexpr uint64_t kIoSmallLimit = 0x4000;   // what fits in 0xC000..0xFFFF
constexpr uint64_t kIoLargeLimit = 0x9000;   // what fits in 0x1000..0x9FFF
constexpr uint64_t k4GiB = 1ull << 32;
constexpr uint64_t k1GiB = 1ull << 30;
constexpr uint32_t kClassUsb = 0x0C03;  // base class + subclass: USB controllers keep 64-bit BARs low
constexpr std::array<uint8_t, 4> kPiixIrqs = {10, 10, 11, 11};

enum RegionType : unsigned { kIo, kMem, kPrefMem, kRegionTypes };

struct Entry {
  const PciRoot::FunctionRef* function;
  const BarSpec* bar;
  uint64_t size;
  uint64_t align;
};

struct Region {
  uint64_t base = 0;
  std::vector<Entry> entries;  // largest alignment first

  void insert(const Entry& entry) {
    auto pos = std::find_if(entries.begin(), entries.end(), [&](const Entry& e) {
      return e.align < entry.align || (e.align == entry.align && e.size < entry.size);
    });
    entries.insert(pos, entry);
  }
  [[nodiscard]] uint64_t sum() const {
    uint64_t total = 0;
    for (const auto& e : entries) total += e.size;
    return total;
  }
  [[nodiscard]] uint64_t align() const { return entries.empty() ? 1 : entries.front().align; }
};

uint64_t align_down(uint64_t value, uint64_t align) { return value & ~(align - 1); }
uint64_t align_up(uint64_t value, uint64_t align) { return (value + align - 1) & ~(align - 1); }

// Places the two 32-bit memory regions below the window's end. False when they do not fit above `window_start`.
bool place_memory_regions(Region& mem, Region& prefmem, uint64_t window_start) {
  Region* top = &prefmem;
  Region* below = &mem;
  if (below->align() < top->align()) std::swap(top, below);
  top->base = align_down(kPciMemWindowEnd - top->sum(), top->align());
  below->base = align_down(top->base - below->sum(), below->align());
  return below->base >= window_start && below->base <= kPciMemWindowEnd;
}

Region take_64bit_entries(Region& from) {
  Region moved;
  std::erase_if(from.entries, [&](const Entry& e) {
    bool movable = e.bar->kind == BarKind::mem64 && (e.function->device->class_code() >> 8) != kClassUsb;
    if (movable) moved.entries.push_back(e);  // already in sorted order
    return movable;
  });
  return moved;
}

void write_config(PciDevice& device, unsigned offset, unsigned size, uint32_t value) {
  std::lock_guard lock(device.mutex());
  device.config_write(offset, size, value);
}

uint32_t read_config(PciDevice& device, unsigned offset, unsigned size) {
  std::lock_guard lock(device.mutex());
  return device.config_read(offset, size);
}

void assign_region(Region& region, std::vector<BarAssignment>& out) {
  for (const auto& e : region.entries) {
    uint64_t address = region.base;
    region.base += e.size;
    PciDevice& device = *e.function->device;
    unsigned reg = pci_config::kBar0 + 4 * e.bar->index;
    write_config(device, reg, 4, static_cast<uint32_t>(address));
    if (e.bar->kind == BarKind::mem64) write_config(device, reg + 4, 4, static_cast<uint32_t>(address >> 32));
    out.push_back(BarAssignment{e.function->slot, e.function->function, e.bar->index, e.bar->kind, address, e.size});
  }
}

}  // namespace

std::vector<BarAssignment> assign_bars_like_seabios(PciRoot& root, const BarAllocationOptions& options) {
  std::vector<PciRoot::FunctionRef> functions = root.functions();

  std::array<Region, kRegionTypes> regions;
  for (const auto& function : functions) {
    for (const auto& bar : function.device->bars()) {
      RegionType type = bar.kind == BarKind::io ? kIo : bar.prefetchable ? kPrefMem : kMem;
      uint64_t size = type == kIo ? bar.size : std::max(bar.size, kMemBarMinimum);
      regions[type].insert(Entry{&function, &bar, size, size});
    }
  }

  uint64_t io_sum = regions[kIo].sum();
  if (io_sum < kIoSmallLimit) {
    regions[kIo].base = kPciIoWindowBase;
  } else if (io_sum < kIoLargeLimit) {
    regions[kIo].base = kPciIoWindowLargeBase;
  } else {
    throw Error(fmt::format("pci: BARs need {:#x} bytes of I/O space; at most {:#x} fit", io_sum, kIoLargeLimit - 1));
  }

  // The 32-bit window starts above low RAM, at 2 GiB or 3 GiB on i440FX when RAM leaves room.
  uint64_t window_start = options.ram_below_4g <= 0x80000000ull   ? 0x80000000ull
                          : options.ram_below_4g <= 0xC0000000ull ? 0xC0000000ull
                                                                  : options.ram_below_4g;
  std::vector<BarAssignment> assignments;
  if (!place_memory_regions(regions[kMem], regions[kPrefMem], window_start)) {
    Region high_mem = take_64bit_entries(regions[kMem]);
    Region high_prefmem = take_64bit_entries(regions[kPrefMem]);
    if (!place_memory_regions(regions[kMem], regions[kPrefMem], window_start)) {
      throw Error(fmt::format("pci: memory BARs do not fit in the 32-bit window {:#x}..{:#x}", window_start,
                              kPciMemWindowEnd));
    }
    high_mem.base = align_up(align_up(k4GiB + options.ram_above_4g, high_mem.align()), k1GiB);
    high_prefmem.base = align_up(align_up(high_mem.base + high_mem.sum(), high_prefmem.align()), k1GiB);
    assign_region(high_mem, assignments);
    assign_region(high_prefmem, assignments);
  }
  for (auto& region : regions) assign_region(region, assignments);

  for (const auto& function : functions) {
    PciDevice& device = *function.device;
    uint8_t pin = device.interrupt_pin();
    if (options.assign_interrupt_lines && pin >= 1 && pin <= 4) {
      write_config(device, pci_config::kInterruptLine, 1, kPiixIrqs[(pin - 1 + function.slot - 1) & 3]);
    }
    uint32_t command = read_config(device, pci_config::kCommand, 2);
    command |= pci_config::kCommandIo | pci_config::kCommandMemory | pci_config::kCommandSerr;
    write_config(device, pci_config::kCommand, 2, command);
  }
  return assignments;
}

}  // namespace iovmm::devices
