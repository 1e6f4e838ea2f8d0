/* ide-bench.elf: the guest side of IDE. Drives the primary master disk behind the PIIX IDE function with
 * lib/ata.c: checks a pattern written and read back with each transfer mode, then reads the disk
 * sequentially in rows of fixed-size requests and reports cycles and the driver's port accesses by kind.
 * Runs unmodified under iovmm and QEMU -M pc. Options: see options.h.
 *
 * Output (one line each; hosts parse these):
 *   ide: device sectors=<n> lba48=<0|1> multiple_max=<n> model=<IDENTIFY model, blanks and non-ASCII as _>
 *   ide: pattern ok mode=<m> sectors=<n>
 *   ide: pattern FAIL mode=<m> sector=<s> offset=<i> got=0x.. want=0x..
 *   ide: result mode=<m> block_size=<bytes> completion=<poll|irq> requests=<n> bytes=<n> cycles=<n>
 *        status_reads=<n> taskfile_writes=<n> data_chunks=<n> bm_accesses=<n>   (totals over the row)
 *   ide: done                        then debug_exit(0)
 *   ide: FAIL <reason>               then debug_exit(1)
 * Each measured row is enclosed by outb(0x80, 0xB0) / outb(0x80, 0xE0), so a host can count the exits
 * between them.
 *
 * Everything after option parsing runs at CPL3 (one run_at_cpl3 excursion): on kvm_pvm CPL0 code is
 * emulated, so only irq_init (lidt) stays at CPL0. With completion=irq, IRQ 14 is routed through the
 * IOAPIC as an edge GSI (ISA polarity and trigger, as the PIIX's legacy mode wires it) and the excursion
 * runs with interrupts enabled. */
#include "ata.h"
#include "cpu.h"
#include "debug_exit.h"
#include "io.h"
#include "irq.h"
#include "mem.h"
#include "options.h"
#include "pattern.h"
#include "printf.h"
#include "pvh.h"

#define MARKER_PORT 0x80
#define MARKER_BEGIN 0xB0
#define MARKER_END 0xE0
#define BM_DEFAULT_BASE 0xC040 /* where SeaBIOS puts it on QEMU pc; only used if BAR4 is unassigned */
#define IRQ_TIMEOUT_CYCLES 10000000000ull
/* Pattern requests: 120 sectors (60 KiB), so that the last DRQ block of READ/WRITE MULTIPLE 16 is a
 * partial one, and from a buffer 2 KiB below a 64 KiB boundary, so that DMA needs two PRD entries. */
#define PATTERN_CHUNK_SECTORS 120
#define PATTERN_BUF_OFFSET (0x20000 - 0x800)
/* Memory after the image: [0, 64 KiB) bench buffer, pattern buffer at PATTERN_BUF_OFFSET (60 KiB),
 * PRD table in its own page at 192 KiB. Physical == virtual (identity map). */
#define SCRATCH_ALIGN 0x10000
#define SCRATCH_PRDT_OFFSET 0x30000
#define SCRATCH_SIZE (SCRATCH_PRDT_OFFSET + 0x1000)
#define E820_RAM 1

extern char __image_end[];

struct irq14 {
    int vector;
    uint64_t seen;
};

struct session {
    const struct options *opts;
    const struct hvm_start_info *si;
    struct ata_channel ch;
    struct irq14 irq;
    uint8_t *bench_buf;
    uint8_t *pattern_buf;
    int exit_code;
};

static int wait_irq14(void *ctx)
{
    struct irq14 *w = ctx;
    return irq_wait(w->vector, &w->seen, IRQ_TIMEOUT_CYCLES);
}

static int fail(struct session *s, const char *what)
{
    const struct ata_channel *ch = &s->ch;
    kprintf("ide: FAIL %s: %s (status=0x%x error=0x%x bm_status=0x%x)\n", what, ch->error ? ch->error : "?",
            ch->last_status, ch->last_error, ch->last_bm_status);
    s->exit_code = DEBUG_EXIT_FAIL;
    return -1;
}

static void set_completion(struct session *s, enum completion c)
{
    if (c == COMPLETION_IRQ) {
        s->irq.seen = irq_count(s->irq.vector);
        ata_set_completion(&s->ch, wait_irq14, &s->irq);
    } else {
        ata_set_completion(&s->ch, 0, 0);
    }
}

