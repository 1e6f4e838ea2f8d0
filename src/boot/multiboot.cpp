#include "boot/multiboot.h"

#include <elf.h>
#include <fmt/core.h>

#include <algorithm>
#include <cstring>

#include "boot/elf.h"
#include "boot/image.h"
#include "boot/layout.h"
#include "common/error.h"
#include "common/log.h"

namespace iovmm::boot {
namespace {

constexpr uint32_t kUnderstoodRequirements = kMultibootPageAlignModules | kMultibootMemoryInfo | kMultibootVideoMode;
constexpr char kBootLoaderName[] = "iovmm";

struct LoadedKernel {
  ImageExtent extent;
  uint32_t entry;
};

// The ELF entry may be a virtual address (a higher-half kernel); like GRUB, map it through the segment holding it.
uint64_t physical_entry(const ElfFile& elf) {
  for (const auto& s : elf.segments()) {
    if (s.type == PT_LOAD && elf.entry() >= s.vaddr && elf.entry() - s.vaddr < s.memsz) {
      return s.paddr + (elf.entry() - s.vaddr);
    }
  }
  return elf.entry();
}

LoadedKernel load_elf_kernel(GuestMemory& memory, std::span<const uint8_t> file, const std::string& path) {
  if (!ElfFile::has_elf_magic(file)) {
    throw UsageError(fmt::format("{}: multiboot header has no address fields (flag 16) and the file is not ELF", path));
  }
  const ElfFile elf(path, file);
  if (elf.is_64bit()) throw UsageError(fmt::format("{}: Cannot load x86-64 image, give a 32bit one.", path));
  const auto extent = load_elf_segments(memory, elf, kHighRamStart);
  return {extent, static_cast<uint32_t>(physical_entry(elf))};
}

// The a.out kludge: the header says where the file maps to. The checks are QEMU's, with its messages.
LoadedKernel load_address_fields_kernel(GuestMemory& memory, std::span<const uint8_t> file, const std::string& path,
                                        const MultibootHeaderLocation& location) {
  const MultibootHeader& h = location.header;
  if (location.offset + sizeof(MultibootHeader) > file.size()) {
    throw UsageError(fmt::format("{}: multiboot header address fields run past the end of the file", path));
  }
  if (h.header_addr < h.load_addr) throw UsageError(fmt::format("{}: multiboot: invalid load_addr address", path));
  if (h.header_addr - h.load_addr > location.offset) {
    throw UsageError(fmt::format("{}: multiboot: invalid header_addr address", path));
  }
  const uint64_t text_offset = location.offset - (h.header_addr - h.load_addr);
  uint64_t load_size = file.size() - text_offset;
  if (h.load_end_addr != 0) {
    if (h.load_end_addr < h.load_addr) throw UsageError(fmt::format("{}: multiboot: invalid load_end_addr", path));
    load_size = h.load_end_addr - h.load_addr;
    if (load_size > file.size() - text_offset) {
      throw UsageError(fmt::format("{}: multiboot: load_end_addr {:#x} lies past the end of the file", path,
                                   h.load_end_addr));
    }
  }
  uint64_t memory_size = load_size;
  if (h.bss_end_addr != 0) {
    if (h.bss_end_addr < h.load_addr + load_size) {
      throw UsageError(fmt::format("{}: multiboot: invalid bss_end_addr", path));
    }
    memory_size = h.bss_end_addr - h.load_addr;
  }
  if (memory_size == 0) {
    // As for an ELF without PT_LOADs: nothing would be loaded and the range checks would have nothing to check.
    throw UsageError(fmt::format("{}: multiboot: the load address fields describe an empty image", path));
  }
  const std::string what = fmt::format("{}: multiboot image", path);
  load_bytes(memory, h.load_addr, file.subspan(text_offset, load_size), memory_size, what);
  ImageExtent extent;
  extent.include(h.load_addr, h.load_addr + memory_size);
  return {extent, h.entry_addr};
}

// Modules go page-aligned after the kernel, in order; their strings ("file args") in the module string area.
std::vector<MultibootModule> load_modules(GuestMemory& memory, const KernelConfig& config, uint64_t kernel_end) {
  std::vector<MultibootModule> modules;
  uint64_t next = page_align_up(kernel_end);
  uint64_t string_gpa = kModuleStringArea.start;
  for (const auto& spec_text : config.initrds) {
    const ModuleSpec spec = parse_module_spec(spec_text);
    const auto contents = read_file(spec.path, "initrd", initrd_file_limit(memory));
    const std::string what = fmt::format("multiboot module {}", spec.path);
    load_bytes(memory, next, contents, contents.size(), what);
    if (next + contents.size() > UINT32_MAX) {
      throw UsageError(fmt::format("{} at {:#x} ends above 4 GiB", what, next));
    }
    write_string(memory, string_gpa, spec.full, kModuleStringArea.end(), "the multiboot module strings");
    modules.push_back({static_cast<uint32_t>(next), static_cast<uint32_t>(next + contents.size()),
                       static_cast<uint32_t>(string_gpa), 0});
    string_gpa += spec.full.size() + 1;
    next = page_align_up(next + contents.size());
  }
  return modules;
}

}  // namespace

std::optional<MultibootHeaderLocation> find_multiboot_header(std::span<const uint8_t> file) {
  const size_t limit = std::min(file.size(), kMultibootSearchLimit);
  for (size_t offset = 0; offset + 12 <= limit; offset += 4) {
    uint32_t words[3];
    std::memcpy(words, file.data() + offset, sizeof(words));
    if (words[0] != kMultibootHeaderMagic || static_cast<uint32_t>(words[0] + words[1] + words[2]) != 0) continue;
    MultibootHeaderLocation location{offset, {}};
    std::memcpy(&location.header, file.data() + offset, std::min(sizeof(MultibootHeader), file.size() - offset));
    return location;
  }
  return std::nullopt;
}

BootSetup load_multiboot(GuestMemory& memory, std::span<const uint8_t> file, const MultibootHeaderLocation& location,
                         const KernelConfig& config) {
  const uint32_t flags = location.header.flags;
  const uint32_t unknown_requirements = flags & 0xFFFF & ~kUnderstoodRequirements;
  if (unknown_requirements != 0) {
    throw UsageError(fmt::format("{}: multiboot header requires features this loader does not know (flags {:#x})",
                                 config.path, unknown_requirements));
  }
  if (flags & kMultibootVideoMode) {
    // QEMU reports this and boots anyway in text mode; so do we.
    log::warn("{}: multiboot header asks for a video mode; ignored (text mode only)", config.path);
  }

  const LoadedKernel kernel = (flags & kMultibootAddressFields)
                                  ? load_address_fields_kernel(memory, file, config.path, location)
                                  : load_elf_kernel(memory, file, config.path);
  check_entry_point(memory, kernel.entry, fmt::format("{}: multiboot entry point", config.path));

  const std::string cmdline = config.cmdline.empty() ? config.path : config.path + " " + config.cmdline;
  write_string(memory, kCommandLineArea.start, cmdline, kCommandLineArea.end(), "kernel command line");
  write_string(memory, kBootLoaderNameAddress, kBootLoaderName, kModuleListArea.start, "boot loader name");

  const auto modules = load_modules(memory, config, kernel.extent.end);
  write_table(memory, kModuleListArea.start, kModuleListArea.size, modules.data(),
              modules.size() * sizeof(MultibootModule), "multiboot module list");

  MultibootInfo info{};
  std::vector<MultibootMmapEntry> mmap;
  for (const auto& e : e820_map(memory)) {
    mmap.push_back({sizeof(MultibootMmapEntry) - sizeof(uint32_t), e.addr, e.size, e.type});
    if (e.type != kE820Ram) continue;
    if (e.addr == 0) info.mem_lower = static_cast<uint32_t>(e.size / kKiB);
    if (e.addr == kHighMemoryStart) info.mem_upper = static_cast<uint32_t>(e.size / kKiB);
  }
  write_table(memory, kMemoryMapArea.start, kMemoryMapArea.size, mmap.data(),
              mmap.size() * sizeof(MultibootMmapEntry), "multiboot memory map");

  info.flags = kMultibootInfoMemory | kMultibootInfoCmdline | kMultibootInfoModules | kMultibootInfoMemoryMap |
               kMultibootInfoBootLoaderName;
  info.cmdline = static_cast<uint32_t>(kCommandLineArea.start);
  info.mods_count = static_cast<uint32_t>(modules.size());
  info.mods_addr = static_cast<uint32_t>(kModuleListArea.start);
  info.mmap_length = static_cast<uint32_t>(mmap.size() * sizeof(MultibootMmapEntry));
  info.mmap_addr = static_cast<uint32_t>(kMemoryMapArea.start);
  info.boot_loader_name = static_cast<uint32_t>(kBootLoaderNameAddress);
  write_table(memory, kBootInfoAddress, kBootLoaderNameAddress - kBootInfoAddress, &info, sizeof(info),
              "multiboot_info");

  BootSetup setup;
  setup.protocol = "multiboot";
  setup.entry_eip = kernel.entry;
  setup.eax = kMultibootBootloaderMagic;
  setup.ebx = static_cast<uint32_t>(kBootInfoAddress);
  setup.image_start = kernel.extent.start;
  setup.image_end = kernel.extent.end;
  setup.cpu = setup_protected_mode_entry(memory, setup.entry_eip, setup.eax, setup.ebx);
  return setup;
}

}  // namespace iovmm::boot
