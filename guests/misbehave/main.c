/* misbehave.elf: a guest that does exactly one bad thing, chosen on its command line, so that the
 * integration tests can check that iovmm answers as hardware would and ends with the right status.
 *
 * Command line (PVH cmdline): mode=<name> [count=<n>] [how=<variant>]. It prints "misbehave: <mode>" first.
 *   halt-irqs-off           cli; hlt forever                     -> iovmm status 8 (halted forever)
 *   halt-irqs-on-no-source  sti; hlt in a loop, nothing wakes it -> keeps running (IF=1 is not dead)
 *   triple-fault            zero-limit IDT, then an exception    -> iovmm status 6 (KVM_EXIT_SHUTDOWN)
 *                           how=ud2 (default): ud2 at CPL0; how=cpl3: ud2 at CPL3;
 *                           how=int3: int3 at CPL0 -- on kvm_pvm this ends in KVM_EXIT_INTERNAL_ERROR
 *                           (emulation failure; QEMU hits it too), so iovmm exits 4, not 6
 *   unmapped-pio            <count> (default 100000) reads+writes of widths 1/2/4 to ports 0x2000..
 *                           at CPL3; all reads must be all-ones  -> status 1 (debug_exit(0))
 *   unmapped-mmio           <count> reads+writes of widths 1/2/4/8 at 0xD0000000 (an unassigned part
 *                           of the PCI window) at CPL3; reads all-ones -> status 1
 *   crossing                inl at 0x3FE and inw at 0x3FF (past COM1's 0x3F8-0x3FF window's end)
 *                           must read all-ones                   -> status 1
 *   wrong-width             word/dword accesses to fw_cfg data (0x511) and to PCI config data at
 *                           0xCFC..0xCFF; prints what it read    -> status 1
 *   exception               ud2 at CPL0 -> the library prints "exception:" -> status 7
 *                           (how=int3: int3 at CPL0, which kvm_pvm's emulator cannot execute at all)
 *   exception-cpl3          ud2 at CPL3 -> the same, from user mode           -> status 7
 * Failures print "misbehave: FAIL ..." and exit with debug_exit(1) -> status 3; an unknown mode
 * prints "misbehave: unknown mode" and exits the same way.
 *
 * CPL0 code is emulated instruction by instruction on kvm_pvm (about 1 us each), so every loop
 * runs at CPL3 through run_at_cpl3 (port I/O is allowed there by the TSS I/O bitmap). */
#include "cpu.h"
#include "debug_exit.h"
#include "io.h"
#include "mem.h"
#include "printf.h"
#include "pvh.h"

#define UNMAPPED_PORT 0x2000          /* no device: iovmm maps 0x3F8, 0xF4, 0x510, 0x600, 0xCF8 */
#define UNMAPPED_MMIO 0xD0000000ull   /* inside the PCI window, no BAR is assigned there */
#define DEFAULT_COUNT 100000u

__attribute__((noreturn)) static void fail(const char *what)
{
    kprintf("misbehave: FAIL %s\n", what);
    debug_exit(DEBUG_EXIT_FAIL);
}

/* The value of word `key` ("mode=") in cmdline, copied to out; 0 when absent. */
static int cmdline_value(const char *cmdline, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);
    const char *p = cmdline;
    while (*p) {
        while (*p == ' ')
            p++;
        if (strncmp(p, key, klen) == 0) {
            size_t n = 0;
            p += klen;
            while (p[n] && p[n] != ' ' && n + 1 < size) {
                out[n] = p[n];
                n++;
            }
            out[n] = 0;
            return 1;
        }
        while (*p && *p != ' ')
            p++;
    }
    return 0;
}

static uint32_t parse_uint(const char *s, uint32_t fallback)
{
    uint32_t v = 0;
    if (!*s)
        return fallback;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return fallback;
        v = v * 10 + (uint32_t)(*s - '0');
    }
    return v;
}

/* ---- halts ---------------------------------------------------------------------------------- */

__attribute__((noreturn)) static void halt_irqs_off(void)
{
    for (;;)
        __asm__ volatile("cli; hlt");
}

__attribute__((noreturn)) static void halt_irqs_on(void)
{
    /* Interrupts enabled but no source is programmed (no PIT channel, no LAPIC timer, the UART's
     * interrupts off), so this sleeps until the VMM is stopped from outside. */
    for (;;)
        __asm__ volatile("sti; hlt");
}

