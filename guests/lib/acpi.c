#include "acpi.h"
#include "mem.h"

struct __attribute__((packed)) rsdp {
    char signature[8]; /* "RSD PTR " */
    uint8_t checksum;  /* over the first 20 bytes */
    char oem_id[6];
    uint8_t revision;  /* 0: ACPI 1.0 (RSDT only); 2+: XSDT fields valid */
    uint32_t rsdt_addr;
    uint32_t length;
    uint64_t xsdt_addr;
    uint8_t ext_checksum; /* over all `length` bytes */
    uint8_t reserved[3];
};
_Static_assert(sizeof(struct rsdp) == 36, "rsdp size");

struct __attribute__((packed)) sdt_header {
    char signature[4];
    uint32_t length;
    uint8_t revision;
    uint8_t checksum;
    char oem_id[6];
    char oem_table_id[8];
    uint32_t oem_revision;
    uint32_t creator_id;
    uint32_t creator_revision;
};
_Static_assert(sizeof(struct sdt_header) == 36, "sdt header size");

/* FADT field offsets (ACPI 6.5 table 5.9). */
#define FADT_DSDT 40
#define FADT_PM1A_CNT_BLK 64
#define FADT_PM_TMR_BLK 76
#define FADT_FLAGS 112
#define FADT_X_PM_TMR_BLK 208 /* Generic Address Structure; address at +4 */
#define FADT_FLAG_TMR_VAL_EXT (1u << 8)

uint8_t acpi_checksum(const void *p, uint32_t len)
{
    const uint8_t *b = p;
    uint8_t sum = 0;
    while (len--)
        sum += *b++;
    return sum;
}

/* Table fields may be unaligned (XSDT entries are 8 bytes at offset 36). */
static uint32_t rd32(const void *p, uint32_t off)
{
    uint32_t v;
    memcpy(&v, (const uint8_t *)p + off, 4);
    return v;
}
static uint64_t rd64(const void *p, uint32_t off)
{
    uint64_t v;
    memcpy(&v, (const uint8_t *)p + off, 8);
    return v;
}

static int rsdp_valid(const struct rsdp *r)
{
    if (memcmp(r->signature, "RSD PTR ", 8) != 0 || acpi_checksum(r, 20) != 0)
        return 0;
    if (r->revision >= 2 && (r->length < sizeof(*r) || acpi_checksum(r, r->length) != 0))
        return 0;
    return 1;
}

static const struct rsdp *find_rsdp(uint64_t hint)
{
    if (hint && rsdp_valid((const struct rsdp *)(uintptr_t)hint))
        return (const struct rsdp *)(uintptr_t)hint;
    /* BIOS read-only area, 16-byte aligned (the EBDA is not searched: QEMU/SeaBIOS and iovmm
     * both place it here). Compare 8 bytes as one load to keep the emulated loop short. */
    uint64_t sig;
    memcpy(&sig, "RSD PTR ", 8);
    for (uintptr_t a = 0xE0000; a < 0x100000; a += 16)
        if (*(const volatile uint64_t *)a == sig && rsdp_valid((const struct rsdp *)a))
            return (const struct rsdp *)a;
    return 0;
}

static const struct sdt_header *table_at(uint64_t addr)
{
    const struct sdt_header *h = (const struct sdt_header *)(uintptr_t)addr;
    if (!addr || addr >= 0x100000000ull || h->length < sizeof(*h) || acpi_checksum(h, h->length) != 0)
        return 0;
    return h;
}

static uint64_t root_entry(const struct acpi_info *ai, int i)
{
    const void *root = (const void *)(uintptr_t)ai->root_addr;
    return ai->have_xsdt ? rd64(root, 36 + 8 * i) : rd32(root, 36 + 4 * i);
}

const void *acpi_find_table(const struct acpi_info *ai, const char sig[4])
{
    for (int i = 0; i < ai->table_count; i++) {
        const struct sdt_header *h = table_at(root_entry(ai, i));
        if (h && memcmp(h->signature, sig, 4) == 0)
            return h;
    }
    return 0;
}

static void parse_fadt(struct acpi_info *ai, const struct sdt_header *f)
{
    ai->have_fadt = 1;
    ai->pm1a_cnt_blk = rd32(f, FADT_PM1A_CNT_BLK);
    ai->pm_tmr_blk = rd32(f, FADT_PM_TMR_BLK);
    if (ai->pm_tmr_blk == 0 && f->length >= FADT_X_PM_TMR_BLK + 12 &&
        *((const uint8_t *)f + FADT_X_PM_TMR_BLK) == 1 /* system I/O space */)
        ai->pm_tmr_blk = (uint32_t)rd64(f, FADT_X_PM_TMR_BLK + 4);
    ai->pm_tmr_32bit = f->length >= FADT_FLAGS + 4 && (rd32(f, FADT_FLAGS) & FADT_FLAG_TMR_VAL_EXT);
    ai->dsdt_addr = rd32(f, FADT_DSDT);
}

static void parse_madt(struct acpi_info *ai, const struct sdt_header *m)
{
    const uint8_t *p = (const uint8_t *)m;
    ai->have_madt = 1;
    ai->lapic_addr = rd32(m, 36);
    for (uint32_t off = 44; off + 2 <= m->length;) {
        uint8_t type = p[off], len = p[off + 1];
        if (len < 2 || off + len > m->length)
            break; /* malformed entry: stop rather than loop */
        if (type == 0 && len >= 8 && (rd32(p, off + 4) & 1)) { /* Processor Local APIC, enabled */
            if (ai->cpu_count < ACPI_MAX_CPUS)
                ai->apic_ids[ai->cpu_count] = p[off + 3];
            ai->cpu_count++;
        } else if (type == 1 && len >= 12) { /* I/O APIC */
            if (ai->ioapic_count++ == 0)
                ai->ioapic_addr = rd32(p, off + 4);
        }
        off += len;
    }
}

int acpi_init(struct acpi_info *ai, uint64_t rsdp_hint)
{
    memset(ai, 0, sizeof(*ai));
    const struct rsdp *r = find_rsdp(rsdp_hint);
    if (!r)
        return -1;
    ai->rsdp_addr = (uintptr_t)r;
    ai->rsdp_revision = r->revision;

    const struct sdt_header *root = 0;
    if (r->revision >= 2 && r->xsdt_addr) {
        root = table_at(r->xsdt_addr);
        ai->have_xsdt = root && memcmp(root->signature, "XSDT", 4) == 0;
    }
    if (!ai->have_xsdt) {
        root = table_at(r->rsdt_addr);
        if (!root || memcmp(root->signature, "RSDT", 4) != 0)
            return -1;
    }
    ai->root_addr = (uintptr_t)root;
    ai->table_count = (int)((root->length - sizeof(*root)) / (ai->have_xsdt ? 8 : 4));

    for (int i = 0; i < ai->table_count; i++) {
        uint64_t addr = root_entry(ai, i);
        const struct sdt_header *h = table_at(addr);
        if (!h) {
            ai->bad_checksums++;
            continue;
        }
        if (memcmp(h->signature, "FACP", 4) == 0 && !ai->have_fadt)
            parse_fadt(ai, h);
        else if (memcmp(h->signature, "APIC", 4) == 0 && !ai->have_madt)
            parse_madt(ai, h);
    }
    return 0;
}
