// The disk's commands that move no sector data: IDENTIFY DEVICE and its identify block, SET FEATURES, SET MULTIPLE
// MODE, INITIALIZE DEVICE PARAMETERS, FLUSH CACHE, EXECUTE DEVICE DIAGNOSTIC and the software reset (ata_disk.h).
#include <linux/hdreg.h>

#include <algorithm>
#include <string_view>

#include "common/log.h"
#include "devices/ide/ata_disk.h"

namespace iovmm::devices::ide {
namespace {

using namespace ata;

constexpr uint8_t kSetFeaturesTransferMode = 0x03;  // not in linux/hdreg.h
constexpr uint64_t kMaxLba28Sectors = 0x0FFFFFFF;
constexpr unsigned kMaxDefaultCylinders = 16383;

constexpr std::string_view kModel = "IOVMM HARDDISK";
constexpr std::string_view kSerial = "IOVMM00001";
constexpr std::string_view kFirmware = "1.0";

// ATA strings hold two characters per word, the first in the high byte, padded with spaces.
void put_string(std::array<uint16_t, 256>& id, unsigned word, unsigned words, std::string_view text) {
  for (unsigned i = 0; i < words * 2; ++i) {
    auto c = static_cast<uint8_t>(i < text.size() ? text[i] : ' ');
    uint16_t& w = id[word + i / 2];
    w = (i % 2 == 0) ? static_cast<uint16_t>((w & 0x00FF) | (c << 8)) : static_cast<uint16_t>((w & 0xFF00) | c);
  }
}

}  // namespace

Interrupt AtaDisk::read_verify(TaskFile& tf, bool lba48) {
  Request request;
  if (!decode(tf, lba48, request)) return fail(tf, kErrorIdnf, request.lba, lba48);
  return complete();
}

Interrupt AtaDisk::flush(TaskFile& tf) {
  int64_t result = backend_->flush_sync();
  if (result < 0) {
    IOVMM_LOG_RATELIMITED("{}: FLUSH CACHE failed: {}", label_, describe_result(result));
    return abort_command(tf);
  }
  return complete();
}

Interrupt AtaDisk::identify_device() {
  auto id = identify();
  for (unsigned i = 0; i < id.size(); ++i) {
    buffer_[2 * i] = static_cast<uint8_t>(id[i]);
    buffer_[2 * i + 1] = static_cast<uint8_t>(id[i] >> 8);
  }
  request_ = Request{};  // one block, nothing after it
  block_count_ = 1;
  pos_ = 0;
  end_ = kSectorSize;
  transfer_ = Transfer::pio_in;
  status_ = kStatusReady | kStatusDrq;
  return Interrupt::yes;
}

Interrupt AtaDisk::set_features(TaskFile& tf) {
  switch (tf.features) {
    case SETFEATURES_EN_WCACHE:
      write_cache_ = true;
      return complete();
    case SETFEATURES_DIS_WCACHE:
      write_cache_ = false;
      return flush(tf);  // what the cache held must reach the disk now
    case SETFEATURES_EN_RLA:
    case SETFEATURES_DIS_RLA:
      read_look_ahead_ = tf.features == SETFEATURES_EN_RLA;
      return complete();
    case SETFEATURES_EN_RPOD:
    case SETFEATURES_DIS_RPOD:
      return complete();  // nothing reverts: a software reset keeps the settings either way
    case kSetFeaturesTransferMode: {
      unsigned mode = tf.count & 0x07;
      switch (tf.count >> 3) {
        case 0x00:  // PIO default mode (0x00, 0x01)
          if (mode > 1) return abort_command(tf);
          return complete();
        case 0x01:  // PIO flow control mode n
          if (mode > 4) return abort_command(tf);
          return complete();
        case 0x04:  // multiword DMA mode n
          if (mode > 2) return abort_command(tf);
          dma_mode_ = tf.count;
          return complete();
        case 0x08:  // Ultra DMA mode n
          if (mode > 5) return abort_command(tf);
          dma_mode_ = tf.count;
          return complete();
        default:
          return abort_command(tf);
      }
    }
    default:
      log::debug("{}: SET FEATURES {:#04x} not supported: aborted", label_, tf.features);
      return abort_command(tf);
  }
}

Interrupt AtaDisk::set_multiple(TaskFile& tf) {
  unsigned count = tf.count;
  // Powers of two up to the maximum of word 47; 0 turns multiple mode off (ATA-7).
  if (count > kMaxMultiple || (count & (count - 1)) != 0) return abort_command(tf);
  multiple_ = count;
  return complete();
}

Interrupt AtaDisk::initialize_device_parameters(TaskFile& tf) {
  if (tf.count == 0) return abort_command(tf);
  sectors_per_track_ = tf.count;
  heads_ = (tf.device & 0x0Fu) + 1;
  return complete();
}

Interrupt AtaDisk::execute_diagnostic(TaskFile& tf) {
  tf.set_signature();
  tf.error = kDiagnosticPassed;  // the error register holds the diagnostic code, so ERR stays clear
  return complete();
}

void AtaDisk::begin_reset() {
  transfer_ = Transfer::none;
  pos_ = end_ = 0;
  status_ = kStatusBsy;
}

void AtaDisk::complete_reset(TaskFile& tf) {
  tf.set_signature();
  tf.error = kDiagnosticPassed;
  transfer_ = Transfer::none;
  pos_ = end_ = 0;
  status_ = kStatusReady;
}

std::array<uint16_t, 256> AtaDisk::identify() const {
  std::array<uint16_t, 256> id{};
  // The default translation BIOSes assume: 16 heads, 63 sectors per track.
  const unsigned default_cylinders =
      static_cast<unsigned>(std::clamp<uint64_t>(sectors_ / (16 * 63), 1, kMaxDefaultCylinders));
  const unsigned current_cylinders = static_cast<unsigned>(
      std::clamp<uint64_t>(sectors_ / (uint64_t{heads_} * sectors_per_track_), 1, 65535));
  const uint32_t current_capacity = current_cylinders * heads_ * sectors_per_track_;
  const uint32_t lba28 = static_cast<uint32_t>(std::min(sectors_, kMaxLba28Sectors));
  const unsigned dma_kind = dma_mode_ >> 3;
  const unsigned dma_number = dma_mode_ & 0x07;

  id[0] = 0x0040;  // fixed device, not removable
  id[1] = static_cast<uint16_t>(default_cylinders);
  id[3] = 16;
  id[6] = 63;
  put_string(id, 10, 10, kSerial);
  put_string(id, 23, 4, kFirmware);
  put_string(id, 27, 20, kModel);
  id[47] = 0x8000 | kMaxMultiple;
  id[49] = (1u << 11) | (1u << 9) | (1u << 8);  // IORDY, LBA, DMA
  id[50] = 0x4000;
  id[51] = 0x0200;  // obsolete PIO/DMA timing modes, as drives still report them
  id[52] = 0x0200;
  id[53] = 0x0007;  // words 54-58, 64-70 and 88 are valid
  id[54] = static_cast<uint16_t>(current_cylinders);
  id[55] = static_cast<uint16_t>(heads_);
  id[56] = static_cast<uint16_t>(sectors_per_track_);
  id[57] = static_cast<uint16_t>(current_capacity);
  id[58] = static_cast<uint16_t>(current_capacity >> 16);
  if (multiple_ != 0) id[59] = static_cast<uint16_t>(0x0100 | multiple_);
  id[60] = static_cast<uint16_t>(lba28);
  id[61] = static_cast<uint16_t>(lba28 >> 16);
  id[63] = static_cast<uint16_t>(0x0007 | (dma_kind == 0x04 ? 0x0100u << dma_number : 0));  // MWDMA 0-2
  id[64] = 0x0003;  // PIO 3 and 4
  id[65] = id[66] = id[67] = id[68] = 120;  // cycle times (ns)
  id[80] = 0x01F0;  // ATA-4 to ATA8-ACS
  id[82] = (1u << 14) | (1u << 6) | (1u << 5);  // NOP, read look-ahead, write cache
  id[83] = (1u << 14) | (1u << 13) | (1u << 12) | (1u << 10);  // FLUSH CACHE EXT, FLUSH CACHE, LBA48
  id[84] = 1u << 14;
  id[85] = static_cast<uint16_t>((1u << 14) | (read_look_ahead_ ? 1u << 6 : 0) | (write_cache_ ? 1u << 5 : 0));
  id[86] = (1u << 13) | (1u << 12) | (1u << 10);
  id[87] = 1u << 14;
  id[88] = static_cast<uint16_t>(0x003F | (dma_kind == 0x08 ? 0x0100u << dma_number : 0));  // UDMA 0-5
  // Hardware reset result: device 0 (jumper), passed, answering for an absent device 1, 80-conductor cable. SeaBIOS
  // reads bits 14/6/0 as "device 1 absent" and skips probing it.
  id[93] = 0x604B;
  for (unsigned i = 0; i < 4; ++i) id[100 + i] = static_cast<uint16_t>(sectors_ >> (16 * i));

  // Word 255: signature A5h and a checksum byte that makes the 512 bytes sum to 0 (ATA8-ACS 7.16.7.86).
  id[255] = 0x00A5;
  unsigned sum = 0;
  for (unsigned i = 0; i < 255; ++i) sum += (id[i] & 0xFF) + (id[i] >> 8);
  sum += 0xA5;
  id[255] = static_cast<uint16_t>(0x00A5 | (((256 - (sum & 0xFF)) & 0xFF) << 8));
  return id;
}

}  // namespace iovmm::devices::ide
