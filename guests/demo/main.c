/* demo.elf: exercises every part of the guest library and prints one `key value...` line per
 * finding, so iovmm's integration tests can compare its output with QEMU's.
 *
 * Command-line words it understands (from the PVH cmdline), for testing the exception path:
 *   fault=cpl0   execute ud2 at CPL0      fault=cpl3   execute ud2 at CPL3
 * Both must print an "exception:" line and exit with status (3<<1)|1 = 7. */
#include "acpi.h"
#include "cpu.h"
#include "debug_exit.h"
#include "fwcfg.h"
#include "io.h"
#include "mem.h"
#include "pci.h"
#include "pmtimer.h"
#include "printf.h"
#include "pvh.h"
#include "smp.h"

__attribute__((noreturn)) static void fail(const char *what)
{
    kprintf("demo: FAIL %s\n", what);
    debug_exit(DEBUG_EXIT_FAIL);
}

static void check_boot(const struct hvm_start_info *si)
{
    if (!si || si->magic != HVM_START_MAGIC)
        fail("pvh start_info magic");
    const char *cmdline = si->cmdline_paddr ? (const char *)(uintptr_t)si->cmdline_paddr : "";
    kprintf("boot: pvh cmdline=\"%s\"\n", cmdline);

    if (si->version < 1 || !si->memmap_paddr)
        fail("pvh memmap missing (start_info version < 1)");
    const struct hvm_memmap_table_entry *mm =
        (const struct hvm_memmap_table_entry *)(uintptr_t)si->memmap_paddr;
    uint64_t ram = 0;
    for (uint32_t i = 0; i < si->memmap_entries; i++)
        if (mm[i].type == 1)
            ram += mm[i].size;
    kprintf("memmap: entries=%u ram_kib=%llu\n", si->memmap_entries, (unsigned long long)(ram >> 10));
}

static void check_fwcfg(void)
{
    if (!fwcfg_present())
        fail("fwcfg signature");
    char cmdline[256];
    uint16_t cpus = fwcfg_read_u16(FW_CFG_NB_CPUS);
    fwcfg_cmdline(cmdline, sizeof(cmdline));
    kprintf("fwcfg: signature=QEMU cpus=%u cmdline=\"%s\"\n", cpus, cmdline);
}

static void check_acpi(const struct hvm_start_info *si, struct acpi_info *ai)
{
    if (acpi_init(ai, si->rsdp_paddr) != 0)
        fail("acpi rsdp/root table");
    if (ai->bad_checksums)
        fail("acpi table checksum");
    if (!ai->have_fadt)
        fail("acpi fadt missing");
    if (!ai->have_madt)
        fail("acpi madt missing");
    kprintf("acpi: rsdp=ok xsdt=%s fadt=ok madt=ok\n", ai->have_xsdt ? "ok" : "none");
    kprintf("acpi: madt cpus=%d ioapic=0x%x\n", ai->cpu_count, ai->ioapic_addr);
    kprintf("acpi: fadt pm_tmr_blk=0x%x\n", ai->pm_tmr_blk);
    if (ai->pm_tmr_blk == 0 || ai->pm_tmr_blk > 0xFFFF)
        fail("acpi fadt pm_tmr_blk");
}

static void check_pmtimer(const struct acpi_info *ai)
{
    pmtimer_init((uint16_t)ai->pm_tmr_blk);
    enum pmtimer_check c = pmtimer_selftest(1000);
    kprintf("pmtimer: %s\n", c == PMTIMER_OK ? "ok" : c == PMTIMER_STUCK ? "stuck" : "backwards");
    if (c != PMTIMER_OK)
        fail("pmtimer");
    kprintf("pmtimer: info tsc_per_tick=%llu\n", (unsigned long long)pmtimer_tsc_per_tick(3580));
}

static void check_pci(void)
{
    struct pci_func funcs[32];
    int n = pci_enumerate_bus0(funcs, 32);
    if (n == 0)
        fail("pci no functions on bus 0");
    if (n > 32)
        n = 32;
    for (int i = 0; i < n; i++) {
        const struct pci_func *f = &funcs[i];
        kprintf("pci: %02x:%02x.%x %04x:%04x class=%04x\n", f->bus, f->dev, f->fn, f->vendor, f->device,
                f->class_code);
    }
    for (int i = 0; i < n; i++) {
        struct pci_bar bars[6];
        int nb = pci_decode_bars(&funcs[i], bars, 6);
        for (int b = 0; b < nb; b++)
            kprintf("pci: bar %02x:%02x.%x bar%d %s 0x%llx size=0x%llx%s\n", funcs[i].bus, funcs[i].dev,
                    funcs[i].fn, bars[b].index, bars[b].is_io ? "io" : "mem",
                    (unsigned long long)bars[b].addr, (unsigned long long)bars[b].size,
                    bars[b].is_64 ? " 64bit" : "");
    }
}

static void check_smp(const struct acpi_info *ai)
{
    struct smp_result r;
    int rc = smp_start_aps(ai, 1000000, &r);
    kprintf("smp: cpus=%d started=%d apic_ids=", r.cpus, r.started);
    for (int i = 0; i < r.n_ids; i++)
        kprintf(i ? ",%u" : "%u", r.apic_ids[i]);
    kprintf("\n");
    if (rc != 0 || r.started != r.cpus)
        fail("smp not all cpus started");
}

/* Runs at CPL3: proves port I/O works there by reading the PM timer and writing the serial
 * port itself. It reports the IOPL it observes: 3 on hardware/TCG; 0 on kvm_pvm, which drops
 * IOPL for CPL3 code and allows the I/O through the TSS I/O bitmap instead (see cpu.c). */
struct cpl3_result {
    int cpl, iopl;
    uint32_t ticks;
};

static void cpl3_workload(void *arg)
{
    struct cpl3_result *r = arg;
    r->cpl = current_cpl();
    r->iopl = current_iopl();
    uint32_t t0 = pmtimer_read(), t1 = t0;
    for (int i = 0; i < 1000000 && (t1 = pmtimer_read()) == t0; i++)
        cpu_pause();
    r->ticks = pmtimer_delta(t0, t1);
    if (r->cpl == 3 && r->ticks != 0)
        kprintf("cpl3: ok iopl=%d serial+pmtimer from %s\n", r->iopl, cpl_name());
}

static void check_cpl3(void)
{
    struct cpl3_result r = { -1, -1, 0 };
    run_at_cpl3(cpl3_workload, &r);
    if (current_cpl() != 0)
        fail("cpl3 did not return to cpl0");
    if (r.cpl != 3)
        fail("cpl3 mode");
    if (r.ticks == 0)
        fail("cpl3 pmtimer did not advance");
}

static void ud2_at_cpl3(void *arg)
{
    (void)arg;
    __asm__ volatile("ud2");
}

static void maybe_fault(const char *cmdline)
{
    if (strstr_simple(cmdline, "fault=cpl0"))
        __asm__ volatile("ud2");
    if (strstr_simple(cmdline, "fault=cpl3"))
        run_at_cpl3(ud2_at_cpl3, 0);
}

void guest_main(const struct hvm_start_info *si)
{
    kprintf("demo: start\n");
    check_boot(si);
    maybe_fault(si->cmdline_paddr ? (const char *)(uintptr_t)si->cmdline_paddr : "");
    check_fwcfg();
    struct acpi_info ai;
    check_acpi(si, &ai);
    check_pmtimer(&ai);
    check_pci();
    check_smp(&ai);
    check_cpl3();
    kprintf("demo: done\n");
    debug_exit(DEBUG_EXIT_OK);
}
