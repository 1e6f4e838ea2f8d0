// One IDE channel (ATA8-APT, the parallel ATA transport): the command block (task file, status/command, data
// port), the control block (alternate status, device control), the interrupt line, and the channel's half of the
// bus master. Up to two devices hang off it; this model has at most a device 0.
//
// Registers (command block offsets 0..7, control block offset 0):
//   data          16-bit PIO data; a 32-bit access moves two words (PIIX 32-bit PIO). Byte reads give 0xFF and
//                 byte writes are dropped, as in QEMU.
//   error/features, sector count, LBA low/mid/high
//                 each write shifts the old value into the register's "previous" byte (LBA48 HOB); reads show the
//                 current byte, or the previous one while device control HOB is set (error reads the previous
//                 features byte then, as QEMU does). Any command block write clears HOB.
//   device        DEV selects the device; bits 7 and 5 read as one.
//   status/command
//                 reading status clears INTRQ; writing a command clears INTRQ and runs it on the selected device.
//   alt status / device control
//                 alternate status reads the same status without touching INTRQ; device control holds nIEN (masks
//                 the line), SRST (set: BSY and abandon; clear: reset, signature, DRDY|DSC) and HOB.
// Writes to the task file (1..6) and the command register while the selected device is BSY or DRQ are ignored, as
// on hardware. Multi-byte accesses to registers 1..7 act as byte accesses in ascending order (QEMU's split).
// Absent devices (ATA8-APT 6.1; QEMU): on a channel with no device every register reads 0 and writes are dropped;
// with device 0 present and device 1 selected, device 0 answers the task file reads but status reads 0 and
// commands are ignored, which is how Linux's and SeaBIOS's probes find no device 1.
// INTRQ reaches the line while pending and nIEN is clear; each time it does, the bus master's interrupt bit is set.
// A DMA command runs when both it and the bus master's start bit are there, in whichever access came second.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "devices/ide/ata_disk.h"
#include "devices/ide/bus_master.h"
#include "io/device.h"
#include "io/registers.h"
#include "memory/guest_memory.h"

namespace iovmm::devices::ide {

// The command block's registers: the ids (io::Register::id) of the rows of the controller's table, which has their
// offsets.
enum class CommandRegister : uint16_t { data, error_features, sector_count, lba_low, lba_mid, lba_high, device,
                                        status_command };

class IdeChannel {
 public:
  static constexpr unsigned kCommandBlockSize = 8;

  // `device0` may be null (an empty channel), `irq` too (nothing wired); `memory` is needed only for DMA.
  IdeChannel(std::string label, std::unique_ptr<AtaDisk> device0, std::shared_ptr<io::IrqLine> irq,
             GuestMemory* memory);

  // The data port, `size` 2 or 4.
  [[nodiscard]] uint32_t read_data(unsigned size);
  void write_data(unsigned size, uint32_t value);
  // One byte of the command block: the byte of `row` (its id a CommandRegister).
  [[nodiscard]] uint8_t read_register(const io::Register& row);
  void write_register(const io::Register& row, uint8_t value);
  [[nodiscard]] uint8_t read_alternate_status() const;
  void write_device_control(uint8_t value);
  [[nodiscard]] uint8_t read_bus_master(BusMasterRegister reg, unsigned byte) const {
    return bus_master_.read(reg, byte);
  }
  void write_bus_master(BusMasterRegister reg, unsigned byte, uint8_t value);

  // The machine is going away: stop driving the interrupt line.
  void detach_irq() { irq_.reset(); }

  // Inspection (tests).
  [[nodiscard]] bool irq_level() const { return irq_level_; }
  [[nodiscard]] const TaskFile& task_file() const { return tf_; }

 private:
  [[nodiscard]] AtaDisk* selected() const { return devices_[(tf_.device & ata::kDeviceDev) ? 1 : 0].get(); }
  [[nodiscard]] bool empty() const { return !devices_[0] && !devices_[1]; }
  [[nodiscard]] bool selected_busy() const;
  void execute(uint8_t command);
  void raise(Interrupt interrupt);
  void clear_interrupt();
  void update_irq();
  void run_dma_if_ready();

  std::string label_;
  std::array<std::unique_ptr<AtaDisk>, 2> devices_;
  std::shared_ptr<io::IrqLine> irq_;
  GuestMemory* memory_;
  TaskFile tf_;
  uint8_t control_ = 0;
  bool irq_pending_ = false;
  bool irq_level_ = false;
  BusMaster bus_master_;
};

}  // namespace iovmm::devices::ide
