#include "pci.h"
#include "io.h"

static uint32_t cfg_addr(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
    return 0x80000000u | (uint32_t)bus << 16 | (uint32_t)(dev & 31) << 11 | (uint32_t)(fn & 7) << 8 |
           (off & 0xFC);
}

/* Narrow accesses go to 0xCFC + (off & 3) with a narrow I/O instruction, as on hardware. */
uint32_t pci_read32(uint8_t b, uint8_t d, uint8_t f, uint8_t off)
{
    outl(PCI_CONFIG_ADDRESS, cfg_addr(b, d, f, off));
    return inl(PCI_CONFIG_DATA);
}
uint16_t pci_read16(uint8_t b, uint8_t d, uint8_t f, uint8_t off)
{
    outl(PCI_CONFIG_ADDRESS, cfg_addr(b, d, f, off));
    return inw(PCI_CONFIG_DATA + (off & 2));
}
uint8_t pci_read8(uint8_t b, uint8_t d, uint8_t f, uint8_t off)
{
    outl(PCI_CONFIG_ADDRESS, cfg_addr(b, d, f, off));
    return inb(PCI_CONFIG_DATA + (off & 3));
}
void pci_write32(uint8_t b, uint8_t d, uint8_t f, uint8_t off, uint32_t v)
{
    outl(PCI_CONFIG_ADDRESS, cfg_addr(b, d, f, off));
    outl(PCI_CONFIG_DATA, v);
}
void pci_write16(uint8_t b, uint8_t d, uint8_t f, uint8_t off, uint16_t v)
{
    outl(PCI_CONFIG_ADDRESS, cfg_addr(b, d, f, off));
    outw(PCI_CONFIG_DATA + (off & 2), v);
}
void pci_write8(uint8_t b, uint8_t d, uint8_t f, uint8_t off, uint8_t v)
{
    outl(PCI_CONFIG_ADDRESS, cfg_addr(b, d, f, off));
    outb(PCI_CONFIG_DATA + (off & 3), v);
}

int pci_enumerate_bus0(struct pci_func *out, int max)
{
    int n = 0;
    for (uint8_t dev = 0; dev < 32; dev++) {
        uint8_t nfn = 1;
        for (uint8_t fn = 0; fn < nfn; fn++) {
            uint32_t id = pci_read32(0, dev, fn, 0x00);
            if ((id & 0xFFFF) == 0xFFFF)
                continue; /* nothing here (function 0 absent means the whole device is) */
            uint8_t ht = pci_read8(0, dev, fn, 0x0E);
            if (fn == 0 && (ht & 0x80))
                nfn = 8; /* multifunction: probe functions 1-7 as well */
            if (n < max) {
                uint32_t cls = pci_read32(0, dev, fn, 0x08);
                struct pci_func *p = &out[n];
                p->bus = 0;
                p->dev = dev;
                p->fn = fn;
                p->header_type = ht & 0x7F;
                p->vendor = (uint16_t)id;
                p->device = (uint16_t)(id >> 16);
                p->class_code = (uint16_t)(cls >> 16);
                p->prog_if = (uint8_t)(cls >> 8);
            }
            n++;
        }
    }
    return n;
}

/* Writes all-ones to the BAR dword at off, returns what reads back, restores the original. */
static uint32_t probe_bar(const struct pci_func *f, uint8_t off, uint32_t *orig)
{
    *orig = pci_read32(f->bus, f->dev, f->fn, off);
    pci_write32(f->bus, f->dev, f->fn, off, 0xFFFFFFFFu);
    uint32_t r = pci_read32(f->bus, f->dev, f->fn, off);
    pci_write32(f->bus, f->dev, f->fn, off, *orig);
    return r;
}

int pci_decode_bars(const struct pci_func *f, struct pci_bar *out, int max)
{
    int nbars = f->header_type == 0 ? 6 : f->header_type == 1 ? 2 : 0;
    int n = 0;
    /* Disable decoding while a BAR holds all-ones, so it never claims a bogus window. */
    uint16_t cmd = pci_read16(f->bus, f->dev, f->fn, 0x04);
    pci_write16(f->bus, f->dev, f->fn, 0x04, cmd & ~0x3);

    for (int i = 0; i < nbars; i++) {
        uint8_t off = (uint8_t)(0x10 + 4 * i);
        uint32_t orig, r = probe_bar(f, off, &orig);
        struct pci_bar bar = { .index = i };
        if (orig & 1) { /* I/O BAR */
            uint32_t mask = r & ~0x3u;
            if (mask == 0)
                continue;
            if ((mask >> 16) == 0)
                mask |= 0xFFFF0000u; /* 16-bit I/O decoders read back 0 in the upper half */
            bar.is_io = 1;
            bar.addr = orig & ~0x3u;
            bar.size = (uint32_t)(~mask + 1);
        } else {
            uint64_t mask = r & ~0xFull;
            bar.prefetchable = (orig >> 3) & 1;
            bar.addr = orig & ~0xFu;
            if (((orig >> 1) & 3) == 2 && i + 1 < nbars) { /* 64-bit: next BAR is the high half */
                uint32_t orig_hi, r_hi = probe_bar(f, (uint8_t)(off + 4), &orig_hi);
                mask |= (uint64_t)r_hi << 32;
                bar.addr |= (uint64_t)orig_hi << 32;
                bar.is_64 = 1;
                i++;
            } else {
                mask |= 0xFFFFFFFF00000000ull;
            }
            if ((uint32_t)mask == 0 && (mask >> 32) == 0xFFFFFFFFu)
                continue; /* unimplemented 32-bit BAR */
            if (mask == 0)
                continue;
            bar.size = ~mask + 1;
        }
        if (n < max)
            out[n++] = bar;
    }
    pci_write16(f->bus, f->dev, f->fn, 0x04, cmd);
    return n;
}

int pci_find_device(uint16_t vendor, uint16_t device, struct pci_func *out)
{
    struct pci_func all[64];
    int n = pci_enumerate_bus0(all, 64);
    for (int i = 0; i < n && i < 64; i++) {
        if (all[i].vendor == vendor && all[i].device == device) {
            *out = all[i];
            return 0;
        }
    }
    return -1;
}