/* One pass over the pattern region: write it with `mode`, flush, read it back and compare. */
static int pattern_pass(struct session *s, enum ata_mode mode, uint64_t seed, int report)
{
    const struct options *o = s->opts;
    const char *m = ata_mode_name(mode);
    for (uint64_t done = 0; done < o->pattern_sectors;) {
        uint32_t n = (uint32_t)(o->pattern_sectors - done < PATTERN_CHUNK_SECTORS ? o->pattern_sectors - done
                                                                                 : PATTERN_CHUNK_SECTORS);
        pattern_fill(s->pattern_buf, o->pattern_start + done, n, seed);
        if (ata_write(&s->ch, mode, o->pattern_start + done, n, s->pattern_buf))
            return fail(s, "pattern write");
        done += n;
    }
    if (ata_flush(&s->ch))
        return fail(s, "flush");
    for (uint64_t done = 0; done < o->pattern_sectors;) {
        uint32_t n = (uint32_t)(o->pattern_sectors - done < PATTERN_CHUNK_SECTORS ? o->pattern_sectors - done
                                                                                 : PATTERN_CHUNK_SECTORS);
        memset(s->pattern_buf, 0, (size_t)n * ATA_SECTOR_SIZE);
        if (ata_read(&s->ch, mode, o->pattern_start + done, n, s->pattern_buf))
            return fail(s, "pattern read");
        struct pattern_mismatch mm;
        if (pattern_check(s->pattern_buf, o->pattern_start + done, n, seed, &mm)) {
            kprintf("ide: pattern FAIL mode=%s sector=%llu offset=%u got=0x%02x want=0x%02x\n", m,
                    (unsigned long long)mm.sector, mm.offset, mm.got, mm.want);
            s->exit_code = DEBUG_EXIT_FAIL;
            return -1;
        }
        done += n;
    }
    if (report)
        kprintf("ide: pattern ok mode=%s sectors=%llu\n", m, (unsigned long long)o->pattern_sectors);
    return 0;
}

/* A pass with every byte 128 away from the pattern first, so that a write the device ignored (leaving
 * the previous mode's data) cannot pass; then the pattern itself, which stays on the disk. */
static int pattern_check_mode(struct session *s, enum ata_mode mode)
{
    if (pattern_pass(s, mode, s->opts->seed + 128, 0))
        return -1;
    return pattern_pass(s, mode, s->opts->seed, 1);
}

static int bench_row(struct session *s, enum ata_mode mode, uint32_t bs, enum completion c)
{
    struct ata_channel *ch = &s->ch;
    uint32_t n = bs / ATA_SECTOR_SIZE;
    uint64_t span = ch->id.sectors - ch->id.sectors % n;
    if (span == 0) {
        ch->error = "device smaller than one request";
        return fail(s, "bench");
    }
    struct ata_counters before = ch->count;
    uint64_t lba = 0;
    outb(MARKER_PORT, MARKER_BEGIN);
    uint64_t t0 = rdtsc();
    for (uint64_t r = 0; r < s->opts->requests; r++) {
        if (ata_read(ch, mode, lba, n, s->bench_buf)) {
            outb(MARKER_PORT, MARKER_END);
            return fail(s, "bench read");
        }
        lba += n;
        if (lba >= span)
            lba = 0;
    }
    uint64_t cycles = rdtsc() - t0;
    outb(MARKER_PORT, MARKER_END);
    kprintf("ide: result mode=%s block_size=%u completion=%s requests=%llu bytes=%llu cycles=%llu "
            "status_reads=%llu taskfile_writes=%llu data_chunks=%llu bm_accesses=%llu\n",
            ata_mode_name(mode), bs, c == COMPLETION_IRQ ? "irq" : "poll", (unsigned long long)s->opts->requests,
            (unsigned long long)(s->opts->requests * bs), (unsigned long long)cycles,
            (unsigned long long)(ch->count.status_reads - before.status_reads),
            (unsigned long long)(ch->count.taskfile_writes - before.taskfile_writes),
            (unsigned long long)(ch->count.data_chunks - before.data_chunks),
            (unsigned long long)(ch->count.bm_accesses - before.bm_accesses));
    return 0;
}

static int wants_mode(const struct options *o, enum ata_mode m)
{
    for (int i = 0; i < o->n_modes; i++)
        if (o->modes[i] == m)
            return 1;
    return 0;
}

