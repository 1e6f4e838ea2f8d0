/* PCI configuration mechanism #1 (ports 0xCF8 address / 0xCFC-0xCFF data), bus 0 enumeration
 * and BAR decoding. Spec: PCI Local Bus Specification 3.0, sections 3.2.2.3.2 and 6.2.5. */
#ifndef GUEST_PCI_H
#define GUEST_PCI_H

#include <stdint.h>

#define PCI_CONFIG_ADDRESS 0xCF8
#define PCI_CONFIG_DATA 0xCFC

uint32_t pci_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off);
uint16_t pci_read16(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off);
uint8_t pci_read8(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off);
void pci_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint32_t v);
void pci_write16(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint16_t v);
void pci_write8(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint8_t v);

struct pci_func {
    uint8_t bus, dev, fn;
    uint8_t header_type; /* without the multifunction bit */
    uint16_t vendor, device;
    uint16_t class_code; /* base class << 8 | subclass */
    uint8_t prog_if;
};

/* Fills out[] with the functions on bus 0 in bus:dev.fn order; returns how many were found
 * (may exceed max: only the first max are stored). */
int pci_enumerate_bus0(struct pci_func *out, int max);

struct pci_bar {
    int index;      /* BAR number 0-5 (a 64-bit BAR is reported at its low half) */
    int is_io;
    int is_64;
    int prefetchable;
    uint64_t addr;  /* as programmed, flags stripped */
    uint64_t size;
};

/* Decodes the BARs of a type-0 (6 BARs) or type-1 (2 BARs) function, sizing each by writing
 * all-ones and restoring it, with I/O and memory decoding disabled meanwhile. Returns the
 * number of implemented (non-zero-size) BARs stored in out[]. */
int pci_decode_bars(const struct pci_func *f, struct pci_bar *out, int max);

/* Finds the first function with this vendor:device on bus 0; returns 0 if found. */
int pci_find_device(uint16_t vendor, uint16_t device, struct pci_func *out);

#endif
