/* disk-bench.elf: the bare-metal counterpart of `dd if=/dev/vda of=/dev/null bs=4k iflag=direct` for a
 * virtio-blk disk (virtio-mmio or virtio-pci, modern or legacy), polled or interrupt-driven, at queue
 * depth 1 or N. Runs unmodified under iovmm and QEMU. Options: see options.h.
 *
 * Sequence: find the device, GET_ID, write a known pattern with multi-sector writes, flush, read it
 * back and compare (or only verify a pattern the host wrote, or flush and wait to be killed), then one
 * sequential-read row per (block size, queue depth). Output, one line each, integers:
 *   disk: device transport=<t> capacity=<sectors> queue_size=<n> features=0x<hex>
 *   disk: id serial=<string>|unsupported
 *   disk: pattern ok sectors=<n> | disk: pattern FAIL sector=<s> offset=<i> got=0x.. want=0x..
 *   disk: result op=read block_size=<b> queue_depth=<n> completion=<poll|irq> requests=<n> bytes=<n> cycles=<n>
 *   disk: stats block_size=<b> queue_depth=<n> notifies=<n> notifies_suppressed=<n> interrupts=<n>
 *   disk: done
 * then debug_exit(0); on failure `disk: FAIL <reason>` and debug_exit(1). Port 0x80 gets 0xB0 just
 * before and 0xE0 just after each measured loop, so a host can count the exits in between.
 *
 * Everything but irq_init runs at CPL3 (kvm_pvm emulates CPL0 code); big buffers come from ram_alloc,
 * not .bss (which the entry code clears at CPL0). */
#include "acpi.h"
#include "cpu.h"
#include "debug_exit.h"
#include "io.h"
#include "irq.h"
#include "mem.h"
#include "options.h"
#include "pmtimer.h"
#include "printf.h"
#include "pvh.h"
#include "ram.h"
#include "virtio_blk.h"

#define MARKER_PORT 0x80
#define MARKER_BEGIN 0xB0
#define MARKER_END 0xE0
#define DEFAULT_TSC_KHZ 2596138ull
#define TIMEOUT_SECONDS 10
#define PATTERN_CHUNK_SECTORS 128 /* 64 KiB writes and reads for the pattern */
#define CALIBRATION_TICKS 357950  /* 100 ms of PM timer: shorter is noisy on a loaded host */

struct bench {
    struct options opts;
    const struct hvm_start_info *si;
    const char *cmdline;
    struct vblk *blk;
    uint8_t *buffers;    /* max qd * max bs */
    uint8_t *id_buffer;
    uint64_t tsc_hz;
    uint64_t timeout;
    int failed;
};

static struct bench bench;

static void fail(const char *what, const char *detail)
{
    kprintf("disk: FAIL %s%s%s\n", what, detail ? " " : "", detail ? detail : "");
    bench.failed = 1;
}

static uint8_t pattern_byte(uint64_t sector, uint32_t i, uint64_t seed)
{
    return (uint8_t)(sector * 31 + i * 7 + seed);
}

static void fill_pattern(uint8_t *buf, uint64_t sector, uint32_t sectors, uint64_t seed)
{
    for (uint32_t s = 0; s < sectors; s++)
        for (uint32_t i = 0; i < VBLK_SECTOR_SIZE; i++)
            buf[s * VBLK_SECTOR_SIZE + i] = pattern_byte(sector + s, i, seed);
}

static int io_sync(uint32_t type, uint64_t sector, void *buf, uint32_t len, const char *what)
{
    int st = vblk_sync(bench.blk, type, sector, buf, len, bench.timeout);
    if (st == VIRTIO_BLK_S_OK)
        return 0;
    char detail[96];
    if (st < 0)
        ksnprintf(detail, sizeof(detail), "sector=%llu %s", (unsigned long long)sector, bench.blk->error);
    else
        ksnprintf(detail, sizeof(detail), "sector=%llu status=%d", (unsigned long long)sector, st);
    fail(what, detail);
    return -1;
}