static int setup_device(struct session *s)
{
    const struct options *o = s->opts;
    struct ata_channel *ch = &s->ch;
    if (ata_reset(ch))
        return fail(s, "reset");
    if (ata_identify(ch))
        return fail(s, "identify");
    ch->lba = o->lba;
    kprintf("ide: device sectors=%llu lba48=%d multiple_max=%u model=%s\n", (unsigned long long)ch->id.sectors,
            ch->id.lba48, ch->id.multiple_max, ch->id.model);
    if (wants_mode(o, ATA_MODE_MULTIPLE)) {
        unsigned m = o->multiple;
        while (m > ch->id.multiple_max)
            m >>= 1;
        if (m == 0) {
            ch->error = "IDENTIFY word 47 reports no READ/WRITE MULTIPLE support";
            return fail(s, "multiple");
        }
        if (ata_set_multiple(ch, m))
            return fail(s, "set multiple mode");
    }
    if (o->pattern && o->pattern_start + o->pattern_sectors > ch->id.sectors) {
        ch->error = "pattern_start + pattern_sectors beyond the device";
        return fail(s, "pattern");
    }
    return 0;
}

static void session(void *arg)
{
    struct session *s = arg;
    const struct options *o = s->opts;
    if (ata_channel_init(&s->ch, (struct ata_prd *)(s->bench_buf + SCRATCH_PRDT_OFFSET), BM_DEFAULT_BASE)) {
        fail(s, "controller");
        return;
    }
    if (setup_device(s))
        return;
    if (o->pattern) {
        set_completion(s, o->completions[0]);
        for (int i = 0; i < o->n_modes; i++)
            if (pattern_check_mode(s, o->modes[i]))
                return;
    }
    if (o->bench) {
        for (int c = 0; c < o->n_completions; c++) {
            set_completion(s, o->completions[c]);
            for (int i = 0; i < o->n_modes; i++)
                for (int b = 0; b < o->n_bs; b++)
                    if (bench_row(s, o->modes[i], o->bs[b], o->completions[c]))
                        return;
        }
    }
    set_completion(s, COMPLETION_POLL);
    kprintf("ide: done\n");
    s->exit_code = DEBUG_EXIT_OK;
}

/* The scratch area must be RAM: checked against the PVH memory map when the loader gave one. */
static int scratch_is_ram(const struct hvm_start_info *si, uintptr_t start, uintptr_t end)
{
    if (!si || si->version < 1 || !si->memmap_paddr || !si->memmap_entries)
        return 1;
    const struct hvm_memmap_table_entry *e = (const void *)(uintptr_t)si->memmap_paddr;
    for (uint32_t i = 0; i < si->memmap_entries; i++)
        if (e[i].type == E820_RAM && e[i].addr <= start && e[i].addr + e[i].size >= end)
            return 1;
    return 0;
}

void guest_main(const struct hvm_start_info *si)
{
    static struct options opts;
    static struct session s;
    const char *cmdline = si && si->cmdline_paddr ? (const char *)(uintptr_t)si->cmdline_paddr : "";
    if (options_parse(cmdline, &opts) != 0)
        debug_exit(DEBUG_EXIT_FAIL);

    uintptr_t scratch = ((uintptr_t)__image_end + SCRATCH_ALIGN - 1) & ~(uintptr_t)(SCRATCH_ALIGN - 1);
    if (!scratch_is_ram(si, scratch, scratch + SCRATCH_SIZE)) {
        kprintf("ide: FAIL no RAM for buffers at 0x%llx\n", (unsigned long long)scratch);
        debug_exit(DEBUG_EXIT_FAIL);
    }
    s.opts = &opts;
    s.si = si;
    s.bench_buf = (uint8_t *)scratch;
    s.pattern_buf = (uint8_t *)(scratch + PATTERN_BUF_OFFSET);
    s.exit_code = DEBUG_EXIT_FAIL;

    if (options_want_irq(&opts)) {
        irq_init();
        s.irq.vector = irq_route_gsi(ATA_PRIMARY_IRQ, 0, 0);
        if (s.irq.vector < 0) {
            kprintf("ide: FAIL cannot route IRQ %d through the IOAPIC\n", ATA_PRIMARY_IRQ);
            debug_exit(DEBUG_EXIT_FAIL);
        }
        irq_run_at_cpl3(session, &s);
    } else {
        run_at_cpl3(session, &s);
    }
    debug_exit((uint8_t)s.exit_code);
}
