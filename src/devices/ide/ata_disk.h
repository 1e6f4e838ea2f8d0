// An ATA hard disk as the device behind one IDE task file: the command set a PC firmware and Linux's libata use,
// executed synchronously against a block::Backend, so that the data is there before the guest looks.
//
// Models (ATA8-ACS for the commands, ATA8-APT for the PIO and DMA protocols):
//   - IDENTIFY DEVICE with a complete identify block (strings byte-swapped, 28- and 48-bit capacity, LBA/LBA48/DMA,
//     multiple max 16, PIO 0-4, multiword DMA 0-2, UDMA 0-5 with the mode SET FEATURES selected, write cache state,
//     word 255 integrity checksum);
//   - READ/WRITE SECTORS (0x20/0x21, 0x30/0x31, EXT 0x24/0x34), READ/WRITE MULTIPLE (0xC4/0xC5, EXT 0x29/0x39),
//     SET MULTIPLE MODE, READ/WRITE DMA (0xC8/0xC9, 0xCA/0xCB, EXT 0x25/0x35), READ VERIFY (0x40/0x41, EXT 0x42),
//     FLUSH CACHE (+EXT), SET FEATURES (transfer mode, write cache, read look-ahead, revert to defaults),
//     INITIALIZE DEVICE PARAMETERS (CHS translation; CHS addressing works when the LBA bit is clear), IDLE/STANDBY
//     (+IMMEDIATE), CHECK POWER MODE, EXECUTE DEVICE DIAGNOSTIC; NOP and everything else: ABRT.
//   - PIO data-in: the command reads the whole DRQ block (1 sector, or the multiple count) from the backend before
//     it returns, and each following block is read when the guest drains the previous one, so the first status
//     read always finds DRQ. PIO data-out: a block goes to the backend when its last byte arrives.
//   - DMA: the command only records the request (status DRQ); the channel runs the transfer when the bus master is
//     started too, handing the disk the guest memory pieces from the PRD table.
//   - Errors: an address beyond the capacity → IDNF; a failed backend read → UNC, a failed write or flush → ABRT;
//     the LBA registers then name the first sector of the failing block.
// Leaves out: ATAPI, SMART, security, HPA, power states (power commands succeed and the disk stays active), sector
// sizes other than 512, a write cache of our own (the write cache bit decides whether each write is flushed: with
// it off, every write command ends with the backend's flush).
// Code: the state machine, PIO and DMA here and in ata_disk.cpp; identify and the non-data commands in
// ata_disk_commands.cpp.
// Settings (multiple count, transfer mode, write cache, CHS translation) survive a software reset, as with
// Software Settings Preservation; only power-on (construction) sets the defaults.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "block/backend.h"
#include "memory/guest_memory.h"

namespace iovmm::devices::ide {

namespace ata {
// Status register (ATA8-ACS 6.2); DSC is the obsolete "seek complete" bit drives and QEMU still set.
constexpr uint8_t kStatusErr = 0x01;
constexpr uint8_t kStatusDrq = 0x08;
constexpr uint8_t kStatusDsc = 0x10;
constexpr uint8_t kStatusDrdy = 0x40;
constexpr uint8_t kStatusBsy = 0x80;
// Ready for a command: what a device shows after power-on, a reset or a command that has ended without error.
constexpr uint8_t kStatusReady = kStatusDrdy | kStatusDsc;
// Error register (ATA8-ACS 6.3).
constexpr uint8_t kErrorAbrt = 0x04;
constexpr uint8_t kErrorIdnf = 0x10;
constexpr uint8_t kErrorUnc = 0x40;
// Device register.
constexpr uint8_t kDeviceDev = 0x10;
constexpr uint8_t kDeviceLba = 0x40;
constexpr uint8_t kDeviceObsolete = 0xA0;  // bits 7 and 5: "always one" on ATA-1, set on reads as QEMU does
// Device control register (ATA8-APT): the control block's only writable register.
constexpr uint8_t kControlNien = 0x02;
constexpr uint8_t kControlSrst = 0x04;
constexpr uint8_t kControlHob = 0x80;
// EXECUTE DEVICE DIAGNOSTIC / reset result in the error register: device 0 passed, device 1 absent or passed.
constexpr uint8_t kDiagnosticPassed = 0x01;

constexpr unsigned kSectorSize = 512;
constexpr unsigned kMaxMultiple = 16;  // identify word 47
}  // namespace ata

// The command block registers of one channel. Both devices latch every write (ATA8-APT), so there is one copy;
// the selected device's command reads its inputs here and leaves its outputs (error, signature, failing LBA).
// Each of features, count and the LBA bytes keeps the value written before the last one: the high-order byte of a
// 48-bit command, read back with the device control HOB bit.
struct TaskFile {
  uint8_t features = 0, hob_features = 0;
  uint8_t count = 0, hob_count = 0;
  uint8_t lba_low = 0, hob_lba_low = 0;
  uint8_t lba_mid = 0, hob_lba_mid = 0;
  uint8_t lba_high = 0, hob_lba_high = 0;
  uint8_t device = ata::kDeviceObsolete;
  uint8_t error = 0;

