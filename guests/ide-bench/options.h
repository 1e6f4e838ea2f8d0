/* ide-bench's command line (PVH cmdline), words separated by spaces, all optional:
 *   mode=pio,multiple,dma      modes to check and measure, in this order (default all three)
 *   completion=poll|irq        polled Status / bus master, or IRQ 14 through the IOAPIC (default poll;
 *                              a list such as poll,irq measures both)
 *   bs=4096,65536              request sizes of the measured rows in bytes: multiples of 512, <= 65536
 *   requests=N                 requests per row (default 1000)
 *   pattern=on|off             write, flush, read back and compare the pattern with each mode (default on)
 *   pattern_start=SECTOR       first pattern sector (default 0)
 *   pattern_sectors=N          pattern length in sectors (default 512)
 *   seed=N                     byte i of sector s is (uint8_t)(s * 31 + i * 7 + seed) (default 90)
 *   verify_only=on             the pattern check alone (same as bench=off)
 *   bench=on|off               the measured rows (default on)
 *   multiple=N                 SET MULTIPLE MODE count (default 16, capped by IDENTIFY word 47)
 *   lba=auto|28|48             command set: LBA28 unless a request needs LBA48 (default), or forced
 * Unknown words are ignored, so that a shared command line does not break the bench. */
#ifndef IDE_BENCH_OPTIONS_H
#define IDE_BENCH_OPTIONS_H

#include <stdint.h>
#include "ata.h"

#define OPT_MAX_MODES 3
#define OPT_MAX_BS 8
#define OPT_MAX_COMPLETIONS 2
#define OPT_BS_MAX 65536u

enum completion { COMPLETION_POLL, COMPLETION_IRQ };

struct options {
    enum ata_mode modes[OPT_MAX_MODES];
    int n_modes;
    enum completion completions[OPT_MAX_COMPLETIONS];
    int n_completions;
    uint32_t bs[OPT_MAX_BS];
    int n_bs;
    uint64_t requests;
    int pattern;
    uint64_t pattern_start;
    uint64_t pattern_sectors;
    uint64_t seed;
    int bench;
    unsigned multiple;
    enum ata_lba lba;
};

/* Returns 0, or -1 after printing "ide: FAIL bad option ...". */
int options_parse(const char *cmdline, struct options *out);

int options_want_irq(const struct options *o);

#endif
