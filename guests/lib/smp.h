/* Application-processor bring-up through the xAPIC (MMIO at 0xFEE00000), following the
 * MP specification 1.4 (appendix B.4): INIT, 10 ms, STARTUP, 200 us, STARTUP.
 * Each AP runs a tiny real-mode -> 32-bit trampoline copied to SMP_TRAMPOLINE_ADDR, marks its
 * APIC ID in smp_ap_seen[], does `lock incl smp_ap_count`, and parks in cli;hlt forever. The
 * trampoline is kept to a dozen instructions because APs run it in KVM's emulator here. */
#ifndef GUEST_SMP_H
#define GUEST_SMP_H

#include <stdint.h>
#include "acpi.h"

#define LAPIC_BASE 0xFEE00000u
#define SMP_TRAMPOLINE_ADDR 0x8000u /* 4 KiB page below 1 MiB: SIPI vector 0x08 */

struct smp_result {
    int cpus;              /* enabled CPUs in the MADT */
    int started;           /* BSP + APs that checked in */
    int n_ids;
    uint8_t apic_ids[ACPI_MAX_CPUS]; /* every running CPU, ascending */
};

uint32_t lapic_read(uint32_t reg);
void lapic_write(uint32_t reg, uint32_t v);
uint32_t lapic_id(void); /* APIC ID of the calling CPU */

/* Starts every enabled CPU from the MADT except the caller; waits up to timeout_us (measured
 * with the PM timer, so pmtimer_init must have run) for them to check in. Returns 0 when all
 * started. */
int smp_start_aps(const struct acpi_info *ai, uint32_t timeout_us, struct smp_result *res);

/* Written by the APs (smp_trampoline.S). */
extern volatile uint32_t smp_ap_count;
extern volatile uint8_t smp_ap_seen[256];

#endif