/* ---- triple fault --------------------------------------------------------------------------- */

struct __attribute__((packed)) idt_pointer {
    uint16_t limit;
    uint64_t base;
};
static const struct idt_pointer zero_idt = { 0, 0 };

static void ud2_after_zero_idt(void *arg)
{
    (void)arg;
    __asm__ volatile("ud2");
}

/* With an IDT limit of 0 every vector is out of bounds: the exception -> #GP -> #DF -> shutdown.
 * how=ud2 (default), int3, or cpl3 (the IDT is loaded at CPL0, the ud2 runs at CPL3). */
__attribute__((noreturn)) static void triple_fault(const char *how)
{
    if (strncmp(how, "cpl3", 8) == 0) {
        __asm__ volatile("lidt %0" : : "m"(zero_idt) : "memory");
        run_at_cpl3(ud2_after_zero_idt, 0);
    } else if (strncmp(how, "int3", 8) == 0) {
        __asm__ volatile("lidt %0; int3" : : "m"(zero_idt) : "memory");
    } else {
        __asm__ volatile("lidt %0; ud2" : : "m"(zero_idt) : "memory");
    }
    fail("still running after a triple fault");
}

/* ---- unmapped port and MMIO loops (CPL3) ---------------------------------------------------- */

struct loop_job {
    uint32_t count;     /* reads + writes in all */
    uint32_t reads;
    uint32_t writes;
    uint32_t bad_reads; /* reads that were not all-ones */
    uint64_t first_bad; /* value of the first bad read */
    int bad_width;
};

static void note_read(struct loop_job *j, uint64_t v, uint64_t ones, int width)
{
    j->reads++;
    if (v != ones) {
        if (!j->bad_reads) {
            j->first_bad = v;
            j->bad_width = width;
        }
        j->bad_reads++;
    }
}

static void pio_loop(void *arg)
{
    struct loop_job *j = arg;
    uint32_t done = 0;
    for (uint32_t i = 0; done < j->count; i++) {
        uint16_t port = (uint16_t)(UNMAPPED_PORT + (i & 0xF) * 4);
        switch (i % 3) {
        case 0:
            note_read(j, inb(port), 0xFF, 1);
            outb(port, (uint8_t)i);
            break;
        case 1:
            note_read(j, inw(port), 0xFFFF, 2);
            outw(port, (uint16_t)i);
            break;
        default:
            note_read(j, inl(port), 0xFFFFFFFFu, 4);
            outl(port, i);
            break;
        }
        j->writes++;
        done += 2;
    }
}

static void mmio_loop(void *arg)
{
    struct loop_job *j = arg;
    uint32_t done = 0;
    for (uint32_t i = 0; done < j->count; i++) {
        uintptr_t a = (uintptr_t)(UNMAPPED_MMIO + (i & 0xFF) * 8);
        switch (i & 3) {
        case 0:
            note_read(j, mmio_read8(a), 0xFF, 1);
            mmio_write8(a, (uint8_t)i);
            break;
        case 1:
            note_read(j, mmio_read16(a), 0xFFFF, 2);
            mmio_write16(a, (uint16_t)i);
            break;
        case 2:
            note_read(j, mmio_read32(a), 0xFFFFFFFFu, 4);
            mmio_write32(a, i);
            break;
        default:
            note_read(j, mmio_read64(a), ~0ull, 8);
            mmio_write64(a, 0x0123456789ABCDEFull ^ i);
            break;
        }
        j->writes++;
        done += 2;
    }
}

__attribute__((noreturn)) static void unmapped(const char *what, void (*fn)(void *), uint32_t count)
{
    struct loop_job j = { count, 0, 0, 0, 0, 0 };
    run_at_cpl3(fn, &j);
    kprintf("misbehave: %s reads=%u writes=%u bad_reads=%u\n", what, j.reads, j.writes, j.bad_reads);
    if (j.bad_reads) {
        kprintf("misbehave: first bad read width=%d value=0x%llx\n", j.bad_width, (unsigned long long)j.first_bad);
        fail("unmapped read was not all-ones");
    }
    kprintf("misbehave: unmapped reads all-ones ok\n");
    debug_exit(DEBUG_EXIT_OK);
}

