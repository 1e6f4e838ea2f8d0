/* bench-exits.elf: what one guest access costs, kind by kind, the way kvm-unit-tests' x86/vmexit.c
 * measures it: a loop's iteration count doubles (1, 2, 4, ...) until the loop takes at least a cycle
 * goal, then the last run's cycles / iterations is the cost per access (the empty loop's own cost
 * included: the `empty` kind shows it). Runs unmodified under iovmm and QEMU (-M pc, pci-testdev).
 *
 * Output, one line per kind and mode (integers; extra fields may follow at the end):
 *   exits: kind=<kind> mode=<cpl3|cpl0> iterations=<n> cycles=<total> cycles_per_access=<total/n>
 *   exits: kind=<kind> mode=<mode> unavailable reason=<why>
 * then "exits: done" and debug_exit(0). Options: see options.h.
 *
 * Why CPL3 first: on kvm_pvm only CPL3 code runs natively; at CPL0 every instruction of the loop
 * itself is emulated (~1 us), so the CPL0 column mostly measures the emulator, with a smaller goal. */
#include "cpu.h"
#include "debug_exit.h"
#include "io.h"
#include "loops.h"
#include "mem.h"
#include "options.h"
#include "printf.h"
#include "pvh.h"
#include "testdev.h"

#define PIC_MASTER_DATA 0x21     /* the in-kernel PIC's IMR: an exit KVM handles itself */
#define LAPIC_VERSION 0xFEE00030 /* in-kernel xAPIC, MMIO */
#define VGA_WINDOW 0xA0000       /* legacy VGA memory: coalesced MMIO under QEMU -vga std */
#define VGA_PATTERN 0x0F0F0F0Fu
#define MARKER_PORT 0x80
#define MARKER_BEGIN 0xB0
#define MARKER_END 0xE0
#define MAX_RAMP_ITERATIONS (1ull << 34) /* a guard against a stuck TSC, far above any real goal */
#define MAX_KINDS 48
#define KIND_NAME_MAX 64

enum extra { EXTRA_NONE, EXTRA_TESTDEV_COUNT, EXTRA_HYPERCALL };

struct kind {
    char name[KIND_NAME_MAX];
    const char *unavailable; /* why it cannot be measured here, or 0 */
    access_loop loop;
    uintptr_t addr;
    uint32_t value;
    enum extra extra;
    const struct testdev_bar *bar;   /* the test to select first, and whose count to report */
    const struct testdev_test *test;
};

struct measurement {
    const struct kind *kind;
    const struct options *opts;
    uint64_t goal;
    uint64_t iterations; /* of the last (reported) run */
    uint64_t cycles;
    uint64_t count;      /* the testdev's count after the last run */
    uint64_t hypercall_status;
};

static struct testdev testdev;
static struct kind kinds[MAX_KINDS];
static int n_kinds;
static int hypercall_present;

static struct kind *add_kind(const char *name)
{
    if (n_kinds == MAX_KINDS)
        return 0;
    struct kind *k = &kinds[n_kinds++];
    memset(k, 0, sizeof(*k));
    ksnprintf(k->name, sizeof(k->name), "%s", name);
    return k;
}

static access_loop testdev_write_loop(const struct testdev_bar *bar, unsigned width)
{
    if (bar->is_io)
        return width == 1 ? loop_pio_write8 : width == 2 ? loop_pio_write16 : loop_pio_write32;
    return width == 1 ? loop_mmio_write8 : width == 2 ? loop_mmio_write16 : loop_mmio_write32;
}

static void add_testdev_kinds(const struct testdev_bar *bar, const char *space)
{
    char name[KIND_NAME_MAX];
    for (int i = 0; i < bar->n_tests; i++) {
        const struct testdev_test *t = &bar->tests[i];
        ksnprintf(name, sizeof(name), "testdev_%s_%s", space, t->short_name);
        struct kind *k = add_kind(name);
        if (!k)
            return;
        k->loop = testdev_write_loop(bar, t->width);
        k->addr = (uintptr_t)(bar->base + t->offset);
        k->value = t->data;
        k->extra = EXTRA_TESTDEV_COUNT;
        k->bar = bar;
        k->test = t;
    }
}

/* The kinds, in the order they are measured. Found devices decide the testdev kinds. */
static void build_kinds(void)
{
    struct kind *k;
    if ((k = add_kind("empty")))
        k->loop = loop_empty;
    if ((k = add_kind("cpuid")))
        k->loop = loop_cpuid0;
    if ((k = add_kind("pic_pio"))) {
        k->loop = loop_pio_read8;
        k->addr = PIC_MASTER_DATA;
    }
    if ((k = add_kind("lapic_mmio"))) {
        k->loop = loop_mmio_read32;
        k->addr = LAPIC_VERSION;
    }
    if (testdev.mmio.present)
        add_testdev_kinds(&testdev.mmio, "mmio");
    if (testdev.pio.present)
        add_testdev_kinds(&testdev.pio, "pio");
    if (!testdev.present && (k = add_kind("testdev_*")))
        k->unavailable = "no-pci-testdev";

    const struct testdev_test *no_eventfd = testdev.mmio.present ? testdev_find(&testdev.mmio, "no-eventfd") : 0;
    if ((k = add_kind("testdev_mmio_count_read"))) {
        if (!testdev.mmio.present || testdev.mmio.n_tests == 0) {
            k->unavailable = "no-pci-testdev-mmio";
        } else {
            /* A test is selected first: QEMU answers header reads only while one is. */
            k->loop = loop_mmio_read32;
            k->addr = (uintptr_t)(testdev.mmio.base + TESTDEV_REG_COUNT);
            k->bar = &testdev.mmio;
            k->test = no_eventfd ? no_eventfd : &testdev.mmio.tests[0];
        }
    }
    if ((k = add_kind("vga_write"))) {
        k->loop = loop_mmio_write32;
        k->addr = VGA_WINDOW;
        k->value = VGA_PATTERN;
    }
    if ((k = add_kind("hypercall_testdev_mmio"))) {
        if (!hypercall_present) {
            k->unavailable = "no-hypercall-port";
        } else if (!no_eventfd) {
            k->unavailable = "no-pci-testdev-mmio-no-eventfd";
        } else {
            k->addr = (uintptr_t)(testdev.mmio.base + no_eventfd->offset);
            k->value = no_eventfd->data;
            k->extra = EXTRA_HYPERCALL;
            k->bar = &testdev.mmio;
            k->test = no_eventfd;
        }
    }
}

