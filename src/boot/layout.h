// The guest-physical layout of iovmm's pc-like platform. The boot protocols, the ACPI tables and the machine all read
// these numbers from here so that what the guest is told (e820, MADT, DSDT) matches what the machine maps.
//
//   0x00000000  real-mode IVT/BDA (left alone)     0x00000500  boot GDT
//   0x00006000  boot information (start info / multiboot info, module list, memory map) up to 0x9000
//   0x00020000  kernel command line (64 KiB)       0x00030000  module strings (64 KiB)
//   0x0009FC00  EBDA (reserved)                    0x000A0000  VGA hole (not RAM)
//   0x000E0000  ACPI tables (RSDP first) to 0xFFFFF, reserved in e820
//   0x00100000  kernel, then RAM up to min(ram, 3 GiB)
//   0xC0000000  PCI MMIO window to 0xFEBFFFFF      0xFEC00000 IOAPIC    0xFEE00000 LAPIC
//   0x100000000 the rest of RAM
#pragma once

#include <asm/bootparam.h>

#include <cstdint>
#include <vector>

#include "memory/guest_memory.h"

namespace iovmm::boot {

inline constexpr uint64_t kKiB = 1024;
inline constexpr uint64_t kMiB = 1024 * kKiB;
inline constexpr uint64_t kGiB = 1024 * kMiB;
inline constexpr uint64_t kPageSize = 4096;

// A span of guest-physical addresses, [start, start + size).
struct GuestArea {
  uint64_t start;
  uint64_t size;
  [[nodiscard]] constexpr uint64_t end() const { return start + size; }
};

// Boot-time GDT: null, flat 32-bit code, flat 32-bit data, a 32-bit TSS (PVH requires TR to hold one).
inline constexpr uint64_t kBootGdtAddress = 0x500;
inline constexpr uint64_t kBootTssAddress = 0x580;

// Boot information, written by the boot protocol; the first 1 MiB is never where a kernel loads.
inline constexpr GuestArea kBootInfoArea{0x6000, 0x3000};
inline constexpr uint64_t kBootInfoAddress = 0x6000;         // hvm_start_info or multiboot_info
inline constexpr uint64_t kBootLoaderNameAddress = 0x6300;   // "iovmm" (multiboot)
inline constexpr GuestArea kModuleListArea{0x6400, 0xC00};   // hvm_modlist_entry[] / multiboot module[]
inline constexpr GuestArea kMemoryMapArea{0x7000, 0x2000};   // hvm_memmap_table_entry[] / multiboot mmap
inline constexpr GuestArea kCommandLineArea{0x20000, 64 * kKiB};
inline constexpr GuestArea kModuleStringArea{0x30000, 64 * kKiB};

// Legacy PC holes and BIOS areas.
inline constexpr uint64_t kEbdaStart = 0x9FC00;
inline constexpr GuestArea kVgaHole{0xA0000, 0x20000};
inline constexpr GuestArea kAcpiArea{0xE0000, 0x20000};  // RSDP at its start, tables after it
inline constexpr uint64_t kRsdpAddress = kAcpiArea.start;
inline constexpr uint64_t kHighMemoryStart = 1 * kMiB;

// Where low RAM ends at most, and where the rest of RAM continues.
inline constexpr uint64_t kLowRamLimit = 3 * kGiB;
inline constexpr uint64_t kHighRamStart = 4 * kGiB;

// Devices the machine maps and ACPI describes.
inline constexpr GuestArea kPciMmioWindow{0xC0000000, 0xFEC00000 - 0xC0000000};
inline constexpr uint64_t kIoapicAddress = 0xFEC00000;
inline constexpr uint64_t kLapicAddress = 0xFEE00000;

// Enough for the boot areas above plus a kernel at 1 MiB; anything smaller cannot boot.
inline constexpr uint64_t kMinimumRamSize = 2 * kMiB;

// `struct boot_e820_entry` from the kernel's UAPI: addr, size, type (E820_RAM / E820_RESERVED).
using E820Entry = boot_e820_entry;
inline constexpr uint32_t kE820Ram = 1;
inline constexpr uint32_t kE820Reserved = 2;

// Throws UsageError when `ram_size` (from --memory) is not page-aligned or too small for this layout.
void check_ram_size(uint64_t ram_size);

// RAM ranges for `ram_size` bytes: [0, min(ram, 3 GiB)) minus the VGA hole, then the remainder from 4 GiB.
// Calls check_ram_size first.
[[nodiscard]] std::vector<RamRange> pc_ram_ranges(uint64_t ram_size);

// The memory map the guest is given, sorted by address: RAM below the EBDA, the EBDA and the ACPI/BIOS area as
// reserved, RAM from 1 MiB to the end of low RAM, RAM above 4 GiB.
[[nodiscard]] std::vector<E820Entry> e820_map(const GuestMemory& memory);

// End of the RAM region that contains 1 MiB: the ceiling for anything loaded into low RAM.
[[nodiscard]] uint64_t low_ram_end(const GuestMemory& memory);

// Areas a kernel image or module may not overwrite (GDT, boot information, strings, ACPI).
[[nodiscard]] const std::vector<GuestArea>& firmware_areas();

}  // namespace iovmm::boot
