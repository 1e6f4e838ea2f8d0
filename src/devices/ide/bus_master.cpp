#include "devices/ide/bus_master.h"

#include <algorithm>

namespace iovmm::devices::ide {
namespace {

constexpr uint32_t kEndOfTable = 0x80000000u;
constexpr uint32_t kSegmentMask = 0xFFFF;

}  // namespace

uint8_t BusMaster::read(BusMasterRegister reg, unsigned byte) const {
  switch (reg) {
    case BusMasterRegister::command:
      return command_;
    case BusMasterRegister::status:
      return status_;
    case BusMasterRegister::prd_address:
      return static_cast<uint8_t>(prd_address() >> (8 * byte));
  }
  return 0;
}

bool BusMaster::write(BusMasterRegister reg, unsigned byte, uint8_t value) {
  switch (reg) {
    case BusMasterRegister::command: {
      command_ = value & (kCommandStart | kCommandWriteMemory);
      if (!(value & kCommandStart)) {
        // Stop: whatever the engine had not done is abandoned (SFF-8038i: the guest stops it after each command).
        status_ &= static_cast<uint8_t>(~kStatusActive);
        return false;
      }
      if (active()) return false;
      status_ |= kStatusActive;
      return true;
    }
    case BusMasterRegister::status: {
      uint8_t cleared = value & (kStatusError | kStatusInterrupt);
      status_ = static_cast<uint8_t>((status_ & ~cleared & ~kStatusDriveCapable) | (value & kStatusDriveCapable));
      return false;
    }
    case BusMasterRegister::prd_address: {
      unsigned shift = 8 * byte;
      prd_address_ = (prd_address_ & ~(0xFFu << shift)) | (uint32_t{value} << shift);
      return false;
    }
  }
  return false;
}

BusMaster::Walk BusMaster::walk(const GuestMemory& memory, uint64_t bytes) {
  pieces_.clear();
  const uint32_t table = prd_address();
  uint64_t left = bytes;
  for (uint32_t i = 0; i < kMaxEntries; ++i) {
    uint32_t entry_address = (table & ~kSegmentMask) | ((table + 8 * i) & kSegmentMask);
    auto entry = memory.read_obj<std::array<uint32_t, 2>>(entry_address);
    if (!entry) {
      status_ = static_cast<uint8_t>((status_ | kStatusError) & ~kStatusActive);
      return {WalkResult::bad_address, false, {}};
    }
    uint32_t address = (*entry)[0] & ~1u;
    uint32_t length = (*entry)[1] & 0xFFFE;
    if (length == 0) length = 0x10000;
    bool last = (*entry)[1] & kEndOfTable;

    uint32_t take = static_cast<uint32_t>(std::min<uint64_t>(length, left));
    if (!memory.contains(address, take)) {
      status_ = static_cast<uint8_t>((status_ | kStatusError) & ~kStatusActive);
      return {WalkResult::bad_address, false, {}};
    }
    pieces_.push_back({address, take});
    left -= take;
    if (left == 0) {
      bool exhausted = last && take == length;
      if (exhausted) stop();
      return {WalkResult::complete, exhausted, pieces_};
    }
    if (last) break;
  }
  stop();
  return {WalkResult::short_table, false, {}};
}

}  // namespace iovmm::devices::ide
