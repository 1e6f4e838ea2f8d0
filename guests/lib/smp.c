#include "smp.h"
#include "io.h"
#include "mem.h"
#include "pmtimer.h"

#define LAPIC_ID 0x20
#define LAPIC_SVR 0xF0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define ICR_DELIVERY_PENDING (1u << 12)
#define ICR_INIT 0x00004500u    /* delivery mode INIT, level assert, edge */
#define ICR_STARTUP 0x00004600u /* delivery mode STARTUP; low byte = vector (page number) */

volatile uint32_t smp_ap_count;
volatile uint8_t smp_ap_seen[256];

extern const uint8_t smp_trampoline_start[], smp_trampoline_end[];

uint32_t lapic_read(uint32_t reg) { return mmio_read32(LAPIC_BASE + reg); }
void lapic_write(uint32_t reg, uint32_t v) { mmio_write32(LAPIC_BASE + reg, v); }
uint32_t lapic_id(void) { return lapic_read(LAPIC_ID) >> 24; }

static void send_ipi(uint8_t apic_id, uint32_t icr_lo)
{
    lapic_write(LAPIC_ICR_HI, (uint32_t)apic_id << 24);
    lapic_write(LAPIC_ICR_LO, icr_lo); /* the write to the low half sends it */
    for (int i = 0; i < 1000 && (lapic_read(LAPIC_ICR_LO) & ICR_DELIVERY_PENDING); i++)
        cpu_pause();
}

int smp_start_aps(const struct acpi_info *ai, uint32_t timeout_us, struct smp_result *res)
{
    memset(res, 0, sizeof(*res));
    res->cpus = ai->cpu_count;
    uint32_t bsp = lapic_id();

    /* Software-enable the local APIC (spurious vector 0xFF) so IPIs are certainly sent. */
    lapic_write(LAPIC_SVR, lapic_read(LAPIC_SVR) | 0x1FF);
    memcpy((void *)(uintptr_t)SMP_TRAMPOLINE_ADDR, smp_trampoline_start,
           (size_t)(smp_trampoline_end - smp_trampoline_start));

    uint32_t expected = 0;
    int n = ai->cpu_count < ACPI_MAX_CPUS ? ai->cpu_count : ACPI_MAX_CPUS;
    for (int i = 0; i < n; i++) {
        uint8_t id = ai->apic_ids[i];
        if (id == bsp)
            continue;
        expected++;
        send_ipi(id, ICR_INIT);
        pm_delay_us(10000);
        send_ipi(id, ICR_STARTUP | (SMP_TRAMPOLINE_ADDR >> 12));
        pm_delay_us(200);
        if (!smp_ap_seen[id]) /* a second STARTUP only if the first did not take */
            send_ipi(id, ICR_STARTUP | (SMP_TRAMPOLINE_ADDR >> 12));
    }

    /* Bounded wait, in 1 ms steps. */
    for (uint32_t waited = 0; smp_ap_count < expected && waited < timeout_us; waited += 1000)
        pm_delay_us(1000);

    res->started = 1 + (int)smp_ap_count;
    for (int id = 0; id < 256; id++)
        if ((id == (int)bsp || smp_ap_seen[id]) && res->n_ids < ACPI_MAX_CPUS)
            res->apic_ids[res->n_ids++] = (uint8_t)id;
    return smp_ap_count == expected ? 0 : -1;
}
