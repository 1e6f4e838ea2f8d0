/* disk-bench command line (-append): space-separated key=value words, all optional; unknown words
 * are ignored so a shared command line (virtio_mmio.device=...) passes through.
 *   transport=auto|mmio|pci|pci-legacy  completion=poll|irq  bs=4096,65536  qd=1,32
 *   requests=N (per row, default 2000)  seconds=S (instead: each row runs S seconds of TSC)
 *   pattern=on|off  pattern_start=SECTOR  pattern_sectors=N  seed=N  verify_only=on
 *   bench=on|off  flush_and_wait=on  queue_size=N (default 256)  event_idx=on|off (default off)
 *   mmio_trigger=edge|level (how the virtio-mmio GSI is programmed; default edge, see irq.h)
 *   tsc_khz=N (TSC rate for seconds= and timeouts; default: PM timer calibration, else 2596138) */
#ifndef DISK_BENCH_OPTIONS_H
#define DISK_BENCH_OPTIONS_H

#include <stdint.h>
#include "virtio_blk.h"

#define OPT_LIST_MAX 8

struct options {
    enum vblk_transport transport;
    int use_irq;
    uint32_t bs[OPT_LIST_MAX];
    int n_bs;
    uint32_t qd[OPT_LIST_MAX];
    int n_qd;
    uint64_t requests;
    uint64_t seconds;
    int pattern;
    uint64_t pattern_start;
    uint64_t pattern_sectors;
    uint64_t seed;
    int verify_only;
    int bench;
    int flush_and_wait;
    uint32_t queue_size;
    int event_idx;
    uint64_t tsc_khz;
    int mmio_level;
};

/* Returns 0, or -1 after printing "disk: FAIL bad-option ..." for a malformed known option. */
int options_parse(const char *cmdline, struct options *o);

#endif
