// Multiboot version 1, as QEMU's -kernel implements it (hw/i386/multiboot.c): a header in the first 8 KiB of the
// file, 4-byte aligned; a 32-bit ELF loaded by its program headers, or any image loaded by the header's address
// fields ("a.out kludge", flag 16); a multiboot_info with memory sizes, command line ("<kernel path> <append>", so
// the first token is the kernel's name), modules, memory map and boot loader name; entry with EAX = 0x2BADB002 and
// EBX = &multiboot_info in 32-bit protected mode, paging off.
// Reference: Multiboot Specification 0.6.96. No UAPI header carries these structures; layouts are pinned below.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "boot/boot_setup.h"
#include "memory/guest_memory.h"

namespace iovmm::boot {

inline constexpr uint32_t kMultibootHeaderMagic = 0x1BADB002;
inline constexpr uint32_t kMultibootBootloaderMagic = 0x2BADB002;
inline constexpr size_t kMultibootSearchLimit = 8192;

// Header flags: bits 0-15 are requirements a loader must understand, bits 16-31 optional features.
inline constexpr uint32_t kMultibootPageAlignModules = 1u << 0;
inline constexpr uint32_t kMultibootMemoryInfo = 1u << 1;
inline constexpr uint32_t kMultibootVideoMode = 1u << 2;
inline constexpr uint32_t kMultibootAddressFields = 1u << 16;

// multiboot_info flags.
inline constexpr uint32_t kMultibootInfoMemory = 1u << 0;
inline constexpr uint32_t kMultibootInfoCmdline = 1u << 2;
inline constexpr uint32_t kMultibootInfoModules = 1u << 3;
inline constexpr uint32_t kMultibootInfoMemoryMap = 1u << 6;
inline constexpr uint32_t kMultibootInfoBootLoaderName = 1u << 9;

struct [[gnu::packed]] MultibootHeader {
  uint32_t magic;
  uint32_t flags;
  uint32_t checksum;
  // Valid when flags has kMultibootAddressFields.
  uint32_t header_addr;
  uint32_t load_addr;
  uint32_t load_end_addr;
  uint32_t bss_end_addr;
  uint32_t entry_addr;
};
static_assert(sizeof(MultibootHeader) == 32);

struct [[gnu::packed]] MultibootInfo {
  uint32_t flags;
  uint32_t mem_lower;  // KiB of RAM from 0
  uint32_t mem_upper;  // KiB of RAM from 1 MiB to the first hole
  uint32_t boot_device;
  uint32_t cmdline;
  uint32_t mods_count;
  uint32_t mods_addr;
  uint32_t syms[4];
  uint32_t mmap_length;
  uint32_t mmap_addr;
  uint32_t drives_length;
  uint32_t drives_addr;
  uint32_t config_table;
  uint32_t boot_loader_name;
  uint32_t apm_table;
  uint32_t vbe_control_info;
  uint32_t vbe_mode_info;
  uint16_t vbe_mode;
  uint16_t vbe_interface_seg;
  uint16_t vbe_interface_off;
  uint16_t vbe_interface_len;
  uint64_t framebuffer_addr;
  uint32_t framebuffer_pitch;
  uint32_t framebuffer_width;
  uint32_t framebuffer_height;
  uint8_t framebuffer_bpp;
  uint8_t framebuffer_type;
  uint8_t color_info[6];
};
static_assert(sizeof(MultibootInfo) == 116);
static_assert(offsetof(MultibootInfo, cmdline) == 16);
static_assert(offsetof(MultibootInfo, mods_addr) == 24);
static_assert(offsetof(MultibootInfo, mmap_length) == 44);
static_assert(offsetof(MultibootInfo, boot_loader_name) == 64);
static_assert(offsetof(MultibootInfo, framebuffer_addr) == 88);

struct [[gnu::packed]] MultibootModule {
  uint32_t mod_start;
  uint32_t mod_end;  // exclusive
  uint32_t string;
  uint32_t reserved;
};
static_assert(sizeof(MultibootModule) == 16);

// A memory map entry. `size` counts the bytes after itself (20); the spec's mmap_addr points at `size`.
struct [[gnu::packed]] MultibootMmapEntry {
  uint32_t size;
  uint64_t base_addr;
  uint64_t length;
  uint32_t type;
};
static_assert(sizeof(MultibootMmapEntry) == 24);
static_assert(offsetof(MultibootMmapEntry, base_addr) == 4);

// The header's file offset and contents, when the first 8 KiB hold a valid one (magic and checksum).
struct MultibootHeaderLocation {
  size_t offset;
  MultibootHeader header;
};
[[nodiscard]] std::optional<MultibootHeaderLocation> find_multiboot_header(std::span<const uint8_t> file);

[[nodiscard]] BootSetup load_multiboot(GuestMemory& memory, std::span<const uint8_t> file,
                                       const MultibootHeaderLocation& location, const KernelConfig& config);

}  // namespace iovmm::boot