static void print_id(void)
{
    memset(bench.id_buffer, 0, VIRTIO_BLK_ID_BYTES);
    int st = vblk_sync(bench.blk, VIRTIO_BLK_T_GET_ID, 0, bench.id_buffer, VIRTIO_BLK_ID_BYTES, bench.timeout);
    if (st == VIRTIO_BLK_S_UNSUPP) {
        kprintf("disk: id serial=unsupported\n");
        return;
    }
    if (st != VIRTIO_BLK_S_OK) {
        fail("get-id", st < 0 ? bench.blk->error : "bad-status");
        return;
    }
    char serial[VIRTIO_BLK_ID_BYTES + 1];
    int n = 0;
    for (; n < VIRTIO_BLK_ID_BYTES && bench.id_buffer[n]; n++) /* NUL-terminated unless all 20 used */
        serial[n] = bench.id_buffer[n] > ' ' && bench.id_buffer[n] < 0x7F ? (char)bench.id_buffer[n] : '_';
    serial[n] = 0;
    kprintf("disk: id serial=%s\n", serial);
}

/* Writes (unless verify_only), flushes, and reads back the pattern. */
static void pattern_check(void)
{
    const struct options *o = &bench.opts;
    struct vblk *b = bench.blk;
    uint64_t end = o->pattern_start + o->pattern_sectors;
    if (o->pattern_sectors == 0 || end > b->capacity || end < o->pattern_start) {
        fail("pattern-outside-disk", 0);
        return;
    }
    uint8_t *buf = bench.buffers;
    if (!o->verify_only) {
        for (uint64_t s = o->pattern_start; s < end;) {
            uint32_t n = end - s > PATTERN_CHUNK_SECTORS ? PATTERN_CHUNK_SECTORS : (uint32_t)(end - s);
            fill_pattern(buf, s, n, o->seed);
            if (io_sync(VIRTIO_BLK_T_OUT, s, buf, n * VBLK_SECTOR_SIZE, "pattern-write"))
                return;
            s += n;
        }
        if (b->features & (1ull << VIRTIO_BLK_F_FLUSH)) {
            if (io_sync(VIRTIO_BLK_T_FLUSH, 0, 0, 0, "flush"))
                return;
        }
        if (o->flush_and_wait) {
            kprintf("disk: flushed\n");
            for (;;)
                cpu_pause(); /* the host kills the VMM now and checks the image */
        }
    }
    for (uint64_t s = o->pattern_start; s < end;) {
        uint32_t n = end - s > PATTERN_CHUNK_SECTORS ? PATTERN_CHUNK_SECTORS : (uint32_t)(end - s);
        memset(buf, 0, n * VBLK_SECTOR_SIZE);
        if (io_sync(VIRTIO_BLK_T_IN, s, buf, n * VBLK_SECTOR_SIZE, "pattern-read"))
            return;
        for (uint32_t k = 0; k < n; k++) {
            for (uint32_t i = 0; i < VBLK_SECTOR_SIZE; i++) {
                uint8_t got = buf[k * VBLK_SECTOR_SIZE + i], want = pattern_byte(s + k, i, o->seed);
                if (got != want) {
                    kprintf("disk: pattern FAIL sector=%llu offset=%u got=0x%02x want=0x%02x\n",
                            (unsigned long long)(s + k), i, got, want);
                    bench.failed = 1;
                    return;
                }
            }
        }
        s += n;
    }
    kprintf("disk: pattern ok sectors=%llu\n", (unsigned long long)o->pattern_sectors);
}

struct row {
    uint32_t bs;
    uint32_t qd;
    uint64_t requests;
    uint64_t cycles;
    uint64_t notifies, suppressed, interrupts;
};

/* Sequential reads from sector 0 in bs steps (wrapping at capacity), qd in flight, each completion
 * refilled at once; one kick per batch of completions. */
