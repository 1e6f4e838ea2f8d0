#include "pmtimer.h"
#include "io.h"

static uint16_t pm_port = 0x608;

void pmtimer_init(uint16_t port) { pm_port = port; }
uint16_t pmtimer_port(void) { return pm_port; }
uint32_t pmtimer_read(void) { return inl(pm_port) & PMTIMER_MASK; }

void pm_delay_us(uint32_t us)
{
    uint64_t need = ((uint64_t)us * PMTIMER_HZ + 999999) / 1000000; /* round up */
    uint64_t elapsed = 0;
    uint32_t last = pmtimer_read();
    while (elapsed < need) {
        uint32_t now = pmtimer_read();
        elapsed += pmtimer_delta(last, now);
        last = now;
    }
}

enum pmtimer_check pmtimer_selftest(int reads)
{
    uint32_t first = pmtimer_read(), prev = first;
    uint64_t total = 0;
    for (int i = 0; i < reads; i++) {
        uint32_t now = pmtimer_read();
        uint32_t d = pmtimer_delta(prev, now);
        if (d > PMTIMER_MASK / 2)
            return PMTIMER_BACKWARDS;
        total += d;
        prev = now;
    }
    return total == 0 ? PMTIMER_STUCK : PMTIMER_OK;
}

uint64_t pmtimer_tsc_per_tick(uint32_t ticks)
{
    /* Start on a tick edge so the measurement does not include a partial tick. */
    uint32_t t0 = pmtimer_read(), t;
    while ((t = pmtimer_read()) == t0)
        ;
    uint64_t c0 = rdtsc();
    uint32_t elapsed = 0;
    uint32_t last = t;
    while (elapsed < ticks) {
        uint32_t now = pmtimer_read();
        elapsed += pmtimer_delta(last, now);
        last = now;
    }
    return (rdtsc() - c0) / elapsed;
}
