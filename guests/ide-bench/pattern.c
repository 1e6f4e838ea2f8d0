#include "pattern.h"

#include "ata.h"

void pattern_fill(uint8_t *buf, uint64_t first_sector, uint32_t sectors, uint64_t seed)
{
    for (uint32_t s = 0; s < sectors; s++)
        for (unsigned i = 0; i < ATA_SECTOR_SIZE; i++)
            *buf++ = pattern_byte(first_sector + s, i, seed);
}

int pattern_check(const uint8_t *buf, uint64_t first_sector, uint32_t sectors, uint64_t seed,
                  struct pattern_mismatch *m)
{
    for (uint32_t s = 0; s < sectors; s++) {
        for (unsigned i = 0; i < ATA_SECTOR_SIZE; i++) {
            uint8_t want = pattern_byte(first_sector + s, i, seed);
            uint8_t got = *buf++;
            if (got != want) {
                m->sector = first_sector + s;
                m->offset = i;
                m->got = got;
                m->want = want;
                return 1;
            }
        }
    }
    return 0;
}
