#include "devices/ide/piix3_isa.h"

#include <cstdint>
#include <utility>

namespace iovmm::devices {
namespace {

constexpr uint16_t kVendorId = 0x8086;          // Intel
constexpr uint16_t kDeviceId = 0x7000;          // 82371SB PIIX3 ISA
constexpr uint32_t kClassCode = 0x060100;       // bridge, PCI-to-ISA
constexpr uint16_t kStatusDevselMedium = 0x0200;
constexpr uint8_t kCommandReset = 0x07;         // I/O, memory and bus master enabled, as QEMU resets it

// (offset, reset value) of the byte-wide storage registers; all of them read/write.
constexpr std::pair<uint8_t, uint8_t> kRegisters[] = {
    {0x4C, 0x4D}, {0x4D, 0x00}, {0x4E, 0x03}, {0x4F, 0x00},                // IORT, XBCS
    {0x60, 0x80}, {0x61, 0x80}, {0x62, 0x80}, {0x63, 0x80},                // PIRQRC[A:D]: routing disabled
    {0x69, 0x02}, {0x6A, 0x00}, {0x6B, 0x00},                              // TOM, MSTAT
    {0x70, 0x80}, {0x76, 0x0C}, {0x77, 0x0C}, {0x78, 0x02}, {0x79, 0x00},  // MBIRQ0, MBDMA, PCSC
    {0x80, 0x00}, {0x82, 0x00},                                            // APICBASE, DLC
    {0xA0, 0x08}, {0xA2, 0x00}, {0xA3, 0x00}, {0xA4, 0x00}, {0xA5, 0x00},  // SMICNTL, SMIEN, SEE
    {0xA6, 0x00}, {0xA7, 0x00}, {0xA8, 0x0F}, {0xAA, 0x00}, {0xAB, 0x00},  // FTMR, SMIREQ
    {0xAC, 0x00}, {0xAE, 0x00},                                            // CTLTMR, CTHTMR
};

class Piix3IsaBridge final : public PciDevice {
 public:
  Piix3IsaBridge()
      : PciDevice("piix3-isa",
                  PciIdentity{.vendor_id = kVendorId,
                              .device_id = kDeviceId,
                              .revision = 0,
                              .class_code = kClassCode,
                              .subsystem_vendor_id = 0x1af4,
                              .subsystem_id = 0x1100,
                              .interrupt_pin = 0,
                              .status = kStatusDevselMedium},
                  {}) {
    auto& config = config_bytes();
    auto& writable = writable_bits();
    config[pci_config::kCommand] = kCommandReset;
    for (auto [offset, reset] : kRegisters) {
      config[offset] = reset;
      writable[offset] = 0xFF;
    }
  }
};

}  // namespace

std::shared_ptr<PciDevice> make_piix3_isa_bridge() {
  auto bridge = std::make_shared<Piix3IsaBridge>();
  bridge->set_multifunction(true);
  return bridge;
}

}  // namespace iovmm::devices
