/* dispatch-check: exercises iovmm's dispatch paths from the guest side and reports what it saw, so integration
 * tests can compare the guest's view with the device's and the VMM's statistics (never timings).
 *
 * Command line: one of
 *   mode=vga        writes distinct values to the legacy VGA window (coalesced under --device
 *                   vga-window,dispatch=coalesced), reading back earlier ones between bursts and everything at the
 *                   end: a read must never overtake a coalesced write, and a burst longer than KVM's ring (169
 *                   entries here) must lose nothing.
 *   mode=testdev    drives pci-testdev's no-eventfd test on both BARs the ordinary way (whatever path the VMM
 *                   chose for its registers) and reports the device's count.
 *   mode=hypercall  the same through the iovmm hypercall port (docs/HYPERCALL.md), plus one unmapped access.
 * Everything runs at CPL3: CPL0 code is emulated (slow) on this machine's KVM. Prints "dispatch: done" and exits
 * with debug_exit(0); any failure prints "dispatch: FAIL ..." and exits with debug_exit(1). */
#include <stdint.h>

#include "cpu.h"
#include "debug_exit.h"
#include "io.h"
#include "mem.h"
#include "pci.h"
#include "printf.h"
#include "pvh.h"

#define VGA_BASE 0xA0000ull
#define VGA_DWORDS (0x20000 / 4)
#define READBACK_EVERY 61
#define LONG_BURST 1000
#define TESTDEV_WRITES 1000

#define HC_PORT 0x0FF0
#define HC_SIGNATURE 0x31564f49u
#define HC_WRITE (1u << 8)
#define HC_PIO (1u << 9)

struct testdev {
    uint64_t mmio;
    uint16_t pio;
};

static int failures;

static void fail(const char *what, uint64_t a, uint64_t b)
{
    if (failures++ < 5)
        kprintf("dispatch: FAIL %s (%llx vs %llx)\n", what, (unsigned long long)a, (unsigned long long)b);
}

static uint32_t pattern(uint32_t i) { return i * 2654435761u + 0x9e3779b9u; }

static volatile uint32_t *vga_dword(uint32_t i) { return (volatile uint32_t *)(uintptr_t)(VGA_BASE + 4ull * i); }

static void vga_check(void *unused)
{
    (void)unused;
    uint32_t reads = 0, i = 0;
    /* Short bursts with reads of the most recent and an older dword in between. */
    for (; i < VGA_DWORDS / 2; ++i) {
        *vga_dword(i) = pattern(i);
        if (i % READBACK_EVERY == READBACK_EVERY - 1) {
            uint32_t recent = *vga_dword(i), older = *vga_dword(i / 2);
            reads += 2;
            if (recent != pattern(i)) fail("recent write overtaken", recent, pattern(i));
            if (older != pattern(i / 2)) fail("older write lost", older, pattern(i / 2));
        }
    }
    /* Long bursts with no exit in between: the ring fills, KVM exits, nothing may be lost or reordered. The same
     * dword is written twice per burst so that order matters. */
    for (; i + LONG_BURST <= VGA_DWORDS; i += LONG_BURST) {
        for (uint32_t j = 0; j < LONG_BURST; ++j) *vga_dword(i + j) = 0xdeadbeef;
        for (uint32_t j = 0; j < LONG_BURST; ++j) *vga_dword(i + j) = pattern(i + j);
    }
    uint32_t end = i;
    for (uint32_t k = 0; k < end; ++k, ++reads) {
        uint32_t v = *vga_dword(k);
        if (v != pattern(k)) fail("final read-back", v, pattern(k));
    }
    kprintf("dispatch: vga writes=%u reads=%u mismatches=%d\n", (VGA_DWORDS / 2) + 2 * (end - VGA_DWORDS / 2), reads,
            failures);
}

static int find_testdev(struct testdev *t)
{
    struct pci_func f;
    if (pci_find_device(0x1b36, 0x0005, &f) != 0) return 0;
    struct pci_bar bars[6];
    int n = pci_decode_bars(&f, bars, 6);
    t->mmio = 0;
    t->pio = 0;
    for (int b = 0; b < n; ++b) {
        if (bars[b].index == 0 && !bars[b].is_io) t->mmio = bars[b].addr;
        if (bars[b].index == 1 && bars[b].is_io) t->pio = (uint16_t)bars[b].addr;
    }
    return t->mmio && t->pio;
}

/* The header of the selected test, as pci-testdev lays it out on both BARs. */
enum { HDR_TEST = 0, HDR_WIDTH = 1, HDR_OFFSET = 4, HDR_DATA = 8, HDR_COUNT = 12 };

