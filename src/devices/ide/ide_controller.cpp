#include "devices/ide/ide_controller.h"

#include <fmt/core.h>

#include "common/error.h"

namespace iovmm::devices {
namespace {

using io::Access;
using io::Effect;
using io::Register;

// A command block's registers. Reset values are what a channel with a disk reads at power-on (signature, diagnostic
// code 01h, DRDY|DSC); an empty channel reads 0 everywhere.
constexpr std::array<Register, 8> command_block(bool populated) {
  auto value = [populated](uint64_t v) { return populated ? v : 0; };
  return {{
      {"data", 0, 2, Access::rw, Effect::synchronous},
      {"features", 1, 1, Access::rw, Effect::latch, value(0x01)},
      {"sector_count", 2, 1, Access::rw, Effect::latch, value(0x01)},
      {"lba_low", 3, 1, Access::rw, Effect::latch, value(0x01)},
      {"lba_mid", 4, 1, Access::rw, Effect::latch},
      {"lba_high", 5, 1, Access::rw, Effect::latch},
      {"device", 6, 1, Access::rw, Effect::latch, value(0xA0)},
      {"command", 7, 1, Access::rw, Effect::synchronous, value(0x50)},
  }};
}
constexpr auto kPrimaryRegisters = command_block(true);
constexpr auto kSecondaryRegisters = command_block(false);
constexpr Register kPrimaryControlRegisters[] = {{"device_control", 0, 1, Access::rw, Effect::synchronous, 0x50}};
constexpr Register kSecondaryControlRegisters[] = {{"device_control", 0, 1, Access::rw, Effect::synchronous, 0}};
constexpr Register kBusMasterRegisters[] = {
    {"bm_command", 0, 1, Access::rw, Effect::synchronous},
    {"bm_status", 2, 1, Access::rw, Effect::synchronous},
    {"bm_prd", 4, 4, Access::rw, Effect::latch},
    {"bm2_command", 8, 1, Access::rw, Effect::synchronous},
    {"bm2_status", 10, 1, Access::rw, Effect::synchronous},
    {"bm2_prd", 12, 4, Access::rw, Effect::latch},
};
constexpr io::RegisterBlock kBlocks[] = {
    {IdeController::kPrimaryCommand, "primary", kPrimaryRegisters},
    {IdeController::kPrimaryControl, "primary_control", kPrimaryControlRegisters},
    {IdeController::kSecondaryCommand, "secondary", kSecondaryRegisters},
    {IdeController::kSecondaryControl, "secondary_control", kSecondaryControlRegisters},
    {IdeController::kBusMaster, "bus_master", kBusMasterRegisters},
};

PciIdentity ide_identity() {
  return PciIdentity{.vendor_id = IdeController::kVendorId,
                     .device_id = IdeController::kDeviceId,
                     .revision = 0,
                     .class_code = IdeController::kClassCode,
                     .subsystem_vendor_id = 0x1af4,
                     .subsystem_id = 0x1100,
                     .interrupt_pin = 0,  // legacy mode: IRQ 14/15, no INTx
                     .status = IdeController::kStatus};
}

GuestMemory* require_memory(const std::string& name, const DeviceContext& context) {
  if (!context.memory) throw UsageError(fmt::format("{}: the IDE controller needs guest memory for DMA", name));
  if (!context.isa_irq) throw UsageError(fmt::format("{}: the IDE controller needs ISA interrupts 14 and 15", name));
  return context.memory;
}

std::unique_ptr<ide::AtaDisk> make_disk(const std::string& name, std::unique_ptr<block::Backend> backend) {
  if (!backend) return nullptr;
  return std::make_unique<ide::AtaDisk>(std::move(backend), name + " primary master");
}

}  // namespace

IdeController::IdeController(std::string name, std::unique_ptr<block::Backend> primary_master,
                             const DeviceContext& context)
    : PciDevice(name, ide_identity(), {BarSpec{.index = kBusMaster, .size = kBusMasterSize, .kind = BarKind::io}}),
      channels_{ide::IdeChannel(name + " primary", make_disk(name, std::move(primary_master)),
                                context.isa_irq ? context.isa_irq(kPrimaryIrq) : nullptr,
                                require_memory(name, context)),
                ide::IdeChannel(name + " secondary", nullptr,
                                context.isa_irq ? context.isa_irq(kSecondaryIrq) : nullptr, context.memory)} {
  auto& config = config_bytes();
  auto& writable = writable_bits();
  for (unsigned offset : {kIdeTimingPrimary, kIdeTimingSecondary}) {
    config[offset + 1] = 0x80;  // IDE decode enable, as firmware leaves it
    writable[offset] = writable[offset + 1] = 0xFF;
  }
  writable[kSlaveTiming] = 0xFF;
}

IdeController::~IdeController() = default;

std::vector<FixedWindow> IdeController::legacy_windows() {
  return {
      {kPrimaryCommand, io::Space::pio, kPrimaryCommandBase, ide::IdeChannel::kCommandBlockSize},
      {kPrimaryControl, io::Space::pio, kPrimaryControlBase, 1},
      {kSecondaryCommand, io::Space::pio, kSecondaryCommandBase, ide::IdeChannel::kCommandBlockSize},
      {kSecondaryControl, io::Space::pio, kSecondaryControlBase, 1},
  };
}

std::span<const io::RegisterBlock> IdeController::register_blocks() const { return kBlocks; }

void IdeController::quiesce() {
  std::lock_guard lock(mutex());
  for (auto& channel : channels_) channel.detach_irq();
}

uint64_t IdeController::bar_read(unsigned bar, uint64_t offset, unsigned size) {
  if (!io::valid_access_size(size)) return ~0ull;
  switch (bar) {
    case kBusMaster: {
      uint64_t value = 0;
      for (unsigned i = 0; i < size; ++i) {
        uint64_t byte_offset = offset + i;
        uint64_t byte = byte_offset < kBusMasterSize
                            ? channels_[byte_offset / ide::BusMaster::kSize].read_bus_master(
                                  static_cast<unsigned>(byte_offset % ide::BusMaster::kSize))
                            : 0xFF;
        value |= byte << (8 * i);
      }
      return value;
    }
    case kPrimaryCommand:
    case kSecondaryCommand:
      if (offset >= ide::IdeChannel::kCommandBlockSize) return ~0ull;
      return channels_[bar == kSecondaryCommand].read_command_block(static_cast<unsigned>(offset), size);
    case kPrimaryControl:
    case kSecondaryControl:
      if (offset != 0) return ~0ull;
      // One byte wide; a wider access gets ones above it, like an unmapped neighbour.
      return (~0ull << 8) | channels_[bar == kSecondaryControl].read_alternate_status();
    default:
      return ~0ull;
  }
}

void IdeController::bar_write(unsigned bar, uint64_t offset, unsigned size, uint64_t value) {
  if (!io::valid_access_size(size)) return;
  switch (bar) {
    case kBusMaster:
      for (unsigned i = 0; i < size; ++i) {
        uint64_t byte_offset = offset + i;
        if (byte_offset >= kBusMasterSize) break;
        channels_[byte_offset / ide::BusMaster::kSize].write_bus_master(
            static_cast<unsigned>(byte_offset % ide::BusMaster::kSize), static_cast<uint8_t>(value >> (8 * i)));
      }
      return;
    case kPrimaryCommand:
    case kSecondaryCommand:
      if (offset >= ide::IdeChannel::kCommandBlockSize) return;
      channels_[bar == kSecondaryCommand].write_command_block(static_cast<unsigned>(offset), size, value);
      return;
    case kPrimaryControl:
    case kSecondaryControl:
      if (offset == 0) channels_[bar == kSecondaryControl].write_device_control(static_cast<uint8_t>(value));
      return;
    default:
      return;
  }
}

}  // namespace iovmm::devices
