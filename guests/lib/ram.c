#include "ram.h"

#define E820_RAM 1
#define FALLBACK_RAM_END (16ull << 20)
#define IDENTITY_MAP_END (4ull << 30) /* what pvh_entry.S maps */

extern char __image_end[];

static uint64_t next, limit;

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

/* Lowers limit so that [next, limit) does not reach the loader's object at [addr, addr + size). */
static void avoid(uint64_t addr, uint64_t size)
{
    if (!addr)
        return;
    if (addr + size > next && addr < limit)
        limit = addr > next ? addr : next;
}

int ram_init(const struct hvm_start_info *si)
{
    next = align_up((uint64_t)(uintptr_t)__image_end, 4096);
    limit = 0;
    if (si && si->version >= 1 && si->memmap_paddr) {
        const struct hvm_memmap_table_entry *m = (const void *)(uintptr_t)si->memmap_paddr;
        for (uint32_t i = 0; i < si->memmap_entries; i++) {
            if (m[i].type == E820_RAM && m[i].addr <= next && m[i].addr + m[i].size > next)
                limit = m[i].addr + m[i].size;
        }
    } else {
        limit = FALLBACK_RAM_END;
    }
    if (limit > IDENTITY_MAP_END)
        limit = IDENTITY_MAP_END;
    if (limit <= next)
        return -1;
    if (si) {
        avoid((uint64_t)(uintptr_t)si, sizeof(*si));
        avoid(si->cmdline_paddr, 4096);
        avoid(si->memmap_paddr, (uint64_t)si->memmap_entries * sizeof(struct hvm_memmap_table_entry));
        avoid(si->modlist_paddr, (uint64_t)si->nr_modules * sizeof(struct hvm_modlist_entry));
        const struct hvm_modlist_entry *mod = (const void *)(uintptr_t)si->modlist_paddr;
        for (uint32_t i = 0; mod && i < si->nr_modules; i++)
            avoid(mod[i].paddr, mod[i].size);
    }
    return limit > next ? 0 : -1;
}

void *ram_alloc(size_t size, size_t align)
{
    uint64_t start = align_up(next, align ? align : 1);
    if (start + size > limit || start + size < start)
        return 0;
    next = start + size;
    return (void *)(uintptr_t)start;
}

uint64_t ram_available(void) { return limit > next ? limit - next : 0; }
