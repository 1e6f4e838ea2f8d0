// Pre-assigns PCI BARs and interrupt lines the way SeaBIOS does on QEMU "-M pc", so that a guest booted directly
// (no firmware) finds its devices at the same addresses under iovmm as under QEMU + SeaBIOS.
//
// The algorithm (SeaBIOS src/fw/pciinit.c: pci_bios_check_devices, pci_bios_init_root_regions_io/_mem,
// pci_region_map_entries, pci_bios_init_device):
//   * Every BAR of every function, in bus/device/function order, becomes an entry of its region type: I/O, memory
//     or prefetchable memory. Memory BARs smaller than 4 KiB take 4 KiB. Entries are kept sorted by size,
//     largest first (equal sizes keep enumeration order), so packing them upward keeps each naturally aligned.
//   * I/O starts at 0xC000 when the total is below 0x4000, else at 0x1000 when below 0x9000, else fails.
//   * Memory ends at 0xFEC00000 (below the IOAPIC). Prefetchable memory goes on top unless its largest BAR is
//     larger than plain memory's, in which case the two swap; the top region's base is (end - sum) rounded down to
//     its largest BAR, and the other region ends there and is placed the same way.
//     The window starts at 0x80000000 (RAM <= 2 GiB), 0xC0000000 (RAM <= 3 GiB) or the top of low RAM. If the
//     regions do not fit, 64-bit BARs (except USB controllers') move above 4 GiB: after high RAM, 1 GiB aligned.
//   * Each function then gets INTx routed like PIIX (line = {10,10,11,11}[(pin - 1 + slot - 1) & 3]) and its
//     command register gains I/O, memory and SERR enable — for every function, as SeaBIOS does — which makes the
//     BAR observers map the windows.
// Leaves out: bridges and secondary buses, expansion ROMs, the q35 variant, and SeaBIOS's VGA special cases.
#pragma once

#include <cstdint>
#include <vector>

#include "devices/pci/pci_device.h"
#include "devices/pci/pci_root.h"

namespace iovmm::devices {

struct BarAllocationOptions {
  uint64_t ram_below_4g = 0;  // bytes of guest RAM below 4 GiB (SeaBIOS's RamSize)
  uint64_t ram_above_4g = 0;  // bytes of guest RAM above 4 GiB
  bool assign_interrupt_lines = true;
};

struct BarAssignment {
  uint8_t slot;
  uint8_t function;
  unsigned bar;
  BarKind kind;
  uint64_t address;
  uint64_t size;  // the space taken, after SeaBIOS's 4 KiB minimum for memory BARs
};

constexpr uint64_t kPciIoWindowBase = 0xC000;
constexpr uint64_t kPciIoWindowLargeBase = 0x1000;
constexpr uint64_t kPciMemWindowEnd = 0xFEC00000;

// Programs every BAR of every function on `root` and enables decode. Throws Error when the BARs cannot fit (where
// SeaBIOS would panic). Call before the guest runs.
std::vector<BarAssignment> assign_bars_like_seabios(PciRoot& root, const BarAllocationOptions& options);

}  // namespace iovmm::devices
