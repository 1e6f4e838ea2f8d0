#include "devices/ide/ata_disk.h"

#include <linux/hdreg.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>

#include <fmt/core.h>

#include "common/error.h"
#include "common/log.h"

namespace iovmm::devices::ide {
namespace {

using namespace ata;

constexpr unsigned kBlockBytes = kMaxMultiple * kSectorSize;
constexpr unsigned kBounceSectors = 128;  // DMA moves 64 KiB at a time through the staging buffer
constexpr size_t kBufferAlignment = 4096;  // enough for any O_DIRECT backend

constexpr uint8_t kPowerModeActiveOrIdle = 0xFF;    // CHECK POWER MODE's answer in the count register

uint8_t* aligned_bytes(size_t size) {
  void* p = std::aligned_alloc(kBufferAlignment, size);
  if (!p) throw std::bad_alloc();
  return static_cast<uint8_t*>(p);
}

}  // namespace

void TaskFile::set_signature() {
  count = kSignatureCount;
  lba_low = kSignatureLbaLow;
  lba_mid = kSignatureLbaMid;
  lba_high = kSignatureLbaHigh;
  device = kSignatureDevice;
}

void AtaDisk::AlignedFree::operator()(uint8_t* p) const { std::free(p); }

AtaDisk::AtaDisk(std::unique_ptr<block::Backend> backend, std::string label)
    : backend_(std::move(backend)), label_(std::move(label)) {
  if (!backend_) throw UsageError(fmt::format("{}: no disk image", label_));
  sectors_ = backend_->size_bytes() / kSectorSize;
  if (sectors_ == 0) {
    throw UsageError(fmt::format("{}: the disk image ({} bytes) is smaller than one {}-byte sector", label_,
                                 backend_->size_bytes(), kSectorSize));
  }
  buffer_storage_.reset(aligned_bytes(kBlockBytes));
  buffer_ = buffer_storage_.get();
}

AtaDisk::~AtaDisk() = default;

std::string AtaDisk::describe_result(int64_t result) {
  return result < 0 ? std::strerror(static_cast<int>(-result)) : fmt::format("short transfer of {} bytes", result);
}

uint8_t* AtaDisk::bounce_buffer() {
  if (!bounce_) bounce_.reset(aligned_bytes(size_t{kBounceSectors} * kSectorSize));
  return bounce_.get();
}

Interrupt AtaDisk::execute(uint8_t command, TaskFile& tf) {
  status_ = kStatusReady;
  transfer_ = Transfer::none;
  pos_ = end_ = 0;
  tf.error = 0;
  switch (command) {
    case WIN_READ:
    case WIN_READ_ONCE:
      return start_pio_in(tf, false, 1);
    case WIN_READ_EXT:
      return start_pio_in(tf, true, 1);
    case WIN_MULTREAD:
    case WIN_MULTREAD_EXT:
      if (multiple_ == 0) return abort_command(tf);
      return start_pio_in(tf, command == WIN_MULTREAD_EXT, multiple_);
    case WIN_WRITE:
    case WIN_WRITE_ONCE:
      return start_pio_out(tf, false, 1);
    case WIN_WRITE_EXT:
      return start_pio_out(tf, true, 1);
    case WIN_MULTWRITE:
    case WIN_MULTWRITE_EXT:
      if (multiple_ == 0) return abort_command(tf);
      return start_pio_out(tf, command == WIN_MULTWRITE_EXT, multiple_);
    case WIN_READDMA:
    case WIN_READDMA_ONCE:
      return start_dma(tf, false, true);
    case WIN_READDMA_EXT:
      return start_dma(tf, true, true);
    case WIN_WRITEDMA:
    case WIN_WRITEDMA_ONCE:
      return start_dma(tf, false, false);
    case WIN_WRITEDMA_EXT:
      return start_dma(tf, true, false);
    case WIN_VERIFY:
    case WIN_VERIFY_ONCE:
      return read_verify(tf, false);
    case WIN_VERIFY_EXT:
      return read_verify(tf, true);
    case WIN_FLUSH_CACHE:
    case WIN_FLUSH_CACHE_EXT:
      return flush(tf);
    case WIN_IDENTIFY:
      return identify_device();
    case WIN_SETFEATURES:
      return set_features(tf);
    case WIN_SETMULT:
      return set_multiple(tf);
    case WIN_SPECIFY:
      return initialize_device_parameters(tf);
    case WIN_STANDBYNOW1:
    case WIN_IDLEIMMEDIATE:
    case WIN_STANDBY:
    case WIN_SETIDLE1:
      return complete();  // no power states: the disk is always ready
    case WIN_CHECKPOWERMODE1:
      tf.count = kPowerModeActiveOrIdle;
      return complete();
    case WIN_DIAGNOSE:
      return execute_diagnostic(tf);
    case WIN_NOP:
      return abort_command(tf);  // ACS: NOP always ends with ABRT
    default:
      // Probes (IDENTIFY PACKET DEVICE, READ NATIVE MAX, SMART...) land here as on a disk without them.
      log::debug("{}: command {:#04x} not supported: aborted", label_, command);
      return abort_command(tf);
  }
}

bool AtaDisk::chs_to_lba(const TaskFile& tf, uint64_t& lba) const {
  unsigned cylinder = tf.lba_mid | (tf.lba_high << 8);
  unsigned head = tf.device & 0x0F;
  unsigned sector = tf.lba_low;
  if (sector == 0 || sector > sectors_per_track_ || head >= heads_) return false;
  lba = (uint64_t{cylinder} * heads_ + head) * sectors_per_track_ + (sector - 1);
  return true;
}

bool AtaDisk::decode(const TaskFile& tf, bool lba48, Request& request) const {
  request.lba48 = lba48;
  if (lba48) {
    request.lba = uint64_t{tf.hob_lba_high} << 40 | uint64_t{tf.hob_lba_mid} << 32 | uint64_t{tf.hob_lba_low} << 24 |
                  uint64_t{tf.lba_high} << 16 | uint64_t{tf.lba_mid} << 8 | tf.lba_low;
    uint32_t count = uint32_t{tf.hob_count} << 8 | tf.count;
    request.sectors = count == 0 ? 65536 : count;
  } else {
    request.sectors = tf.count == 0 ? 256 : tf.count;
    if (tf.device & kDeviceLba) {
      request.lba = uint64_t{tf.device & 0x0Fu} << 24 | uint64_t{tf.lba_high} << 16 | uint64_t{tf.lba_mid} << 8 |
                    tf.lba_low;
    } else if (!chs_to_lba(tf, request.lba)) {
      request.lba = 0;
      return false;
    }
  }
  return request.lba < sectors_ && request.sectors <= sectors_ - request.lba;
}

void AtaDisk::write_lba(TaskFile& tf, uint64_t lba, bool lba48) const {
  if (lba48) {
    tf.lba_low = static_cast<uint8_t>(lba);
    tf.lba_mid = static_cast<uint8_t>(lba >> 8);
    tf.lba_high = static_cast<uint8_t>(lba >> 16);
    tf.hob_lba_low = static_cast<uint8_t>(lba >> 24);
    tf.hob_lba_mid = static_cast<uint8_t>(lba >> 32);
    tf.hob_lba_high = static_cast<uint8_t>(lba >> 40);
  } else if (tf.device & kDeviceLba) {
    tf.lba_low = static_cast<uint8_t>(lba);
    tf.lba_mid = static_cast<uint8_t>(lba >> 8);
    tf.lba_high = static_cast<uint8_t>(lba >> 16);
    tf.device = static_cast<uint8_t>((tf.device & 0xF0) | ((lba >> 24) & 0x0F));
  } else {
    uint64_t per_cylinder = uint64_t{heads_} * sectors_per_track_;
    uint64_t cylinder = lba / per_cylinder;
    uint64_t rest = lba % per_cylinder;
    tf.lba_mid = static_cast<uint8_t>(cylinder);
    tf.lba_high = static_cast<uint8_t>(cylinder >> 8);
    tf.device = static_cast<uint8_t>((tf.device & 0xF0) | ((rest / sectors_per_track_) & 0x0F));
    tf.lba_low = static_cast<uint8_t>(rest % sectors_per_track_ + 1);
  }
}

Interrupt AtaDisk::fail(TaskFile& tf, uint8_t error, uint64_t lba, bool lba48) {
  write_lba(tf, lba, lba48);
  Interrupt interrupt = abort_command(tf);
  tf.error = error;
  return interrupt;
}

Interrupt AtaDisk::abort_command(TaskFile& tf) {
  status_ = kStatusDrdy | kStatusErr;
  tf.error = kErrorAbrt;
  transfer_ = Transfer::none;
  pos_ = end_ = 0;
  return Interrupt::yes;
}

Interrupt AtaDisk::complete() {
  status_ = kStatusReady;
  transfer_ = Transfer::none;
  pos_ = end_ = 0;
  return Interrupt::yes;
}

// ---- PIO ----

Interrupt AtaDisk::start_pio_in(TaskFile& tf, bool lba48, unsigned block_sectors) {
  Request request;
  if (!decode(tf, lba48, request)) return fail(tf, kErrorIdnf, request.lba, lba48);
  request_ = request;
  block_sectors_ = block_sectors;
  return load_pio_in_block(tf);
}

Interrupt AtaDisk::load_pio_in_block(TaskFile& tf) {
  unsigned n = std::min<uint32_t>(block_sectors_, request_.sectors);
  size_t bytes = size_t{n} * kSectorSize;
  int64_t result = backend_->read_sync(request_.lba * kSectorSize, {buffer_, bytes});
  if (result != static_cast<int64_t>(bytes)) {
    IOVMM_LOG_RATELIMITED("{}: reading {} sectors at LBA {} failed: {}", label_, n, request_.lba,
                          describe_result(result));
    return fail(tf, kErrorUnc, request_.lba, request_.lba48);
  }
  block_count_ = n;
  request_.lba += n;
  request_.sectors -= n;
  pos_ = 0;
  end_ = static_cast<unsigned>(bytes);
  transfer_ = Transfer::pio_in;
  status_ = kStatusReady | kStatusDrq;
  return Interrupt::yes;
}

Interrupt AtaDisk::finish_pio_in_block(TaskFile& tf) {
  if (request_.sectors > 0) return load_pio_in_block(tf);
  // Data-in ends without an interrupt: the one before the last block was the last (ATA8-APT PIO data-in).
  status_ = kStatusReady;
  transfer_ = Transfer::none;
  pos_ = end_ = 0;
  return Interrupt::no;
}

Interrupt AtaDisk::start_pio_out(TaskFile& tf, bool lba48, unsigned block_sectors) {
  Request request;
  if (!decode(tf, lba48, request)) return fail(tf, kErrorIdnf, request.lba, lba48);
  request_ = request;
  block_sectors_ = block_sectors;
  arm_pio_out_block();
  return Interrupt::no;  // data-out: the first block is requested by DRQ alone
}

void AtaDisk::arm_pio_out_block() {
  block_count_ = std::min<uint32_t>(block_sectors_, request_.sectors);
  pos_ = 0;
  end_ = block_count_ * kSectorSize;
  transfer_ = Transfer::pio_out;
  status_ = kStatusReady | kStatusDrq;
}

Interrupt AtaDisk::finish_pio_out_block(TaskFile& tf) {
  int64_t result = backend_->write_sync(request_.lba * kSectorSize, {buffer_, end_});
  if (result != static_cast<int64_t>(end_)) {
    IOVMM_LOG_RATELIMITED("{}: writing {} sectors at LBA {} failed: {}", label_, block_count_, request_.lba,
                          describe_result(result));
    return fail(tf, kErrorAbrt, request_.lba, request_.lba48);
  }
  request_.lba += block_count_;
  request_.sectors -= block_count_;
  if (request_.sectors > 0) {
    arm_pio_out_block();
    return Interrupt::yes;
  }
  if (!write_through()) return abort_command(tf);
  return complete();
}

uint32_t AtaDisk::read_data_slow(unsigned size, TaskFile& tf, Interrupt& interrupt) {
  if (transfer_ != Transfer::pio_in) return 0;  // no DRQ: QEMU reads 0
  // A wide read that runs past the block: the block's last bytes, then nothing.
  uint32_t value = 0;
  for (unsigned i = 0; i < size && pos_ < end_; ++i) value |= uint32_t{buffer_[pos_++]} << (8 * i);
  interrupt = finish_pio_in_block(tf);
  return value;
}

void AtaDisk::write_data_slow(uint32_t value, unsigned size, TaskFile& tf, Interrupt& interrupt) {
  if (transfer_ != Transfer::pio_out) return;
  for (unsigned i = 0; i < size && pos_ < end_; ++i) buffer_[pos_++] = static_cast<uint8_t>(value >> (8 * i));
  interrupt = finish_pio_out_block(tf);
}

bool AtaDisk::write_through() {
  if (write_cache_) return true;
  int64_t result = backend_->flush_sync();
  if (result < 0) IOVMM_LOG_RATELIMITED("{}: flush failed: {}", label_, describe_result(result));
  return result >= 0;
}

// ---- DMA ----

Interrupt AtaDisk::start_dma(TaskFile& tf, bool lba48, bool to_memory) {
  Request request;
  if (!decode(tf, lba48, request)) return fail(tf, kErrorIdnf, request.lba, lba48);
  request_ = request;
  dma_sectors_ = request.sectors;
  transfer_ = to_memory ? Transfer::dma_in : Transfer::dma_out;
  // Waiting for the bus master: DRQ, as QEMU shows it; the interrupt comes with the end of the transfer.
  status_ = kStatusReady | kStatusDrq;
  return Interrupt::no;
}

Interrupt AtaDisk::run_dma(GuestMemory& memory, std::span<const DmaPiece> pieces, TaskFile& tf) {
  if (!dma_pending()) return Interrupt::no;
  const bool to_memory = dma_to_memory();
  uint8_t* bounce = bounce_buffer();
  size_t piece = 0;
  uint32_t piece_offset = 0;
  uint64_t lba = request_.lba;
  uint32_t left = dma_sectors_;
  while (left > 0) {
    uint32_t n = std::min(left, kBounceSectors);
    size_t bytes = size_t{n} * kSectorSize;
    if (to_memory) {
      int64_t result = backend_->read_sync(lba * kSectorSize, {bounce, bytes});
      if (result != static_cast<int64_t>(bytes)) {
        IOVMM_LOG_RATELIMITED("{}: DMA read of {} sectors at LBA {} failed: {}", label_, n, lba,
                              describe_result(result));
        return fail(tf, kErrorUnc, lba, request_.lba48);
      }
    }
    // Scatter to (or gather from) the pieces; the bus master checked that they lie in RAM and add up.
    for (size_t done = 0; done < bytes;) {
      if (piece >= pieces.size()) return abort_dma(tf);
      size_t take = std::min<size_t>(pieces[piece].length - piece_offset, bytes - done);
      uint64_t gpa = pieces[piece].gpa + piece_offset;
      bool ok = to_memory ? memory.write(gpa, bounce + done, take) : memory.read(gpa, bounce + done, take);
      if (!ok) return abort_dma(tf);
      done += take;
      piece_offset += static_cast<uint32_t>(take);
      if (piece_offset == pieces[piece].length) {
        ++piece;
        piece_offset = 0;
      }
    }
    if (!to_memory) {
      int64_t result = backend_->write_sync(lba * kSectorSize, {bounce, bytes});
      if (result != static_cast<int64_t>(bytes)) {
        IOVMM_LOG_RATELIMITED("{}: DMA write of {} sectors at LBA {} failed: {}", label_, n, lba,
                              describe_result(result));
        return fail(tf, kErrorAbrt, lba, request_.lba48);
      }
    }
    lba += n;
    left -= n;
  }
  if (!to_memory && !write_through()) return abort_command(tf);
  return complete();
}

Interrupt AtaDisk::abort_dma(TaskFile& tf) { return fail(tf, kErrorAbrt, request_.lba, request_.lba48); }

void AtaDisk::cancel_dma() {
  status_ = kStatusReady;
  transfer_ = Transfer::none;
}

}  // namespace iovmm::devices::ide