/* One timed run of n accesses; the test is selected again first, outside the timed part, so that
 * (on QEMU and iovmm) its count afterwards is this run's writes alone. */
static uint64_t timed_run(struct measurement *m, uint64_t n)
{
    const struct kind *k = m->kind;
    if (k->test)
        testdev_select(k->bar, k->test->number);
    if (n == 0)
        return 0;
    /* The markers enclose the loop alone: a tracer counts the begin marker's own exit and the loop's. */
    if (m->opts->markers)
        outb(MARKER_PORT, MARKER_BEGIN);
    uint64_t t0 = rdtsc();
    if (k->extra == EXTRA_HYPERCALL)
        m->hypercall_status = loop_hypercall_mmio_write(k->addr, k->value, k->test->width, n);
    else
        k->loop(k->addr, k->value, n);
    uint64_t cycles = rdtsc() - t0;
    if (m->opts->markers)
        outb(MARKER_PORT, MARKER_END);
    return cycles;
}

/* Runs at CPL3 (through run_at_cpl3) or directly at CPL0. */
static void measure(void *arg)
{
    struct measurement *m = arg;
    if (m->opts->fixed_iterations) {
        m->iterations = m->opts->iterations;
        m->cycles = timed_run(m, m->iterations);
    } else {
        for (uint64_t n = 1;; n <<= 1) {
            m->iterations = n;
            m->cycles = timed_run(m, n);
            if (m->cycles >= m->goal || n >= MAX_RAMP_ITERATIONS)
                break;
        }
    }
    if (m->kind->test)
        m->count = testdev_read_count(m->kind->bar);
}

static void report(const struct measurement *m, const char *mode)
{
    const struct kind *k = m->kind;
    uint64_t per_access = m->iterations ? m->cycles / m->iterations : 0;
    kprintf("exits: kind=%s mode=%s iterations=%llu cycles=%llu cycles_per_access=%llu", k->name, mode,
            (unsigned long long)m->iterations, (unsigned long long)m->cycles, (unsigned long long)per_access);
    if (k->extra == EXTRA_TESTDEV_COUNT || k->extra == EXTRA_HYPERCALL)
        kprintf(" count=%llu", (unsigned long long)m->count);
    if (k->extra == EXTRA_HYPERCALL)
        kprintf(" status=%llu", (unsigned long long)m->hypercall_status);
    kprintf("\n");
}

static void measure_mode(const struct options *opts, int cpl3)
{
    const char *mode = cpl3 ? "cpl3" : "cpl0";
    uint64_t goal = cpl3 ? opts->goal : opts->cpl0_goal;
    if (!opts->quiet)
        kprintf("exits: mode=%s goal=%llu\n", mode, (unsigned long long)goal);
    for (int i = 0; i < n_kinds; i++) {
        const struct kind *k = &kinds[i];
        if (!options_want_kind(opts, k->name))
            continue;
        if (k->unavailable) {
            if (!opts->quiet)
                kprintf("exits: kind=%s mode=%s unavailable reason=%s\n", k->name, mode, k->unavailable);
            continue;
        }
        struct measurement m = { .kind = k, .opts = opts, .goal = goal };
        if (cpl3)
            run_at_cpl3(measure, &m);
        else
            measure(&m);
        if (!opts->quiet)
            report(&m, mode);
    }
}

/* Device discovery is all port I/O and MMIO: done at CPL3, where it runs natively. */
static void discover(void *arg)
{
    (void)arg;
    hypercall_present = inl(HYPERCALL_PORT) == HYPERCALL_SIGNATURE;
    testdev_probe(&testdev);
}

void guest_main(const struct hvm_start_info *si)
{
    const char *cmdline = si && si->cmdline_paddr ? (const char *)(uintptr_t)si->cmdline_paddr : "";
    static struct options opts;
    if (options_parse(cmdline, &opts) != 0)
        debug_exit(DEBUG_EXIT_FAIL);

    run_at_cpl3(discover, 0);
    kprintf("exits: start goal=%llu cpl0_goal=%llu hypercall=%s testdev=%s\n", (unsigned long long)opts.goal,
            (unsigned long long)opts.cpl0_goal, hypercall_present ? "present" : "absent",
            testdev.present ? "present" : "absent");
    build_kinds();

    int first_cpl3 = !opts.cpl0_first;
    for (int pass = 0; pass < 2; pass++) {
        int cpl3 = pass == 0 ? first_cpl3 : !first_cpl3;
        if (cpl3 ? opts.measure_cpl3 : opts.measure_cpl0)
            measure_mode(&opts, cpl3);
    }
    kprintf("exits: done\n");
    debug_exit(DEBUG_EXIT_OK);
}
