/* The disk pattern shared with the virtio disk guest and the host-side checks:
 * byte i (0..511) of sector s is (uint8_t)(s * 31 + i * 7 + seed). */
#ifndef IDE_BENCH_PATTERN_H
#define IDE_BENCH_PATTERN_H

#include <stdint.h>

struct pattern_mismatch {
    uint64_t sector;
    unsigned offset;
    uint8_t got, want;
};

static inline uint8_t pattern_byte(uint64_t sector, unsigned i, uint64_t seed)
{
    return (uint8_t)(sector * 31 + i * 7 + seed);
}

void pattern_fill(uint8_t *buf, uint64_t first_sector, uint32_t sectors, uint64_t seed);
/* Returns 0 when buf holds the pattern, else 1 with the first difference in *m. */
int pattern_check(const uint8_t *buf, uint64_t first_sector, uint32_t sectors, uint64_t seed,
                  struct pattern_mismatch *m);

#endif
