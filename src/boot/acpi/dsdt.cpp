// The DSDT: what the guest cannot enumerate by itself. \_SB.PCI0 is the PCI host bridge with the bus numbers, I/O
// ports and MMIO window it decodes; COMn are the 16550 UARTs; \_SB.Cnnn are processor devices matching the MADT's
// processor UIDs; extra MMIO devices (virtio-mmio) get _HID/_UID/_CRS; \_S5 tells the OS how to power off.
#include <fmt/core.h>

#include <algorithm>
#include <cctype>

#include "boot/acpi/aml.h"
#include "boot/acpi/append.h"
#include "boot/acpi/tables.h"
#include "common/error.h"

namespace iovmm::boot::acpi {
namespace {

using aml::Bytes;
namespace res = aml::resource;

// Compressed EISA id for "ABC1234"; a string for anything else ("LNRO0005", "ACPI0007").
Bytes hardware_id(const std::string& hid) {
  const bool eisa_shaped = hid.size() == 7 && std::all_of(hid.begin(), hid.begin() + 3, [](char c) {
                             return c >= 'A' && c <= 'Z';
                           }) && std::all_of(hid.begin() + 3, hid.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
  return eisa_shaped ? aml::eisa_id(hid) : aml::string(hid);
}

Bytes status_present_enabled() {
  // Present, enabled, shown in UI, functioning.
  return aml::method("_STA", 0, false, {aml::return_value(aml::integer(0x0F))});
}

Bytes pci_host_bridge(const AcpiConfig& config) {
  const uint64_t window_end = config.pci_mmio_window.end() - 1;
  if (window_end > UINT32_MAX || config.pci_mmio_window.size == 0) {
    throw UsageError(fmt::format("ACPI: PCI MMIO window {:#x}+{:#x} must lie below 4 GiB",
                                 config.pci_mmio_window.start, config.pci_mmio_window.size));
  }
  // The configuration ports 0xCF8-0xCFF are the bridge's own; every other port is forwarded to the bus.
  const Bytes crs = aml::resource_template({
      res::word_bus_number(0x00, 0xFF),
      res::io(0x0CF8, 0x0CF8, 1, 8),
      res::word_io(0x0000, 0x0CF7),
      res::word_io(0x0D00, 0xFFFF),
      res::dword_memory(static_cast<uint32_t>(config.pci_mmio_window.start), static_cast<uint32_t>(window_end),
                        false),
  });
  return aml::device("PCI0", {
                                 aml::name("_HID", aml::eisa_id("PNP0A03")),
                                 aml::name("_UID", aml::integer(0)),
                                 aml::name("_ADR", aml::integer(0)),
                                 aml::name("_BBN", aml::integer(0)),
                                 aml::name("_CRS", crs),
                             });
}

Bytes serial_port(size_t index, const SerialPortConfig& port) {
  const Bytes crs = aml::resource_template({res::io(port.io_base, port.io_base, 1, 8), res::irq_no_flags(port.irq)});
  return aml::device(fmt::format("COM{}", index + 1), {
                                                          aml::name("_HID", aml::eisa_id("PNP0501")),
                                                          aml::name("_UID", aml::integer(index + 1)),
                                                          status_present_enabled(),
                                                          aml::name("_CRS", crs),
                                                      });
}

Bytes processor(uint32_t index) {
  return aml::device(fmt::format("C{:03X}", index), {
                                                        aml::name("_HID", aml::string("ACPI0007")),
                                                        aml::name("_UID", aml::integer(index)),
                                                    });
}

Bytes mmio_device(size_t index, const MmioDeviceConfig& dev) {
  if (dev.mmio_size == 0 || dev.mmio_base > UINT32_MAX || dev.mmio_size > UINT32_MAX ||
      dev.mmio_base + dev.mmio_size - 1 > UINT32_MAX) {
    throw UsageError(fmt::format("ACPI: device {} at {:#x}+{:#x} must lie below 4 GiB", dev.hid, dev.mmio_base,
                                 dev.mmio_size));
  }
  const Bytes crs = aml::resource_template({
      res::memory32_fixed(static_cast<uint32_t>(dev.mmio_base), static_cast<uint32_t>(dev.mmio_size), true),
      res::extended_interrupt(dev.irq, {.level_triggered = dev.level_triggered}),
  });
  return aml::device(fmt::format("V{:03X}", index), {
                                                        aml::name("_HID", hardware_id(dev.hid)),
                                                        aml::name("_UID", aml::integer(dev.uid)),
                                                        status_present_enabled(),
                                                        aml::name("_CRS", crs),
                                                    });
}

}  // namespace

Bytes build_dsdt(const AcpiConfig& config) {
  if (config.serial_ports.size() > 9 || config.mmio_devices.size() > 0xFFF || config.cpu_count > 0xFFF) {
    throw UsageError("ACPI: too many devices for the DSDT's naming scheme");
  }
  std::vector<Bytes> system_bus{pci_host_bridge(config)};
  for (size_t i = 0; i < config.serial_ports.size(); ++i) system_bus.push_back(serial_port(i, config.serial_ports[i]));
  for (uint32_t cpu = 0; cpu < config.cpu_count; ++cpu) system_bus.push_back(processor(cpu));
  for (size_t i = 0; i < config.mmio_devices.size(); ++i) system_bus.push_back(mmio_device(i, config.mmio_devices[i]));

  Bytes body = aml::scope("\\_SB", system_bus);
  // SLP_TYPa, SLP_TYPb, reserved, reserved.
  const Bytes s5 = aml::name("\\_S5", aml::package({aml::integer(config.s5_sleep_type),
                                                     aml::integer(config.s5_sleep_type), aml::integer(0),
                                                     aml::integer(0)}));
  append_bytes(body, s5);
  // Revision 2: integers are 64 bits wide.
  return make_table("DSDT", 2, body);
}

}  // namespace iovmm::boot::acpi