static int run_row(struct row *r)
{
    const struct options *o = &bench.opts;
    struct vblk *b = bench.blk;
    uint32_t step = r->bs / VBLK_SECTOR_SIZE;
    uint64_t target = o->seconds ? ~0ull : o->requests;
    uint64_t deadline = o->seconds * bench.tsc_hz;
    uint64_t next = 0, submitted = 0, completed = 0;
    int stop = 0;
    uint64_t notifies0 = b->vq.notifies, suppressed0 = b->vq.notifies_suppressed, irqs0 = b->interrupts;

    outb(MARKER_PORT, MARKER_BEGIN);
    uint64_t t0 = rdtsc();
    for (uint32_t slot = 0; slot < r->qd && submitted < target; slot++) {
        if (vblk_submit(b, (int)slot, VIRTIO_BLK_T_IN, next, bench.buffers + (uint64_t)slot * r->bs, r->bs))
            goto error;
        submitted++;
        next = next + 2 * step > b->capacity ? 0 : next + step;
    }
    vblk_kick(b);
    while (completed < submitted) {
        if (vblk_wait(b, bench.timeout)) {
            b->error = "timeout";
            goto error;
        }
        int slot;
        uint8_t status;
        while (vblk_reap(b, &slot, &status)) {
            if (status != VIRTIO_BLK_S_OK) {
                b->error = "read-status-not-ok";
                goto error;
            }
            completed++;
            if (deadline && !stop && rdtsc() - t0 >= deadline)
                stop = 1;
            if (stop || submitted >= target)
                continue;
            if (vblk_submit(b, slot, VIRTIO_BLK_T_IN, next, bench.buffers + (uint64_t)slot * r->bs, r->bs))
                goto error;
            submitted++;
            next = next + 2 * step > b->capacity ? 0 : next + step;
        }
        vblk_kick(b);
    }
    r->cycles = rdtsc() - t0;
    outb(MARKER_PORT, MARKER_END);
    r->requests = completed;
    r->notifies = b->vq.notifies - notifies0;
    r->suppressed = b->vq.notifies_suppressed - suppressed0;
    r->interrupts = b->interrupts - irqs0;
    return 0;
error:
    outb(MARKER_PORT, MARKER_END);
    fail("bench-read", b->error);
    return -1;
}

static void run_bench(void)
{
    const struct options *o = &bench.opts;
    struct vblk *b = bench.blk;
    for (int i = 0; i < o->n_bs && !bench.failed; i++) {
        for (int j = 0; j < o->n_qd && !bench.failed; j++) {
            struct row r = { .bs = o->bs[i], .qd = o->qd[j] };
            if (r.bs / VBLK_SECTOR_SIZE > b->capacity) {
                fail("block-size-exceeds-disk", 0);
                return;
            }
            uint32_t fit = b->vq.size / (uint32_t)vblk_descriptors_per_request(b, r.bs);
            if (fit == 0) {
                fail("request-does-not-fit-queue", 0);
                return;
            }
            if (r.qd > fit) {
                kprintf("disk: note queue_depth=%u clamped to %u (queue_size=%u)\n", r.qd, fit, b->vq.size);
                r.qd = fit;
            }
            if (run_row(&r))
                return;
            kprintf("disk: result op=read block_size=%u queue_depth=%u completion=%s requests=%llu bytes=%llu "
                    "cycles=%llu\n",
                    r.bs, r.qd, o->use_irq ? "irq" : "poll", (unsigned long long)r.requests,
                    (unsigned long long)(r.requests * r.bs), (unsigned long long)r.cycles);
            kprintf("disk: stats block_size=%u queue_depth=%u notifies=%llu notifies_suppressed=%llu interrupts=%llu\n",
                    r.bs, r.qd, (unsigned long long)r.notifies, (unsigned long long)r.suppressed,
                    (unsigned long long)r.interrupts);
        }
    }
}

