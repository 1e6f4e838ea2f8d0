// The host bridge at 00:00.0 that a guest finds on QEMU's "-M pc": Intel 82441FX (i440FX) PMC, 8086:1237 rev 02,
// class 0x060000 (host bridge), subsystem 1af4:1100 — so the guest enumerates the same IDs under both VMMs.
//
// Models: the identity in the standard header; everything else is the plain PciDevice behaviour (no BARs).
// Leaves out: the chipset registers past the header (PAM shadowing at 0x59..0x5F, SMRAM at 0x72, DRAM rows): they
// read 0 and ignore writes, since guest RAM is fixed by the machine and there is no SMM.
// Spec: Intel 440FX PCIset datasheet (82441FX PMC), section 3.2 (configuration registers).
#pragma once

#include "devices/pci/pci_device.h"

namespace iovmm::devices {

class PciHostBridge final : public PciDevice {
 public:
  static constexpr uint16_t kVendorIntel = 0x8086;
  static constexpr uint16_t kDevice82441 = 0x1237;
  static constexpr uint8_t kRevision = 0x02;
  static constexpr uint32_t kClassHostBridge = 0x060000;

  [[nodiscard]] static PciIdentity identity();

  explicit PciHostBridge(std::string name = "i440fx");
};

}  // namespace iovmm::devices
