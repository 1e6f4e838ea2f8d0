// The IDE function of an Intel PIIX3 (PCI 8086:7010, class 0x010180) as QEMU's -M pc has it at 00:01.1: two
// channels in legacy ("compatibility") mode at the ISA addresses with IRQ 14 and 15, a bus master in BAR4, and an
// ATA disk as the primary master. The secondary channel has no devices and reads as an empty channel does.
//
// Windows (io::Device regions):
//   4  BAR4, 16 bytes of I/O: the bus master, primary at +0, secondary at +8 (bus_master.h)
//   6  0x1F0..0x1F7 primary command block     7  0x3F6 primary control block (1 byte; 0x3F7 is the floppy's)
//   8  0x170..0x177 secondary command block   9  0x376 secondary control block
// The legacy windows are fixed: the machine maps them where legacy_windows() says. BAR0-3 are absent (legacy mode
// ignores them; programming interface 0x80 says the channels cannot leave it), and so is the INTx pin: legacy-mode
// interrupts are the ISA lines, which this device drives itself (DeviceContext::isa_irq).
// Configuration registers: IDETIM (0x40 primary, 0x42 secondary) and SIDETIM (0x44) are plain read/write storage;
// IDETIM's decode-enable bit 15 starts set, as firmware (SeaBIOS's piix_ide_setup) leaves it, because Linux's
// ata_piix skips a channel whose bit is clear and nothing here plays the firmware. The windows decode whatever the
// guest writes there or to the command register: the timings and enables are not modelled.
//
// Register table (register_blocks()): "primary" (6) and "secondary" (8) hold data, features, sector_count, lba_low,
// lba_mid, lba_high, device and command; "primary_control" (7) and "secondary_control" (9) hold device_control;
// "bus_master" (4) holds bm_command, bm_status, bm_prd and bm2_command, bm2_status, bm2_prd.
//   features .. device   latch        a write only stores a byte that the next command reads (replayed in order,
//                                     the HOB shift and the busy rule come out the same): coalescable
//   data                 synchronous  every word moves the transfer on; the last one of a block fetches the next
//   command              synchronous  a write runs the command; a read (status) clears INTRQ
//   device_control       synchronous  SRST and nIEN act at once; its read is the alternate status
//   bm_command           synchronous  start runs a waiting DMA transfer
//   bm_status            synchronous  write-1-to-clear bits the guest checks right after
//   bm_prd               latch        only read when a transfer starts
// Reset values are what the registers read at power-on (the primary's signature and DRDY|DSC).
// Spec: Intel 82371SB (PIIX3) datasheet; SFF-8038i for the bus master; ATA8-APT/ACS for the channel and the disk.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "block/backend.h"
#include "devices/device_context.h"
#include "devices/factory.h"
#include "devices/ide/ide_channel.h"
#include "devices/ide/piix3_isa.h"  // make_piix3_isa_bridge(): the function that comes with this one
#include "devices/pci/pci_device.h"
#include "io/register_map.h"

namespace iovmm::devices {

class IdeController final : public PciDevice, public io::Quiescent {
 public:
  static constexpr uint16_t kVendorId = 0x8086;  // Intel
  static constexpr uint16_t kDeviceId = 0x7010;  // 82371SB PIIX3 IDE
  static constexpr uint32_t kClassCode = 0x010180;  // mass storage, IDE, bus master capable, legacy channels
  static constexpr uint16_t kStatus = 0x0280;       // DEVSEL medium timing, fast back-to-back capable

  static constexpr unsigned kBusMaster = 4;
  static constexpr unsigned kPrimaryCommand = 6;
  static constexpr unsigned kPrimaryControl = 7;
  static constexpr unsigned kSecondaryCommand = 8;
  static constexpr unsigned kSecondaryControl = 9;
  static constexpr uint64_t kBusMasterSize = 16;

  static constexpr uint16_t kPrimaryCommandBase = 0x1F0;
  static constexpr uint16_t kPrimaryControlBase = 0x3F6;
  static constexpr uint16_t kSecondaryCommandBase = 0x170;
  static constexpr uint16_t kSecondaryControlBase = 0x376;
  static constexpr uint32_t kPrimaryIrq = 14;
  static constexpr uint32_t kSecondaryIrq = 15;

  // Configuration registers.
  static constexpr unsigned kIdeTimingPrimary = 0x40;
  static constexpr unsigned kIdeTimingSecondary = 0x42;
  static constexpr unsigned kSlaveTiming = 0x44;

  // Needs context.memory (DMA) and context.isa_irq (IRQ 14/15): throws UsageError without them. `primary_master`
  // may be null for a controller without a disk.
  IdeController(std::string name, std::unique_ptr<block::Backend> primary_master, const DeviceContext& context);
  ~IdeController() override;

  // The four fixed windows of the legacy channels.
  [[nodiscard]] static std::vector<FixedWindow> legacy_windows();

  [[nodiscard]] std::span<const io::RegisterBlock> register_blocks() const override;
  void quiesce() override;

  // Inspection (tests): 0 primary, 1 secondary.
  [[nodiscard]] ide::IdeChannel& channel(unsigned index) { return channels_[index]; }

 protected:
  [[nodiscard]] uint64_t bar_read(unsigned bar, uint64_t offset, unsigned size) override;
  void bar_write(unsigned bar, uint64_t offset, unsigned size, uint64_t value) override;

 private:
  // The channel whose bus master registers `row` of the bus master table is.
  [[nodiscard]] ide::IdeChannel& bus_master_channel(const io::Register& row);
  [[nodiscard]] uint64_t command_block_read(ide::IdeChannel& channel, uint64_t offset, unsigned size);
  void command_block_write(ide::IdeChannel& channel, uint64_t offset, unsigned size, uint64_t value);

  std::array<ide::IdeChannel, 2> channels_;
  io::RegisterMap command_map_;
  io::RegisterMap control_map_;
  io::RegisterMap bus_master_map_;
};

}  // namespace iovmm::devices
