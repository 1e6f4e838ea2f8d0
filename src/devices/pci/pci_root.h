// PCI configuration mechanism #1 (ports 0xCF8..0xCFF) in front of bus 0: how a PC guest reaches every function's
// configuration space.
//
// Models: CONFIG_ADDRESS at 0xCF8 (enable bit 31, bus 23..16, device 15..11, function 10..8, register 7..0), latched
// only by 32-bit writes (as in QEMU; narrower writes there are other chipset registers) and readable at any width;
// CONFIG_DATA at 0xCFC..0xCFF with 1/2/4-byte accesses at any lane, reaching register (address | (port - 0xCFC)) &
// 0xFF as QEMU computes it (so CONFIG_ADDRESS's low bits count: 0x80000002 and a word at 0xCFC read the device ID);
// an access running past offset 0xFF is clamped there, its missing bytes reading 0 (QEMU does the same).
// With the enable bit clear, for other buses, and for absent functions, reads return all-ones (vendor 0xFFFF, what
// a master abort looks like) and writes are dropped. Optionally the PIIX reset control register at 0xCF9 (byte
// accesses; RST_CPU = bit 2 requests a reset), which shares this port range on PC chipsets.
// Leaves out: buses other than 0 (no PCI-to-PCI bridges), type-1 forwarding, the MMCONFIG (ECAM) window.
// Spec: PCI Local Bus Specification 3.0, section 3.2.2.3.2; Intel 82371SB PIIX3 datasheet (RC register, 0xCF9).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "devices/pci/pci_device.h"
#include "io/device.h"

namespace iovmm::devices {

class PciRoot final : public io::Device {
 public:
  static constexpr uint16_t kIoBase = 0xCF8;
  static constexpr uint64_t kRegionSize = 8;
  static constexpr unsigned kSlots = 32;
  static constexpr unsigned kFunctions = 8;

  struct FunctionRef {
    uint8_t slot;
    uint8_t function;
    std::shared_ptr<PciDevice> device;
  };

  // `reset_request`, when set, is called for a guest write of RST_CPU to the reset control register at 0xCF9 (on
  // the vCPU thread, with the root's mutex held; it should only request the reset). When empty, 0xCF9 behaves as
  // part of CONFIG_ADDRESS.
  explicit PciRoot(std::string name = "pci-cfg", std::function<void()> reset_request = {});

  // Set-up API: places `device` at 00:slot.function. Throws Error for a taken or invalid slot/function. Marks
  // function 0 multi-function when a slot holds more than one function.
  void attach(unsigned slot, unsigned function, std::shared_ptr<PciDevice> device);
  [[nodiscard]] std::shared_ptr<PciDevice> function(unsigned slot, unsigned function);
  // Every attached function in bus/device/function order (the order firmware enumerates them).
  [[nodiscard]] std::vector<FunctionRef> functions();

  [[nodiscard]] uint64_t read(unsigned region, uint64_t offset, unsigned size) override;
  [[nodiscard]] std::span<const io::RegisterBlock> register_blocks() const override;
  void write(unsigned region, uint64_t offset, unsigned size, uint64_t value) override;

 private:
  // The function CONFIG_ADDRESS selects, or null (disabled, other bus, absent). Root mutex held.
  [[nodiscard]] PciDevice* selected_function() const;

  std::function<void()> reset_request_;
  uint32_t address_ = 0;
  uint8_t reset_control_ = 0;
  std::array<std::array<std::shared_ptr<PciDevice>, kFunctions>, kSlots> functions_{};
};

}  // namespace iovmm::devices