  // The signature an ATA device leaves after power-on, a reset or a diagnostic (ATA8-APT 9.12): count and LBA low
  // 01h, LBA mid and high 00h (an ATA device, not ATAPI), device 0, head 0.
  static constexpr uint8_t kSignatureCount = 0x01;
  static constexpr uint8_t kSignatureLbaLow = 0x01;
  static constexpr uint8_t kSignatureLbaMid = 0x00;
  static constexpr uint8_t kSignatureLbaHigh = 0x00;
  static constexpr uint8_t kSignatureDevice = ata::kDeviceObsolete;
  void set_signature();
};

// A piece of guest memory from the PRD table; the pieces of one transfer add up to exactly its byte count.
struct DmaPiece {
  uint64_t gpa;
  uint32_t length;
};

// Whether a step of the disk's state machine asks for INTRQ.
enum class Interrupt : bool { no = false, yes = true };

class AtaDisk {
 public:
  // `label` names the disk in log lines ("ide0 primary master"). Throws UsageError for a backend of less than one
  // sector.
  AtaDisk(std::unique_ptr<block::Backend> backend, std::string label);
  ~AtaDisk();
  AtaDisk(const AtaDisk&) = delete;
  AtaDisk& operator=(const AtaDisk&) = delete;

  [[nodiscard]] uint8_t status() const { return status_; }
  [[nodiscard]] uint64_t sectors() const { return sectors_; }

  // The guest wrote the command register (the channel has already checked that the disk is neither BSY nor DRQ).
  [[nodiscard]] Interrupt execute(uint8_t command, TaskFile& tf);

  // The data port while DRQ is set: `size` is 2 or 4 (32-bit PIO moves two words). Outside a PIO transfer reads
  // return 0 and writes are dropped. The last byte of a block moves to the next block (or the end of the command).
  [[nodiscard]] uint32_t read_data(unsigned size, TaskFile& tf, Interrupt& interrupt) {
    if (transfer_ != Transfer::pio_in || pos_ + size > end_) return read_data_slow(size, tf, interrupt);
    uint32_t value = 0;
    for (unsigned i = 0; i < size; ++i) value |= uint32_t{buffer_[pos_ + i]} << (8 * i);
    pos_ += size;
    if (pos_ == end_) interrupt = finish_pio_in_block(tf);
    return value;
  }
  void write_data(uint32_t value, unsigned size, TaskFile& tf, Interrupt& interrupt) {
    if (transfer_ != Transfer::pio_out || pos_ + size > end_) {
      write_data_slow(value, size, tf, interrupt);
      return;
    }
    for (unsigned i = 0; i < size; ++i) buffer_[pos_ + i] = static_cast<uint8_t>(value >> (8 * i));
    pos_ += size;
    if (pos_ == end_) interrupt = finish_pio_out_block(tf);
  }

  // Software reset: SRST set shows BSY and abandons any command; SRST cleared completes the reset.
  void begin_reset();
  void complete_reset(TaskFile& tf);

  // A DMA command waiting for the bus master.
  [[nodiscard]] bool dma_pending() const { return transfer_ == Transfer::dma_in || transfer_ == Transfer::dma_out; }
  [[nodiscard]] bool dma_to_memory() const { return transfer_ == Transfer::dma_in; }
  [[nodiscard]] uint64_t dma_bytes() const { return uint64_t{dma_sectors_} * ata::kSectorSize; }
  // Moves the data between the backend and `pieces` (which cover exactly dma_bytes()) and ends the command.
  [[nodiscard]] Interrupt run_dma(GuestMemory& memory, std::span<const DmaPiece> pieces, TaskFile& tf);
  // The bus master could not reach memory (a PRD entry outside RAM): the command ends with ABRT.
  [[nodiscard]] Interrupt abort_dma(TaskFile& tf);
  // The PRD table ended before the transfer did: the command ends without data and without an interrupt (QEMU).
  void cancel_dma();

