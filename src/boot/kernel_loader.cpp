#include "boot/kernel_loader.h"

#include <fmt/core.h>

#include <cstring>

#include "boot/elf.h"
#include "boot/image.h"
#include "boot/multiboot.h"
#include "boot/pvh.h"
#include "common/error.h"
#include "common/log.h"

namespace iovmm::boot {
namespace {

// Linux's boot protocol header: "HdrS" at offset 0x202 of a bzImage.
bool is_linux_bzimage(std::span<const uint8_t> file) {
  constexpr size_t kHeaderMagicOffset = 0x202;
  return file.size() >= kHeaderMagicOffset + 4 && std::memcmp(file.data() + kHeaderMagicOffset, "HdrS", 4) == 0;
}

}  // namespace

BootSetup load_kernel(GuestMemory& memory, const KernelConfig& config) {
  const std::vector<uint8_t> file = read_file(config.path, "kernel", kernel_file_limit(memory));

  if (is_linux_bzimage(file)) {
    throw UsageError(fmt::format("{}: Linux boot protocol (bzImage) not supported yet; boot a vmlinux ELF with PVH",
                                 config.path));
  }
  if (const auto header = find_multiboot_header(file)) {
    log::debug("{}: multiboot header at offset {:#x}, flags {:#x}", config.path, header->offset,
               header->header.flags);
    return load_multiboot(memory, file, *header, config);
  }
  if (ElfFile::has_elf_magic(file)) {
    const ElfFile elf(config.path, file);
    if (const auto entry = pvh_entry_point(elf)) {
      log::debug("{}: PVH entry point {:#x}", config.path, *entry);
      return load_pvh(memory, elf, *entry, config);
    }
  }
  throw UsageError(fmt::format(
      "{}: not a PVH ELF (no XEN_ELFNOTE_PHYS32_ENTRY note) and no multiboot header", config.path));
}

}  // namespace iovmm::boot
