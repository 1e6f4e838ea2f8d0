#include "boot/layout.h"

#include <fmt/core.h>

#include <algorithm>

#include "common/error.h"

namespace iovmm::boot {

void check_ram_size(uint64_t ram_size) {
  if (ram_size % kPageSize != 0) {
    throw UsageError(fmt::format("--memory {} bytes is not a multiple of 4 KiB", ram_size));
  }
  if (ram_size < kMinimumRamSize) {
    throw UsageError(fmt::format("--memory {} KiB is too small: the pc layout needs at least {} MiB", ram_size / kKiB,
                                 kMinimumRamSize / kMiB));
  }
  // Leaves room above 4 GiB without wrapping the 64-bit address space.
  if (ram_size > (uint64_t{1} << 46)) {
    throw UsageError(fmt::format("--memory {} GiB is larger than this machine supports (64 TiB)", ram_size / kGiB));
  }
}

std::vector<RamRange> pc_ram_ranges(uint64_t ram_size) {
  check_ram_size(ram_size);
  const uint64_t low_end = std::min(ram_size, kLowRamLimit);
  std::vector<RamRange> ranges;
  ranges.push_back({0, kVgaHole.start});
  ranges.push_back({kVgaHole.end(), low_end - kVgaHole.end()});
  if (ram_size > low_end) ranges.push_back({kHighRamStart, ram_size - low_end});
  return ranges;
}

namespace {

void add_entry(std::vector<E820Entry>& map, uint64_t start, uint64_t end, uint32_t type) {
  if (end > start) map.push_back(E820Entry{start, end - start, type});
}

}  // namespace

std::vector<E820Entry> e820_map(const GuestMemory& memory) {
  // Everything from the EBDA to 1 MiB is firmware territory; only its EBDA and ACPI/BIOS parts are listed, as
  // reserved, the rest (the VGA hole and option ROM space) is simply absent.
  constexpr uint64_t kFirmwareStart = kEbdaStart;
  std::vector<E820Entry> map;
  for (const auto& region : memory.regions()) {
    const uint64_t start = region.gpa;
    const uint64_t end = region.gpa + region.size;
    add_entry(map, start, std::min(end, kFirmwareStart), kE820Ram);
    add_entry(map, std::max(start, kHighMemoryStart), end, kE820Ram);
  }
  if (memory.contains(kEbdaStart, kVgaHole.start - kEbdaStart)) {
    add_entry(map, kEbdaStart, kVgaHole.start, kE820Reserved);
  }
  if (memory.contains(kAcpiArea.start, kAcpiArea.size)) add_entry(map, kAcpiArea.start, kAcpiArea.end(), kE820Reserved);
  std::sort(map.begin(), map.end(), [](const E820Entry& a, const E820Entry& b) { return a.addr < b.addr; });
  return map;
}

uint64_t low_ram_end(const GuestMemory& memory) {
  for (const auto& region : memory.regions()) {
    if (region.gpa <= kHighMemoryStart && kHighMemoryStart < region.gpa + region.size) return region.gpa + region.size;
  }
  throw UsageError("guest RAM does not reach 1 MiB: there is nowhere to load a kernel");
}

const std::vector<GuestArea>& firmware_areas() {
  static const std::vector<GuestArea> areas = {
      {kBootGdtAddress, 0x100}, kBootInfoArea, kCommandLineArea, kModuleStringArea, {kEbdaStart, 0x400},
      kVgaHole,                 kAcpiArea,
  };
  return areas;
}

}  // namespace iovmm::boot
