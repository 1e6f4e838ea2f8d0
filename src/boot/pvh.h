// The PVH boot protocol, as QEMU's -kernel uses it for an ELF kernel that carries XEN_ELFNOTE_PHYS32_ENTRY:
// load the PT_LOAD segments at their physical addresses, describe memory, command line, modules and the RSDP in an
// hvm_start_info, and enter the note's entry point in 32-bit protected mode with EBX = &start_info.
// Reference: Xen xen/include/public/arch-x86/hvm/start_info.h and docs/misc/pvh.pandoc. No UAPI header carries these
// structures, so they are defined here with their layout pinned by static_assert.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "boot/boot_setup.h"
#include "boot/elf.h"
#include "memory/guest_memory.h"

namespace iovmm::boot {

inline constexpr uint32_t kXenElfNotePhys32Entry = 18;
inline constexpr uint32_t kHvmStartMagic = 0x336ec578;

struct [[gnu::packed]] HvmStartInfo {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;  // version 1 and later
  uint32_t memmap_entries;
  uint32_t reserved;
};
static_assert(sizeof(HvmStartInfo) == 56);
static_assert(offsetof(HvmStartInfo, modlist_paddr) == 16);
static_assert(offsetof(HvmStartInfo, rsdp_paddr) == 32);
static_assert(offsetof(HvmStartInfo, memmap_paddr) == 40);
static_assert(offsetof(HvmStartInfo, memmap_entries) == 48);

struct [[gnu::packed]] HvmModlistEntry {
  uint64_t paddr;
  uint64_t size;
  uint64_t cmdline_paddr;
  uint64_t reserved;
};
static_assert(sizeof(HvmModlistEntry) == 32);

struct [[gnu::packed]] HvmMemmapTableEntry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;  // e820 types
  uint32_t reserved;
};
static_assert(sizeof(HvmMemmapTableEntry) == 24);
static_assert(offsetof(HvmMemmapTableEntry, type) == 16);

// The 32-bit entry point from the ELF's PVH note, or nullopt when the note is absent. UsageError when the note is
// malformed (descriptor not 4 or 8 bytes, entry above 4 GiB).
[[nodiscard]] std::optional<uint32_t> pvh_entry_point(const ElfFile& elf);

// Loads a PVH kernel already known (pvh_entry_point) to carry the note. `config.rsdp_paddr` may be 0 (no ACPI).
[[nodiscard]] BootSetup load_pvh(GuestMemory& memory, const ElfFile& elf, uint32_t entry, const KernelConfig& config);

}  // namespace iovmm::boot