/* ---- accesses that run past a window's end -------------------------------------------------- */

__attribute__((noreturn)) static void crossing(void)
{
    uint32_t l = inl(0x3FE); /* bytes 0x3FE..0x401: COM1 ends at 0x3FF */
    uint16_t w = inw(0x3FF); /* bytes 0x3FF..0x400 */
    uint8_t b = inb(0x3FF);  /* inside the window: the UART's scratch register */
    kprintf("misbehave: crossing inl(0x3fe)=0x%x inw(0x3ff)=0x%x inb(0x3ff)=0x%x\n", l, w, b);
    if (l != 0xFFFFFFFFu || w != 0xFFFF)
        fail("crossing read was not all-ones");
    kprintf("misbehave: crossing reads all-ones ok\n");
    debug_exit(DEBUG_EXIT_OK);
}

/* ---- wrong widths on real devices ----------------------------------------------------------- */

__attribute__((noreturn)) static void wrong_width(void)
{
    outw(0x510, 0x0000); /* fw_cfg: select the signature */
    uint16_t fw_w = inw(0x511);
    uint32_t fw_l = inl(0x511);
    outw(0x511, 0x1234);
    uint8_t fw_b = inb(0x511); /* the proper width still works afterwards */
    kprintf("misbehave: fwcfg inw(0x511)=0x%x inl(0x511)=0x%x then inb(0x511)=0x%x\n", fw_w, fw_l, fw_b);

    outl(0xCF8, 0x80000000u); /* 00:00.0 register 0: the host bridge's vendor/device IDs */
    for (uint16_t port = 0xCFC; port <= 0xCFF; port++) {
        uint16_t w = inw(port);
        uint32_t l = inl(port);
        kprintf("misbehave: pci inw(0x%x)=0x%x inl(0x%x)=0x%x\n", port, w, port, l);
    }
    uint32_t id = inl(0xCFC);
    kprintf("misbehave: pci inl(0xcfc)=0x%x after\n", id);
    kprintf("misbehave: wrong-width done\n");
    debug_exit(DEBUG_EXIT_OK);
}

/* ---- exceptions ----------------------------------------------------------------------------- */

static void ud2_at_cpl3(void *arg)
{
    (void)arg;
    __asm__ volatile("ud2");
}

void guest_main(const struct hvm_start_info *si)
{
    const char *cmdline = si && si->cmdline_paddr ? (const char *)(uintptr_t)si->cmdline_paddr : "";
    char mode[32] = "";
    char count_s[16] = "";
    cmdline_value(cmdline, "mode=", mode, sizeof mode);
    cmdline_value(cmdline, "count=", count_s, sizeof count_s);
    uint32_t count = parse_uint(count_s, DEFAULT_COUNT);
    char how[8] = "";
    cmdline_value(cmdline, "how=", how, sizeof how);
    kprintf("misbehave: %s\n", mode);

    if (strncmp(mode, "halt-irqs-off", 32) == 0)
        halt_irqs_off();
    if (strncmp(mode, "halt-irqs-on-no-source", 32) == 0)
        halt_irqs_on();
    if (strncmp(mode, "triple-fault", 32) == 0)
        triple_fault(how);
    if (strncmp(mode, "unmapped-pio", 32) == 0)
        unmapped("unmapped-pio", pio_loop, count);
    if (strncmp(mode, "unmapped-mmio", 32) == 0)
        unmapped("unmapped-mmio", mmio_loop, count);
    if (strncmp(mode, "crossing", 32) == 0)
        crossing();
    if (strncmp(mode, "wrong-width", 32) == 0)
        wrong_width();
    if (strncmp(mode, "exception", 32) == 0) {
        if (strncmp(how, "int3", 8) == 0)
            __asm__ volatile("int3");
        __asm__ volatile("ud2");
    }
    if (strncmp(mode, "exception-cpl3", 32) == 0)
        run_at_cpl3(ud2_at_cpl3, 0);
    fail("unknown mode (want mode=halt-irqs-off|halt-irqs-on-no-source|triple-fault|unmapped-pio|"
         "unmapped-mmio|crossing|wrong-width|exception|exception-cpl3)");
}