/* TSC rate: tsc_khz= wins; for seconds= rows the PM timer calibrates it when ACPI has one. */
static void choose_tsc_rate(void)
{
    const struct options *o = &bench.opts;
    bench.tsc_hz = DEFAULT_TSC_KHZ * 1000;
    const char *source = "default";
    if (o->tsc_khz) {
        bench.tsc_hz = o->tsc_khz * 1000;
        source = "option";
    } else if (o->seconds) {
        struct acpi_info ai;
        if (acpi_init(&ai, bench.si ? bench.si->rsdp_paddr : 0) == 0 && ai.have_fadt && ai.pm_tmr_blk) {
            pmtimer_init((uint16_t)ai.pm_tmr_blk);
            bench.tsc_hz = pmtimer_tsc_per_tick(CALIBRATION_TICKS) * PMTIMER_HZ;
            source = "pmtimer";
        }
    }
    if (o->seconds || o->tsc_khz)
        kprintf("disk: tsc_khz=%llu source=%s\n", (unsigned long long)(bench.tsc_hz / 1000), source);
    bench.timeout = bench.tsc_hz * TIMEOUT_SECONDS;
}

static uint32_t max_of(const uint32_t *v, int n)
{
    uint32_t m = 0;
    for (int i = 0; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

static void cpl3_main(void *unused)
{
    (void)unused;
    const struct options *o = &bench.opts;
    choose_tsc_rate();
    if (ram_init(bench.si) != 0) {
        fail("no-free-ram", 0);
        return;
    }
    uint32_t max_bs = max_of(o->bs, o->n_bs), max_qd = max_of(o->qd, o->n_qd);
    uint64_t buffer_bytes = (uint64_t)max_bs * max_qd;
    if (buffer_bytes < PATTERN_CHUNK_SECTORS * VBLK_SECTOR_SIZE)
        buffer_bytes = PATTERN_CHUNK_SECTORS * VBLK_SECTOR_SIZE;
    bench.blk = ram_alloc(sizeof(struct vblk), 64);
    bench.buffers = ram_alloc(buffer_bytes, 4096);
    bench.id_buffer = ram_alloc(64, 64);
    if (!bench.blk || !bench.buffers || !bench.id_buffer) {
        fail("out-of-ram", 0);
        return;
    }
    struct vblk_options vo = {
        .transport = o->transport,
        .use_irq = o->use_irq,
        .event_idx = o->event_idx,
        .queue_size = (uint16_t)o->queue_size,
        .cmdline = bench.cmdline,
        .mmio_level = o->mmio_level,
    };
    struct vblk *b = bench.blk;
    if (vblk_init(b, &vo) != 0) {
        fail("init", b->error);
        return;
    }
    kprintf("disk: device transport=%s capacity=%llu queue_size=%u features=0x%llx\n", b->dev.transport,
            (unsigned long long)b->capacity, b->vq.size, (unsigned long long)b->features);
    if (b->dev.mmio_base)
        kprintf("disk: note mmio_base=0x%llx gsi=%d\n", (unsigned long long)b->dev.mmio_base, b->dev.mmio_gsi);
    print_id();
    if (!bench.failed && (o->pattern || o->verify_only || o->flush_and_wait))
        pattern_check();
    if (!bench.failed && o->bench)
        run_bench();
    vblk_shutdown(b);
    if (!bench.failed)
        kprintf("disk: done\n");
}

void guest_main(const struct hvm_start_info *si)
{
    bench.si = si;
    bench.cmdline = si && si->cmdline_paddr ? (const char *)(uintptr_t)si->cmdline_paddr : "";
    if (options_parse(bench.cmdline, &bench.opts) != 0)
        debug_exit(DEBUG_EXIT_FAIL);
    if (bench.opts.use_irq) {
        irq_init();
        irq_run_at_cpl3(cpl3_main, 0);
    } else {
        run_at_cpl3(cpl3_main, 0);
    }
    debug_exit(bench.failed ? DEBUG_EXIT_FAIL : DEBUG_EXIT_OK);
}
