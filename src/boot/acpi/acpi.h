// ACPI tables for the pc-like machine: RSDP, RSDT, XSDT, FADT (+FACS), MADT and a DSDT describing the PCI host
// bridge, serial ports, \_S5 and extra MMIO devices (virtio-mmio). The machine calls write_acpi_tables() once before
// loading the kernel and passes the returned RSDP address to the boot protocol.
// Reference: ACPI 6.x chapters 5.2 (tables) and 20 (AML); QEMU hw/i386/acpi-build.c for what a pc guest expects.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "boot/layout.h"
#include "memory/guest_memory.h"

namespace iovmm::boot::acpi {

struct SerialPortConfig {
  uint16_t io_base;
  uint8_t irq;
};

// A device the guest cannot discover by itself, such as virtio-mmio ("LNRO0005").
struct MmioDeviceConfig {
  std::string hid;  // "PNP0501"-style EISA ids are compressed; anything else becomes a string _HID
  uint32_t uid = 0;
  uint64_t mmio_base = 0;
  uint64_t mmio_size = 0;
  uint32_t irq = 0;  // a GSI on the IOAPIC
  bool level_triggered = false;
};

struct AcpiConfig {
  uint32_t cpu_count = 1;
  uint64_t ioapic_address = kIoapicAddress;
  uint8_t ioapic_id = 0;
  uint64_t lapic_address = kLapicAddress;
  uint16_t pm1a_evt_blk = 0x600;
  uint16_t pm1a_cnt_blk = 0x604;
  uint16_t pm_tmr_blk = 0x608;
  uint8_t sci_irq = 9;
  uint8_t s5_sleep_type = 0;  // SLP_TYPa/b value the guest writes to PM1a_CNT to power off
  std::vector<SerialPortConfig> serial_ports = {{0x3F8, 4}};
  GuestArea pci_mmio_window = kPciMmioWindow;
  std::vector<MmioDeviceConfig> mmio_devices;
};

struct AcpiTable {
  std::string signature;  // "RSDP" for the root pointer, else the table's own signature
  uint64_t address;
  std::vector<uint8_t> bytes;
};

// Every table, laid out from `area.start` (RSDP first), with checksums set. Throws UsageError when the
// configuration cannot be described (too many CPUs, MMIO device above 4 GiB) or the tables do not fit in `area`.
[[nodiscard]] std::vector<AcpiTable> build_acpi_tables(const AcpiConfig& config, GuestArea area = kAcpiArea);

// Builds the tables and writes them to guest memory; returns the RSDP address.
[[nodiscard]] uint64_t write_acpi_tables(GuestMemory& memory, const AcpiConfig& config);

}  // namespace iovmm::boot::acpi
