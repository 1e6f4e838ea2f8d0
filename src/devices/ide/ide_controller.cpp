#include "devices/ide/ide_controller.h"

#include <fmt/core.h>

#include <string_view>

#include "common/error.h"

namespace iovmm::devices {
namespace {

using io::Access;
using io::Effect;
using io::Register;
using ide::BusMasterRegister;
using ide::CommandRegister;
using ide::TaskFile;

// A read/write register; `id` is the CommandRegister or BusMasterRegister the channel switches on.
template <typename Id>
constexpr Register reg(std::string_view name, Id id, uint64_t offset, unsigned width, Effect effect,
                       uint64_t reset = 0) {
  return Register{.name = name, .offset = offset, .width = width, .access = Access::rw, .effect = effect,
                  .reset_value = reset, .id = static_cast<uint16_t>(id)};
}

// A command block's registers. Reset values are what a channel with a disk reads at power-on (the signature, the
// diagnostic code in the error register, ready status); an empty channel reads 0 everywhere. The 16-bit data port
// comes last: its second byte is features', and a byte access there is named by features.
constexpr std::array<Register, 8> command_block(bool populated) {
  auto value = [populated](uint64_t v) { return populated ? v : 0; };
  return {{
      reg("features", CommandRegister::error_features, 1, 1, Effect::latch, value(ide::ata::kDiagnosticPassed)),
      reg("sector_count", CommandRegister::sector_count, 2, 1, Effect::latch, value(TaskFile::kSignatureCount)),
      reg("lba_low", CommandRegister::lba_low, 3, 1, Effect::latch, value(TaskFile::kSignatureLbaLow)),
      reg("lba_mid", CommandRegister::lba_mid, 4, 1, Effect::latch, value(TaskFile::kSignatureLbaMid)),
      reg("lba_high", CommandRegister::lba_high, 5, 1, Effect::latch, value(TaskFile::kSignatureLbaHigh)),
      reg("device", CommandRegister::device, 6, 1, Effect::latch, value(TaskFile::kSignatureDevice)),
      reg("command", CommandRegister::status_command, 7, 1, Effect::synchronous, value(ide::ata::kStatusReady)),
      reg("data", CommandRegister::data, 0, 2, Effect::synchronous),
  }};
}
constexpr auto kPrimaryRegisters = command_block(true);
constexpr auto kSecondaryRegisters = command_block(false);
// The control block's one register; its read is the alternate status.
constexpr Register control_block(bool populated) {
  return Register{.name = "device_control", .offset = 0, .width = 1, .access = Access::rw,
                  .effect = Effect::synchronous, .reset_value = populated ? ide::ata::kStatusReady : 0u};
}
constexpr Register kPrimaryControlRegisters[] = {control_block(true)};
constexpr Register kSecondaryControlRegisters[] = {control_block(false)};

// Both channels' bus master registers, the secondary's BusMaster::kSize bytes after the primary's.
constexpr std::array<Register, 6> bus_master_block() {
  constexpr std::string_view kNames[2][3] = {{"bm_command", "bm_status", "bm_prd"},
                                             {"bm2_command", "bm2_status", "bm2_prd"}};
  std::array<Register, 6> rows{};
  for (unsigned channel = 0; channel < 2; ++channel) {
    const uint64_t base = channel * ide::BusMaster::kSize;
    const auto* names = kNames[channel];
    rows[3 * channel + 0] = reg(names[0], BusMasterRegister::command, base + 0, 1, Effect::synchronous);
    rows[3 * channel + 1] = reg(names[1], BusMasterRegister::status, base + 2, 1, Effect::synchronous);
    rows[3 * channel + 2] = reg(names[2], BusMasterRegister::prd_address, base + 4, 4, Effect::latch);
  }
  return rows;
}
constexpr auto kBusMasterRegisters = bus_master_block();

constexpr io::RegisterBlock kBlocks[] = {
    {IdeController::kPrimaryCommand, "primary", kPrimaryRegisters},
    {IdeController::kPrimaryControl, "primary_control", kPrimaryControlRegisters},
    {IdeController::kSecondaryCommand, "secondary", kSecondaryRegisters},
    {IdeController::kSecondaryControl, "secondary_control", kSecondaryControlRegisters},
    {IdeController::kBusMaster, "bus_master", kBusMasterRegisters},
};

// `first`, the row of an access's first byte, is the data port and the access a 16- or 32-bit transfer (PIIX 32-bit
// PIO: two words); anything else reaches the command block's registers byte by byte.
bool is_data_transfer(const Register* first, uint64_t offset, unsigned size) {
  return first && static_cast<CommandRegister>(first->id) == CommandRegister::data && offset == first->offset &&
         (size == 2 || size == 4);
}

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
                                context.isa_irq ? context.isa_irq(kSecondaryIrq) : nullptr, context.memory)},
      // The two command blocks differ only in reset values: one map decodes both.
      command_map_(kPrimaryRegisters),
      control_map_(kPrimaryControlRegisters),
      bus_master_map_(kBusMasterRegisters) {
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
        uint64_t byte = 0xFF;  // past the window
        if (offset + i < kBusMasterSize) {
          const Register* row = bus_master_map_.find(offset + i, 1);
          byte = row ? bus_master_channel(*row).read_bus_master(static_cast<BusMasterRegister>(row->id),
                                                                static_cast<unsigned>(offset + i - row->offset))
                     : 0;  // reserved bytes
        }
        value |= byte << (8 * i);
      }
      return value;
    }
    case kPrimaryCommand:
    case kSecondaryCommand:
      return command_block_read(channels_[bar == kSecondaryCommand], offset, size);
    case kPrimaryControl:
    case kSecondaryControl:
      if (!control_map_.find(offset, 1)) return ~0ull;
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
      for (unsigned i = 0; i < size && offset + i < kBusMasterSize; ++i) {
        const Register* row = bus_master_map_.find(offset + i, 1);
        if (!row) continue;  // reserved bytes
        bus_master_channel(*row).write_bus_master(static_cast<BusMasterRegister>(row->id),
                                                  static_cast<unsigned>(offset + i - row->offset),
                                                  static_cast<uint8_t>(value >> (8 * i)));
      }
      return;
    case kPrimaryCommand:
    case kSecondaryCommand:
      command_block_write(channels_[bar == kSecondaryCommand], offset, size, value);
      return;
    case kPrimaryControl:
    case kSecondaryControl:
      if (control_map_.find(offset, 1)) {
        channels_[bar == kSecondaryControl].write_device_control(static_cast<uint8_t>(value));
      }
      return;
    default:
      return;
  }
}

