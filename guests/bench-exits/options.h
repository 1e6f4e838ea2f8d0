/* The bench guest's command line (PVH cmdline), words separated by spaces:
 *   goal=<cycles>        a kind's loop doubles its iteration count until it takes this long at CPL3
 *                        (default 2^26 cycles, about 25 ms at 2.6 GHz)
 *   cpl0_goal=<cycles>   the same at CPL0 (default goal/8: CPL0 code is emulated on kvm_pvm)
 *   iterations=<n>       instead of doubling, run every loop exactly n times (0 allowed): for counting
 *   modes=cpl3,cpl0      the modes to measure, in this order (default both)
 *   kinds=a,b*,...       the kinds to measure: exact names, or a prefix ending in '*' (default all)
 *   quiet                print no per-kind line (counting runs: the serial output stays the same
 *                        whatever the loops did, so it cancels out between two runs)
 *   markers              write 0xB0 / 0xE0 to port 0x80 just before / after each timed loop, so that a
 *                        tracer of port I/O (perf's kvm:kvm_pio) can tell the kinds apart (use with
 *                        iterations=, or every doubling step is marked) */
#ifndef BENCH_EXITS_OPTIONS_H
#define BENCH_EXITS_OPTIONS_H

#include <stdint.h>

#define OPTION_LIST_MAX 16
#define OPTION_WORD_MAX 48

struct options {
    uint64_t goal;
    uint64_t cpl0_goal;
    int fixed_iterations;  /* iterations= given */
    uint64_t iterations;
    int measure_cpl3, measure_cpl0;
    int cpl0_first;        /* modes=cpl0,cpl3 */
    int n_kind_patterns;   /* 0 = every kind */
    char kind_patterns[OPTION_LIST_MAX][OPTION_WORD_MAX];
    int quiet;
    int markers;
};

/* Returns 0, or -1 after printing "exits: bad option ..." */
int options_parse(const char *cmdline, struct options *out);

/* Whether `kind` is selected by kinds=. */
int options_want_kind(const struct options *o, const char *kind);

#endif