  // The identify block the disk answers with now (tests, and IDENTIFY itself).
  [[nodiscard]] std::array<uint16_t, 256> identify() const;

 private:
  enum class Transfer : uint8_t { none, pio_in, pio_out, dma_in, dma_out };
  struct Request {
    uint64_t lba = 0;
    uint32_t sectors = 0;
    bool lba48 = false;
  };

  [[nodiscard]] Interrupt start_pio_in(TaskFile& tf, bool lba48, unsigned block_sectors);
  [[nodiscard]] Interrupt start_pio_out(TaskFile& tf, bool lba48, unsigned block_sectors);
  [[nodiscard]] Interrupt start_dma(TaskFile& tf, bool lba48, bool to_memory);
  [[nodiscard]] Interrupt read_verify(TaskFile& tf, bool lba48);
  [[nodiscard]] Interrupt identify_device();
  [[nodiscard]] Interrupt set_features(TaskFile& tf);
  [[nodiscard]] Interrupt set_multiple(TaskFile& tf);
  [[nodiscard]] Interrupt initialize_device_parameters(TaskFile& tf);
  [[nodiscard]] Interrupt flush(TaskFile& tf);
  [[nodiscard]] Interrupt execute_diagnostic(TaskFile& tf);

  // Decodes the command's address and count (CHS when the LBA bit is clear on a 28-bit command); false when the
  // address is not a sector of this disk.
  [[nodiscard]] bool decode(const TaskFile& tf, bool lba48, Request& request) const;
  [[nodiscard]] bool chs_to_lba(const TaskFile& tf, uint64_t& lba) const;
  // Ends the command with ERR and `error`; the LBA registers show `lba`.
  [[nodiscard]] Interrupt fail(TaskFile& tf, uint8_t error, uint64_t lba, bool lba48);
  // Ends the command with ERR and ABRT, the LBA registers untouched.
  [[nodiscard]] Interrupt abort_command(TaskFile& tf);
  [[nodiscard]] Interrupt complete();
  void write_lba(TaskFile& tf, uint64_t lba, bool lba48) const;

  [[nodiscard]] Interrupt load_pio_in_block(TaskFile& tf);
  void arm_pio_out_block();
  [[nodiscard]] Interrupt finish_pio_in_block(TaskFile& tf);
  [[nodiscard]] Interrupt finish_pio_out_block(TaskFile& tf);
  [[nodiscard]] uint32_t read_data_slow(unsigned size, TaskFile& tf, Interrupt& interrupt);
  void write_data_slow(uint32_t value, unsigned size, TaskFile& tf, Interrupt& interrupt);
  // Ends a write command: flushes when the guest turned the write cache off. False when that flush failed.
  [[nodiscard]] bool write_through();
  [[nodiscard]] uint8_t* bounce_buffer();
  // A backend result for a log line: the errno's text, or the short transfer.
  [[nodiscard]] static std::string describe_result(int64_t result);

  std::unique_ptr<block::Backend> backend_;
  std::string label_;
  uint64_t sectors_ = 0;

  // Settings (power-on defaults; kept over a software reset).
  unsigned multiple_ = 0;          // sectors per DRQ block of READ/WRITE MULTIPLE; 0: multiple mode off
  uint8_t dma_mode_ = 0x45;        // SET FEATURES 03h value of the selected DMA mode: UDMA 5, as QEMU reports
  bool write_cache_ = true;
  bool read_look_ahead_ = true;
  unsigned heads_ = 16;            // CHS translation (INITIALIZE DEVICE PARAMETERS)
  unsigned sectors_per_track_ = 63;

  // Command state.
  uint8_t status_ = ata::kStatusReady;
  Transfer transfer_ = Transfer::none;
  Request request_;                // what is left of a PIO command: next sector, sectors after the current block
  unsigned block_sectors_ = 1;     // sectors per DRQ block
  unsigned block_count_ = 0;       // sectors in the block in the buffer
  uint32_t dma_sectors_ = 0;
  unsigned pos_ = 0;
  unsigned end_ = 0;
  // One DRQ block (at most the multiple maximum), aligned for an O_DIRECT backend.
  struct AlignedFree {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t[], AlignedFree> buffer_storage_;
  uint8_t* buffer_ = nullptr;
  std::unique_ptr<uint8_t[], AlignedFree> bounce_;  // DMA staging, allocated on first use
};

}  // namespace iovmm::devices::ide