static void testdev_check(void *arg)
{
    const struct testdev *t = arg;
    volatile uint8_t *mmio = (volatile uint8_t *)(uintptr_t)t->mmio;
    mmio[HDR_TEST] = 0; /* mmio-no-eventfd */
    uint32_t offset = *(volatile uint32_t *)(mmio + HDR_OFFSET);
    uint8_t data = (uint8_t)*(volatile uint32_t *)(mmio + HDR_DATA);
    if (offset < 16 || offset >= 0x1000) { fail("mmio test offset", offset, 0); return; }
    for (int i = 0; i < TESTDEV_WRITES; ++i) mmio[offset] = data;
    uint32_t mmio_count = *(volatile uint32_t *)(mmio + HDR_COUNT);
    /* Read the count many times: under dispatch.count=fastpath these reads skip the device lock. */
    for (int i = 0; i < 100; ++i)
        if (*(volatile uint32_t *)(mmio + HDR_COUNT) != mmio_count) fail("count changed", 0, 0);

    outb(t->pio + HDR_TEST, 0); /* portio-no-eventfd */
    uint32_t pio_offset = inl(t->pio + HDR_OFFSET);
    uint8_t pio_data = (uint8_t)inl(t->pio + HDR_DATA);
    if (pio_offset < 16 || pio_offset >= 0x100) { fail("pio test offset", pio_offset, 0); return; }
    for (int i = 0; i < TESTDEV_WRITES; ++i) outb((uint16_t)(t->pio + pio_offset), pio_data);
    uint32_t pio_count = inl(t->pio + HDR_COUNT);
    kprintf("dispatch: testdev mmio count=%u pio count=%u writes=%d\n", mmio_count, pio_count, TESTDEV_WRITES);
}

static uint64_t hypercall(uint64_t address, uint64_t flags, uint64_t value, uint64_t *status)
{
    uint64_t rax = value, rcx = flags;
    __asm__ volatile("outb %%al, %%dx" : "+a"(rax), "+c"(rcx) : "b"(address), "d"((uint16_t)HC_PORT) : "memory");
    *status = rcx;
    return rax;
}

static void hypercall_check(void *arg)
{
    const struct testdev *t = arg;
    if (inl(HC_PORT) != HC_SIGNATURE) { fail("no hypercall port", inl(HC_PORT), HC_SIGNATURE); return; }
    uint64_t status, bad = 0;
    hypercall(t->mmio + HDR_TEST, 1 | HC_WRITE, 0, &status);
    bad |= status;
    uint32_t offset = (uint32_t)hypercall(t->mmio + HDR_OFFSET, 4, 0, &status);
    uint8_t data = (uint8_t)hypercall(t->mmio + HDR_DATA, 4, 0, &status);
    for (int i = 0; i < TESTDEV_WRITES; ++i) {
        hypercall(t->mmio + offset, 1 | HC_WRITE, data, &status);
        bad |= status;
    }
    uint32_t mmio_count = (uint32_t)hypercall(t->mmio + HDR_COUNT, 4, 0, &status);

    hypercall(t->pio + HDR_TEST, 1 | HC_WRITE | HC_PIO, 0, &status);
    uint32_t pio_offset = (uint32_t)hypercall(t->pio + HDR_OFFSET, 4 | HC_PIO, 0, &status);
    uint8_t pio_data = (uint8_t)hypercall(t->pio + HDR_DATA, 4 | HC_PIO, 0, &status);
    for (int i = 0; i < TESTDEV_WRITES; ++i) {
        hypercall(t->pio + pio_offset, 1 | HC_WRITE | HC_PIO, pio_data, &status);
        bad |= status;
    }
    uint32_t pio_count = (uint32_t)hypercall(t->pio + HDR_COUNT, 4 | HC_PIO, 0, &status);

    uint64_t unmapped = hypercall(0xD0000000ull, 4, 0, &status);
    uint64_t unmapped_status = status;
    hypercall(t->mmio, 3, 0, &status); /* size 3: refused */
    kprintf("dispatch: hypercall mmio count=%u pio count=%u errors=%llu unmapped=%llx/%llu bad_size=%llu\n",
            mmio_count, pio_count, (unsigned long long)bad, (unsigned long long)unmapped,
            (unsigned long long)unmapped_status, (unsigned long long)status);
}

void guest_main(const struct hvm_start_info *si)
{
    const char *cmdline = si->cmdline_paddr ? (const char *)(uintptr_t)si->cmdline_paddr : "";
    kprintf("dispatch: start %s\n", cmdline);
    struct testdev t;
    if (strstr_simple(cmdline, "mode=vga")) {
        run_at_cpl3(vga_check, 0);
    } else if (strstr_simple(cmdline, "mode=testdev") || strstr_simple(cmdline, "mode=hypercall")) {
        if (!find_testdev(&t)) {
            kprintf("dispatch: FAIL no pci-testdev\n");
            debug_exit(1);
        }
        run_at_cpl3(strstr_simple(cmdline, "mode=testdev") ? testdev_check : hypercall_check, &t);
    } else {
        kprintf("dispatch: FAIL unknown mode\n");
        debug_exit(1);
    }
    if (failures) debug_exit(1);
    kprintf("dispatch: done\n");
    debug_exit(0);
}
