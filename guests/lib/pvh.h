/* PVH boot ABI (Xen's "HVM direct boot", used by QEMU and Firecracker for -kernel ELF files).
 * The loader finds the 32-bit entry in an ELF note (name "Xen", type XEN_ELFNOTE_PHYS32_ENTRY)
 * and starts it in 32-bit protected mode, paging off, flat segments, EBX = physical address
 * of struct hvm_start_info. Layout from Xen's public/arch-x86/hvm/start_info.h (version 1). */
#ifndef GUEST_PVH_H
#define GUEST_PVH_H

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578

#ifndef __ASSEMBLER__
#include <stdint.h>
#include <stddef.h>

struct hvm_start_info {
    uint32_t magic;          /* HVM_START_MAGIC */
    uint32_t version;        /* 0: fields up to rsdp_paddr; 1: adds the memory map */
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;  /* struct hvm_modlist_entry[nr_modules] */
    uint64_t cmdline_paddr;  /* NUL-terminated, 0 if none */
    uint64_t rsdp_paddr;     /* ACPI RSDP, 0 if the loader did not say */
    uint64_t memmap_paddr;   /* version >= 1: struct hvm_memmap_table_entry[memmap_entries] */
    uint32_t memmap_entries;
    uint32_t reserved;
};
_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info size");
_Static_assert(offsetof(struct hvm_start_info, nr_modules) == 12, "nr_modules");
_Static_assert(offsetof(struct hvm_start_info, modlist_paddr) == 16, "modlist_paddr");
_Static_assert(offsetof(struct hvm_start_info, cmdline_paddr) == 24, "cmdline_paddr");
_Static_assert(offsetof(struct hvm_start_info, rsdp_paddr) == 32, "rsdp_paddr");
_Static_assert(offsetof(struct hvm_start_info, memmap_paddr) == 40, "memmap_paddr");
_Static_assert(offsetof(struct hvm_start_info, memmap_entries) == 48, "memmap_entries");

struct hvm_memmap_table_entry {
    uint64_t addr;
    uint64_t size;
    uint32_t type; /* E820 types: 1 RAM, 2 reserved, 3 ACPI, 4 NVS, 5 unusable */
    uint32_t reserved;
};
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "memmap entry size");
_Static_assert(offsetof(struct hvm_memmap_table_entry, type) == 16, "memmap type");

struct hvm_modlist_entry {
    uint64_t paddr;
    uint64_t size;
    uint64_t cmdline_paddr;
    uint64_t reserved;
};
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "modlist entry size");

/* Provided by the guest program: called in 64-bit mode, CPL0, after cpu_init() (GDT, TSS and
 * IDT installed) and serial_init(). Returning exits with debug_exit(0). */
void guest_main(const struct hvm_start_info *si);
#endif

#endif