ide::IdeChannel& IdeController::bus_master_channel(const io::Register& row) {
  return channels_[row.offset / ide::BusMaster::kSize];
}

uint64_t IdeController::command_block_read(ide::IdeChannel& channel, uint64_t offset, unsigned size) {
  const Register* first = command_map_.find(offset, 1);
  if (!first) return ~0ull;
  if (is_data_transfer(first, offset, size)) return channel.read_data(size);
  // Wider accesses to the other registers act as byte accesses in ascending order (QEMU's split).
  uint64_t value = 0;
  for (unsigned i = 0; i < size; ++i) {
    const Register* row = command_map_.find(offset + i, 1);
    if (!row) break;
    value |= uint64_t{channel.read_register(*row)} << (8 * i);
  }
  return value;
}

void IdeController::command_block_write(ide::IdeChannel& channel, uint64_t offset, unsigned size, uint64_t value) {
  const Register* first = command_map_.find(offset, 1);
  if (!first) return;
  if (is_data_transfer(first, offset, size)) {
    channel.write_data(size, static_cast<uint32_t>(value));
    return;
  }
  for (unsigned i = 0; i < size; ++i) {
    const Register* row = command_map_.find(offset + i, 1);
    if (!row) break;
    channel.write_register(*row, static_cast<uint8_t>(value >> (8 * i)));
  }
}

}  // namespace iovmm::devices
