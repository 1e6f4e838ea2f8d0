// Function 0 of the Intel PIIX3 (PCI 8086:7000, class 0x060100): the PCI-to-ISA bridge, present so that a guest
// scanning slot 1 finds the multifunction device whose function 1 is the IDE controller (a slot without function 0
// is not scanned). Its header type says multifunction.
// Models: the identity and the configuration registers a guest reads or writes at boot, as plain storage with the
// reset values of QEMU's piix3 (ISA I/O recovery 0x4C, X-bus chip select 0x4E, PIRQ route control 0x60-0x63 =
// 0x80 "disabled", top of memory 0x69, motherboard IRQ/DMA routing 0x70-0x79, APIC base 0x80, deterministic latency
// 0x82, SMI/power management 0xA0-0xAF).
// Leaves out: everything the registers would control. ISA devices, the PIC, PIT, DMA controller and RTC are the
// machine's own; PCI interrupt routing is fixed by the machine (ACPI _PRT), so PIRQ writes are stored, not acted on.
// Spec: Intel 82371SB (PIIX3) datasheet, section 2.2 (PCI-to-ISA bridge configuration registers).
#pragma once

#include <memory>

#include "devices/pci/pci_device.h"

namespace iovmm::devices {

[[nodiscard]] std::shared_ptr<PciDevice> make_piix3_isa_bridge();

}  // namespace iovmm::devices
