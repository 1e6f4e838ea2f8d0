#include "devices/pci/pci_host_bridge.h"

namespace iovmm::devices {

PciIdentity PciHostBridge::identity() {
  return PciIdentity{.vendor_id = kVendorIntel,
                     .device_id = kDevice82441,
                     .revision = kRevision,
                     .class_code = kClassHostBridge,
                     .subsystem_vendor_id = 0x1af4,
                     .subsystem_id = 0x1100,
                     .interrupt_pin = 0,
                     .status = 0};
}

PciHostBridge::PciHostBridge(std::string name) : PciDevice(std::move(name), identity(), {}) {}

}  // namespace iovmm::devices
