/* Multiboot v1 (GNU Multiboot Specification 0.6.96): header magic/flags and the info structure
 * the loader hands over in EBX. Only what multiboot-demo reads is decoded. */
#ifndef GUEST_MULTIBOOT_H
#define GUEST_MULTIBOOT_H

#define MULTIBOOT_HEADER_MAGIC 0x1BADB002
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002
/* bit 0: align modules on 4 KiB; bit 1: we want mem_* and the memory map */
#define MULTIBOOT_HEADER_FLAGS 0x00000003

#define MB_INFO_MEMORY (1u << 0)
#define MB_INFO_CMDLINE (1u << 2)
#define MB_INFO_MODS (1u << 3)
#define MB_INFO_MMAP (1u << 6)

#ifndef __ASSEMBLER__
#include <stdint.h>
#include <stddef.h>

struct multiboot_info {
    uint32_t flags;
    uint32_t mem_lower, mem_upper; /* KiB below 1 MiB / above 1 MiB (flags bit 0) */
    uint32_t boot_device;
    uint32_t cmdline;              /* flags bit 2 */
    uint32_t mods_count, mods_addr; /* flags bit 3 */
    uint32_t syms[4];
    uint32_t mmap_length, mmap_addr; /* flags bit 6 */
    uint32_t drives_length, drives_addr;
    uint32_t config_table;
    uint32_t boot_loader_name;
    uint32_t apm_table;
};
_Static_assert(offsetof(struct multiboot_info, mods_count) == 20, "mods_count");
_Static_assert(offsetof(struct multiboot_info, mmap_length) == 44, "mmap_length");
_Static_assert(offsetof(struct multiboot_info, boot_loader_name) == 64, "boot_loader_name");

/* `size` counts the bytes after itself, so the next entry is at (char *)e + e->size + 4. */
struct __attribute__((packed)) multiboot_mmap_entry {
    uint32_t size;
    uint64_t addr;
    uint64_t len;
    uint32_t type;
};
_Static_assert(sizeof(struct multiboot_mmap_entry) == 24, "mmap entry");

struct multiboot_module {
    uint32_t mod_start, mod_end; /* [start, end) */
    uint32_t string;             /* the module's command line */
    uint32_t reserved;
};
_Static_assert(sizeof(struct multiboot_module) == 16, "module");
#endif

#endif
