/* ACPI PM timer: a free-running 3.579545 MHz counter at the FADT's PM_TMR_BLK port
 * (0x608 on QEMU pc and iovmm). Only the low 24 bits are used, so 24- and 32-bit timers are
 * handled alike; every difference is taken modulo 2^24, which makes wrap-around harmless. */
#ifndef GUEST_PMTIMER_H
#define GUEST_PMTIMER_H

#include <stdint.h>

#define PMTIMER_HZ 3579545u
#define PMTIMER_MASK 0xFFFFFFu

void pmtimer_init(uint16_t port); /* call once with acpi_info.pm_tmr_blk */
uint16_t pmtimer_port(void);
uint32_t pmtimer_read(void);      /* 24-bit counter value */
static inline uint32_t pmtimer_delta(uint32_t from, uint32_t to) { return (to - from) & PMTIMER_MASK; }

/* Busy-waits at least us microseconds (any length: elapsed ticks are accumulated per read). */
void pm_delay_us(uint32_t us);

enum pmtimer_check { PMTIMER_OK = 0, PMTIMER_STUCK, PMTIMER_BACKWARDS };
/* Reads the timer `reads` times: it must advance, and no step may go backwards (a step of more
 * than half the range, modulo 2^24, counts as backwards). */
enum pmtimer_check pmtimer_selftest(int reads);

/* TSC cycles per PM timer tick, measured over about `ticks` ticks (informational). */
uint64_t pmtimer_tsc_per_tick(uint32_t ticks);

#endif
