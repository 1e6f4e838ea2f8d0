#include "devices/pci/pci_root.h"

#include <fmt/core.h>

#include <algorithm>
#include <mutex>

#include "common/error.h"
#include "common/log.h"

namespace iovmm::devices {
namespace {
// CONFIG_ADDRESS would be a latch, but its second byte is PIIX's reset control register (0xCF9): synchronous.
constexpr io::Register kPciRootRegisters[] = {
    {"config_address", 0, 4, io::Access::rw, io::Effect::synchronous},
    {"config_data", 4, 4, io::Access::rw, io::Effect::synchronous},
};
constexpr io::RegisterBlock kPciRootBlocks[] = {{0, "cf8", kPciRootRegisters}};
}  // namespace

namespace {

constexpr uint64_t kAddressPort = 0;  // offsets inside the 0xCF8 window
constexpr uint64_t kResetControlPort = 1;
constexpr uint64_t kDataPort = 4;

constexpr uint32_t kAddressEnable = 1u << 31;
constexpr uint8_t kResetControlSystemReset = 1u << 1;
constexpr uint8_t kResetControlResetCpu = 1u << 2;
constexpr uint8_t kResetControlFullReset = 1u << 3;
constexpr uint8_t kResetControlStored = kResetControlSystemReset | kResetControlFullReset;

// Mechanism #1 reaches the 256-byte configuration space only (no extended space without ECAM).
constexpr unsigned kConfigSpaceSize = 256;

// The configuration register a data access at 0xCFC + lane starts at. The lane is ORed into CONFIG_ADDRESS with its
// low two bits kept, as QEMU does (pci_host_data_read/write: config_reg | (addr & 3), then & 0xFF): test libraries
// write a register's low bits into CONFIG_ADDRESS (0x80000002) and read 2 bytes at 0xCFC to get the device ID. For
// the usual aligned CONFIG_ADDRESS this is the textbook (address & 0xFC) + lane.
unsigned config_register(uint32_t address, uint64_t lane) { return (address | static_cast<uint32_t>(lane)) & 0xFF; }

// The bytes of an access that lie inside the configuration space: one that runs past its end (a dword at 0xFE) is
// clamped, as QEMU's pci_host_config_read/write_common do (MIN(len, limit - addr)); the bytes past the end read 0
// and are not written.
unsigned clamp_to_config_space(unsigned reg, unsigned size) { return std::min(size, kConfigSpaceSize - reg); }

// PciDevice takes accesses of 1, 2 or 4 bytes; a clamped access of 3 bytes (a dword at 0xFD) is a word and a byte.
uint32_t read_function(PciDevice& function, unsigned reg, unsigned size) {
  if (size == 3) return function.config_read(reg, 2) | function.config_read(reg + 2, 1) << 16;
  return function.config_read(reg, size);
}

void write_function(PciDevice& function, unsigned reg, unsigned size, uint32_t value) {
  if (size == 3) {
    function.config_write(reg, 2, value & 0xFFFF);
    function.config_write(reg + 2, 1, (value >> 16) & 0xFF);
    return;
  }
  function.config_write(reg, size, value & static_cast<uint32_t>(io::size_mask(size)));
}

}  // namespace

PciRoot::PciRoot(std::string name, std::function<void()> reset_request)
    : io::Device(std::move(name)), reset_request_(std::move(reset_request)) {}

void PciRoot::attach(unsigned slot, unsigned function, std::shared_ptr<PciDevice> device) {
  if (!device) throw Error("pci: attach without a device");
  if (slot >= kSlots || function >= kFunctions) {
    throw Error(fmt::format("pci: {} at 00:{:02x}.{}: no such slot/function", device->name(), slot, function));
  }
  std::lock_guard lock(mutex());
  auto& place = functions_[slot][function];
  if (place) {
    throw Error(fmt::format("pci: {} at 00:{:02x}.{}: already taken by {}", device->name(), slot, function,
                            place->name()));
  }
  place = std::move(device);
  unsigned present = 0;
  for (const auto& fn : functions_[slot]) present += fn != nullptr;
  // Software scans functions 1..7 only when function 0's header type says the device is multi-function.
  if (functions_[slot][0]) functions_[slot][0]->set_multifunction(present > 1);
}

std::shared_ptr<PciDevice> PciRoot::function(unsigned slot, unsigned function) {
  if (slot >= kSlots || function >= kFunctions) return nullptr;
  std::lock_guard lock(mutex());
  return functions_[slot][function];
}

std::vector<PciRoot::FunctionRef> PciRoot::functions() {
  std::lock_guard lock(mutex());
  std::vector<FunctionRef> result;
  for (unsigned slot = 0; slot < kSlots; ++slot) {
    for (unsigned fn = 0; fn < kFunctions; ++fn) {
      if (functions_[slot][fn]) {
        result.push_back(
            FunctionRef{static_cast<uint8_t>(slot), static_cast<uint8_t>(fn), functions_[slot][fn]});
      }
    }
  }
  return result;
}

PciDevice* PciRoot::selected_function() const {
  if (!(address_ & kAddressEnable)) return nullptr;
  unsigned bus = (address_ >> 16) & 0xFF;
  unsigned slot = (address_ >> 11) & 0x1F;
  unsigned fn = (address_ >> 8) & 0x7;
  if (bus != 0) return nullptr;
  return functions_[slot][fn].get();
}

uint64_t PciRoot::read(unsigned region, uint64_t offset, unsigned size) {
  if (region != 0) return ~0ull;
  if (offset < kDataPort) {
    if (reset_request_ && offset == kResetControlPort && size == 1) return reset_control_;
    // CONFIG_ADDRESS reads back at any width; each byte lane sees its part of the register.
    return (address_ >> (8 * offset)) & io::size_mask(size);
  }
  PciDevice* target = selected_function();
  if (!target) return io::size_mask(size);  // master abort: all-ones, so vendor reads 0xFFFF
  const unsigned reg = config_register(address_, offset - kDataPort);
  // Lock order: the bus holds the root's mutex; the function's comes second.
  std::lock_guard lock(target->mutex());
  return read_function(*target, reg, clamp_to_config_space(reg, size));
}

void PciRoot::write(unsigned region, uint64_t offset, unsigned size, uint64_t value) {
  if (region != 0) return;
  if (offset < kDataPort) {
    if (offset == kAddressPort && size == 4) {
      address_ = static_cast<uint32_t>(value);
    } else if (reset_request_ && offset == kResetControlPort && size == 1) {
      auto rc = static_cast<uint8_t>(value);
      reset_control_ = rc & kResetControlStored;
      if (rc & kResetControlResetCpu) reset_request_();
    } else {
      IOVMM_LOG_RATELIMITED("{}: {}-byte write of {:#x} at 0xcf8+{}: CONFIG_ADDRESS latches 32-bit writes only",
                            name(), size, value, offset);
    }
    return;
  }
  PciDevice* target = selected_function();
  if (!target) return;
  const unsigned reg = config_register(address_, offset - kDataPort);
  std::lock_guard lock(target->mutex());
  write_function(*target, reg, clamp_to_config_space(reg, size), static_cast<uint32_t>(value));
}

std::span<const io::RegisterBlock> PciRoot::register_blocks() const { return kPciRootBlocks; }

}  // namespace iovmm::devices
