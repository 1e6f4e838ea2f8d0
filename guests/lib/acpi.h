/* ACPI table discovery: RSDP -> XSDT (or RSDT) -> FADT and MADT, with every checksum
 * verified. Spec: ACPI 6.5, sections 5.2.5 (RSDP), 5.2.7/5.2.8 (RSDT/XSDT), 5.2.9 (FADT),
 * 5.2.12 (MADT). Only the fields the guests use are decoded. */
#ifndef GUEST_ACPI_H
#define GUEST_ACPI_H

#include <stdint.h>

#define ACPI_MAX_CPUS 64

struct acpi_info {
    uint64_t rsdp_addr;
    uint8_t rsdp_revision;
    int have_xsdt;           /* 1: tables were walked through the XSDT; 0: through the RSDT */
    uint64_t root_addr;      /* XSDT or RSDT address */
    int table_count;         /* entries in the root table */
    int bad_checksums;       /* tables listed in the root whose checksum failed (skipped) */

    int have_fadt;
    uint32_t pm_tmr_blk;     /* PM timer I/O port (0x608 on QEMU pc and iovmm) */
    int pm_tmr_32bit;        /* FADT flag TMR_VAL_EXT */
    uint32_t pm1a_cnt_blk;
    uint64_t dsdt_addr;

    int have_madt;
    uint32_t lapic_addr;
    int cpu_count;           /* enabled Local APIC entries */
    uint8_t apic_ids[ACPI_MAX_CPUS];
    int ioapic_count;
    uint32_t ioapic_addr;    /* first IOAPIC */
};

/* rsdp_hint: a physical address from the loader (hvm_start_info.rsdp_paddr), or 0 to scan
 * 0xE0000-0xFFFFF. Returns 0 when the RSDP and root table were found and valid (FADT/MADT
 * presence is reported in the flags), -1 otherwise. */
int acpi_init(struct acpi_info *ai, uint64_t rsdp_hint);

/* Finds a table by signature (e.g. "HPET") in the root table walked by acpi_init. */
const void *acpi_find_table(const struct acpi_info *ai, const char sig[4]);

/* 8-bit sum of len bytes; a valid ACPI structure sums to 0. */
uint8_t acpi_checksum(const void *p, uint32_t len);

#endif
