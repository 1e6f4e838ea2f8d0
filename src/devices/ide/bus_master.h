// One channel's half of the PIIX3 IDE bus master (SFF-8038i "Bus Master Programming Interface for IDE ATA
// Controllers", as the PIIX3/PIIX4 datasheets describe it): command, status and descriptor table pointer, and the
// walk of a physical region descriptor (PRD) table in guest memory.
//
// Registers (8 bytes per channel; the controller puts the primary at BAR4+0 and the secondary at BAR4+8):
//   +0 command  bit 0 start/stop, bit 3 direction (1: the bus master writes memory, i.e. a device read); the
//               other bits read 0. Writing start=1 while not active (re)arms the engine; start=0 stops it.
//   +2 status   bit 0 active (read-only), bit 1 error and bit 2 interrupt (write 1 to clear), bits 5/6 "drive 0/1
//               DMA capable" (plain read/write, for the firmware), bit 7 simplex (0: both channels may DMA at once)
//   +4 PRD table address, a dword; bits 1:0 read 0.
// A PRD entry is two dwords: the region's address (bit 0 ignored) and its byte count in bits 15:1 (0 means 64 KiB),
// bit 31 of the second dword marking the table's last entry.
//
// Hostile tables are bounded: the walk stops when the transfer's bytes are covered, at the end-of-table bit, or after
// 8192 entries (64 KiB of table); entries are fetched from the table's own 64 KiB segment, wrapping inside it as the
// PIIX's 16-bit descriptor counter would (SFF-8038i forbids a table that crosses a 64 KiB boundary). Results, with
// SFF-8038i's meaning of the status bits:
//   complete     the table covered the transfer. Interrupt set by the device's INTRQ; active cleared when the
//                table ended exactly there, kept set when it held more (the "PRD larger than the transfer" case).
//   short_table  the table ended first: nothing is transferred, active cleared, no interrupt (QEMU does the same).
//   bad_address  an entry, or the table itself, lies outside guest RAM (a master abort): error set, active
//                cleared; the device ends the command with ABRT and raises INTRQ.
// Leaves out: regions crossing 64 KiB boundaries are accepted (only RAM bounds are checked); a second command
// while the engine is still active after a long table restarts at the table's first entry, not where it stopped.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "devices/ide/ata_disk.h"
#include "memory/guest_memory.h"

namespace iovmm::devices::ide {

// A channel's bus master registers: the ids (io::Register::id) of the rows of the controller's table, which has
// their offsets.
enum class BusMasterRegister : uint16_t { command, status, prd_address };

class BusMaster {
 public:
  static constexpr unsigned kSize = 8;  // one channel's registers

  static constexpr uint8_t kCommandStart = 0x01;
  static constexpr uint8_t kCommandWriteMemory = 0x08;
  static constexpr uint8_t kStatusActive = 0x01;
  static constexpr uint8_t kStatusError = 0x02;
  static constexpr uint8_t kStatusInterrupt = 0x04;
  static constexpr uint8_t kStatusDriveCapable = 0x60;

  static constexpr unsigned kMaxEntries = 0x10000 / 8;

  enum class WalkResult : uint8_t { complete, short_table, bad_address };
  struct Walk {
    WalkResult result;
    bool table_exhausted;            // complete: the last entry used was the table's last and was used whole
    std::span<const DmaPiece> pieces;  // complete: exactly the transfer's bytes; valid until the next walk
  };

  // Byte `byte` of a register.
  [[nodiscard]] uint8_t read(BusMasterRegister reg, unsigned byte) const;
  // Returns true when the write armed the engine (start written while not active): the channel then runs a DMA
  // command that is waiting for it.
  [[nodiscard]] bool write(BusMasterRegister reg, unsigned byte, uint8_t value);

  [[nodiscard]] bool active() const { return status_ & kStatusActive; }
  [[nodiscard]] bool writes_memory() const { return command_ & kCommandWriteMemory; }
  [[nodiscard]] uint32_t prd_address() const { return prd_address_ & ~3u; }

  // The device raised INTRQ (PIIX3: the status bit follows the interrupt line whatever the transfer).
  void set_interrupt() { status_ |= kStatusInterrupt; }

  // Walks the table for a transfer of `bytes` and records the outcome in the status register (active, error).
  [[nodiscard]] Walk walk(const GuestMemory& memory, uint64_t bytes);
  // The device stopped the transfer early (a backend error): the engine is no longer active.
  void stop() { status_ &= static_cast<uint8_t>(~kStatusActive); }

 private:
  uint8_t command_ = 0;
  uint8_t status_ = 0;
  uint32_t prd_address_ = 0;
  std::vector<DmaPiece> pieces_;  // reused from walk to walk
};

}  // namespace iovmm::devices::ide
