#include "testdev.h"

#include "io.h"
#include "mem.h"
#include "pci.h"
#include "printf.h"

#define PCI_COMMAND 0x04
#define PCI_COMMAND_IO 0x1
#define PCI_COMMAND_MEMORY 0x2
#define IDENTITY_MAP_END 0x100000000ull /* the guest library maps 0-4 GiB only */

static uint8_t hdr_read8(const struct testdev_bar *bar, uint32_t off)
{
    return bar->is_io ? inb((uint16_t)(bar->base + off)) : mmio_read8((uintptr_t)(bar->base + off));
}

static uint32_t hdr_read32(const struct testdev_bar *bar, uint32_t off)
{
    return bar->is_io ? inl((uint16_t)(bar->base + off)) : mmio_read32((uintptr_t)(bar->base + off));
}

void testdev_select(const struct testdev_bar *bar, uint8_t test_number)
{
    if (bar->is_io)
        outb((uint16_t)(bar->base + TESTDEV_REG_TEST), test_number);
    else
        mmio_write8((uintptr_t)(bar->base + TESTDEV_REG_TEST), test_number);
}

uint32_t testdev_read_count(const struct testdev_bar *bar)
{
    return hdr_read32(bar, TESTDEV_REG_COUNT);
}

const struct testdev_test *testdev_find(const struct testdev_bar *bar, const char *short_name)
{
    size_t len = strlen(short_name);
    for (int i = 0; i < bar->n_tests; i++)
        if (strlen(bar->tests[i].short_name) == len && strncmp(bar->tests[i].short_name, short_name, len) == 0)
            return &bar->tests[i];
    return 0;
}

/* Copies the selected test's name, keeping only characters that are safe in a kind name (the bench
 * host parses "kind=<...>" up to the next space). Returns its length. */
static size_t read_name(const struct testdev_bar *bar, char *out)
{
    size_t n = 0;
    while (n + 1 < TESTDEV_NAME_MAX && TESTDEV_REG_NAME + n < bar->size) {
        char c = (char)hdr_read8(bar, (uint32_t)(TESTDEV_REG_NAME + n));
        if (c == 0)
            break;
        int safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                   c == '_';
        out[n++] = safe ? c : '_';
    }
    out[n] = 0;
    return n;
}

static const char *strip_space_prefix(const char *name)
{
    static const char *const prefixes[] = { "mmio-", "portio-", "pio-" };
    for (unsigned i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t len = strlen(prefixes[i]);
        if (strncmp(name, prefixes[i], len) == 0 && name[len])
            return name + len;
    }
    return name;
}

/* Lists tests 0, 1, ... until one has an empty name: QEMU has three per BAR, iovmm may have more. */
static void list_tests(struct testdev_bar *bar, const char *label)
{
    bar->n_tests = 0;
    for (int number = 0; number < TESTDEV_MAX_TESTS; number++) {
        struct testdev_test *t = &bar->tests[bar->n_tests];
        testdev_select(bar, (uint8_t)number);
        if (read_name(bar, t->name) == 0)
            break;
        t->number = (uint8_t)number;
        t->width = hdr_read8(bar, TESTDEV_REG_WIDTH);
        t->offset = hdr_read32(bar, TESTDEV_REG_OFFSET);
        t->data = hdr_read32(bar, TESTDEV_REG_DATA);
        t->short_name = strip_space_prefix(t->name);
        int width_ok = t->width == 1 || t->width == 2 || t->width == 4;
        /* The offset must leave the header alone (a write there would select another test) and
         * the whole access must stay inside the BAR. */
        int offset_ok = t->offset >= TESTDEV_HEADER_SIZE && (uint64_t)t->offset + t->width <= bar->size;
        if (!width_ok || !offset_ok) {
            kprintf("exits: testdev %s test=%d name=%s skipped width=%u offset=0x%x\n", label, number, t->name,
                    t->width, t->offset);
            continue;
        }
        kprintf("exits: testdev %s test=%d name=%s width=%u offset=0x%x data=0x%x\n", label, number, t->name,
                t->width, t->offset, t->data);
        bar->n_tests++;
    }
}

static int find_bar(const struct pci_bar *bars, int n, int index, struct testdev_bar *out)
{
    for (int i = 0; i < n; i++) {
        if (bars[i].index != index)
            continue;
        out->is_io = bars[i].is_io;
        out->base = bars[i].addr;
        out->size = bars[i].size;
        return 1;
    }
    return 0;
}

int testdev_probe(struct testdev *td)
{
    memset(td, 0, sizeof(*td));
    struct pci_func f;
    if (pci_find_device(TESTDEV_VENDOR, TESTDEV_DEVICE, &f) != 0) {
        kprintf("exits: testdev absent\n");
        return -1;
    }
    struct pci_bar bars[6];
    int n = pci_decode_bars(&f, bars, 6);
    uint16_t cmd = pci_read16(f.bus, f.dev, f.fn, PCI_COMMAND);
    pci_write16(f.bus, f.dev, f.fn, PCI_COMMAND, cmd | PCI_COMMAND_IO | PCI_COMMAND_MEMORY);

    struct testdev_bar *mmio = &td->mmio, *pio = &td->pio;
    mmio->present = find_bar(bars, n, 0, mmio) && !mmio->is_io && mmio->base != 0 &&
                    mmio->size > TESTDEV_REG_NAME && mmio->base + mmio->size <= IDENTITY_MAP_END;
    pio->present = find_bar(bars, n, 1, pio) && pio->is_io && pio->base != 0 && pio->size > TESTDEV_REG_NAME &&
                   pio->base + pio->size <= 0x10000;
    kprintf("exits: testdev at %02x:%02x.%x bar0=%s 0x%llx size=0x%llx bar1=%s 0x%llx size=0x%llx\n", f.bus, f.dev,
            f.fn, mmio->present ? "mmio" : "unusable", (unsigned long long)mmio->base,
            (unsigned long long)mmio->size, pio->present ? "pio" : "unusable", (unsigned long long)pio->base,
            (unsigned long long)pio->size);
    if (mmio->present)
        list_tests(mmio, "mmio");
    if (pio->present)
        list_tests(pio, "pio");
    td->present = mmio->present || pio->present;
    return td->present ? 0 : -1;
}
