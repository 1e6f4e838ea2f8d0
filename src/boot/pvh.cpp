#include "boot/pvh.h"

#include <fmt/core.h>

#include <cstring>

#include "boot/image.h"
#include "boot/layout.h"
#include "common/error.h"

namespace iovmm::boot {

std::optional<uint32_t> pvh_entry_point(const ElfFile& elf) {
  const auto note = elf.find_note("Xen", kXenElfNotePhys32Entry);
  if (!note) return std::nullopt;
  // Linux emits a 32-bit value; other kernels a 64-bit one. Either way the protocol enters in 32-bit mode.
  uint64_t entry = 0;
  if (note->desc.size() == 4) {
    uint32_t entry32;
    std::memcpy(&entry32, note->desc.data(), 4);
    entry = entry32;
  } else if (note->desc.size() == 8) {
    std::memcpy(&entry, note->desc.data(), 8);
  } else {
    throw UsageError(fmt::format("{}: XEN_ELFNOTE_PHYS32_ENTRY note has {} bytes of data; expected 4 or 8",
                                 elf.file_name(), note->desc.size()));
  }
  if (entry > UINT32_MAX) {
    throw UsageError(fmt::format("{}: PVH entry point {:#x} is above 4 GiB", elf.file_name(), entry));
  }
  return static_cast<uint32_t>(entry);
}

namespace {

// Places each initrd page-aligned from the top of low RAM downwards, as QEMU places an initrd, so that the kernel
// is free to grow upwards from its load address.
std::vector<HvmModlistEntry> load_pvh_modules(GuestMemory& memory, const KernelConfig& config,
                                              const ImageExtent& kernel) {
  std::vector<HvmModlistEntry> modules;
  uint64_t top = low_ram_end(memory);
  const uint64_t floor = page_align_up(kernel.end);
  uint64_t string_gpa = kModuleStringArea.start;
  for (const auto& spec_text : config.initrds) {
    const ModuleSpec spec = parse_module_spec(spec_text);
    const auto contents = read_file(spec.path, "initrd", initrd_file_limit(memory));
    if (top < floor || page_align_up(contents.size()) > top - floor) {
      throw UsageError(fmt::format("initrd {} ({} bytes) does not fit in guest RAM between the kernel's end {:#x} "
                                   "and {:#x}", spec.path, contents.size(), floor, top));
    }
    const uint64_t gpa = page_align_down(top - contents.size());
    load_bytes(memory, gpa, contents, contents.size(), fmt::format("initrd {}", spec.path));
    top = gpa;

    HvmModlistEntry entry{gpa, contents.size(), 0, 0};
    if (!spec.arguments.empty()) {
      write_string(memory, string_gpa, spec.arguments, kModuleStringArea.end(), "the initrd command lines");
      entry.cmdline_paddr = string_gpa;
      string_gpa += spec.arguments.size() + 1;
    }
    modules.push_back(entry);
  }
  return modules;
}

}  // namespace

BootSetup load_pvh(GuestMemory& memory, const ElfFile& elf, uint32_t entry, const KernelConfig& config) {
  const ImageExtent kernel = load_elf_segments(memory, elf, kHighRamStart);
  check_entry_point(memory, entry, fmt::format("{}: PVH entry point", elf.file_name()));

  write_string(memory, kCommandLineArea.start, config.cmdline, kCommandLineArea.end(), "kernel command line");

  const auto modules = load_pvh_modules(memory, config, kernel);
  write_table(memory, kModuleListArea.start, kModuleListArea.size, modules.data(),
              modules.size() * sizeof(HvmModlistEntry), "PVH module list");

  std::vector<HvmMemmapTableEntry> memmap;
  for (const auto& e : e820_map(memory)) memmap.push_back({e.addr, e.size, e.type, 0});
  write_table(memory, kMemoryMapArea.start, kMemoryMapArea.size, memmap.data(),
              memmap.size() * sizeof(HvmMemmapTableEntry), "PVH memory map");

  HvmStartInfo info{};
  info.magic = kHvmStartMagic;
  info.version = 1;
  info.nr_modules = static_cast<uint32_t>(modules.size());
  info.modlist_paddr = modules.empty() ? 0 : kModuleListArea.start;
  info.cmdline_paddr = kCommandLineArea.start;
  info.rsdp_paddr = config.rsdp_paddr;
  info.memmap_paddr = kMemoryMapArea.start;
  info.memmap_entries = static_cast<uint32_t>(memmap.size());
  write_table(memory, kBootInfoAddress, kModuleListArea.start - kBootInfoAddress, &info, sizeof(info),
              "hvm_start_info");

  BootSetup setup;
  setup.protocol = "pvh";
  setup.entry_eip = entry;
  setup.ebx = static_cast<uint32_t>(kBootInfoAddress);
  setup.image_start = kernel.start;
  setup.image_end = kernel.end;
  setup.cpu = setup_protected_mode_entry(memory, setup.entry_eip, setup.eax, setup.ebx);
  return setup;
}

}  // namespace iovmm::boot
