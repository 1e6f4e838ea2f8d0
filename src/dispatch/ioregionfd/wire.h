// The ioregionfd wire format: the 32-byte command and 32-byte reply of the proposed KVM ioregionfd API (Elena
// Afanasova's RFC series, include/uapi/linux/ioregion.h of its v3), which is what KVM itself would write to the
// region's fd. The same bytes travel over the in-process socket to a device-server thread and over the socket to an
// iovmm-device process, so one server serves both.
//
// Command (little-endian):
//   byte 0       cmd: 0 read, 1 write
//   byte 1       bits 0-3 size exponent (0..3: 1, 2, 4, 8 bytes), bit 4 response wanted, bits 5-7 zero
//   bytes 2-7    padding, zero
//   bytes 8-15   user data (see below)
//   bytes 16-23  offset within the region
//   bytes 24-31  data (a write's value; zero for a read)
// Reply:
//   bytes 0-7    data (a read's value; zero for a write's acknowledgement)
//   bytes 8-15   iovmm extension: the command's user data echoed back. KVM's RFC leaves these bytes as padding; a
//                server that echoes lets the VMM match a reply to its request and notice a confused server (one
//                that answers a stale, duplicated or someone else's command) instead of handing its data to a guest.
//   bytes 16-31  padding, zero
//
// User data: KVM passes back whatever the VMM registered for the region; iovmm puts the device's region (PCI BAR)
// number in bits 56-63 — so one socket serves all of a device's windows — and a per-proxy sequence number in bits
// 0-55, so that every echo is unique.
//
// Decoding is strict: every reserved bit and padding byte must be zero and a value must fit the access width, so a
// decoded message re-encodes to exactly the bytes it came from.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace iovmm::dispatch::ioregionfd {

static_assert(std::endian::native == std::endian::little, "the wire format is little-endian, as is x86");

inline constexpr size_t kMessageSize = 32;
using Message = std::array<uint8_t, kMessageSize>;

// The byte layout, for the static_asserts below and for readers; encoding goes field by field.
struct WireCommand {
  uint8_t cmd;
  uint8_t info;  // size exponent and response-wanted bit
  uint8_t padding[6];
  uint64_t user_data;
  uint64_t offset;
  uint64_t data;
};
struct WireReply {
  uint64_t data;
  uint64_t user_data;  // iovmm's echo; padding in the RFC
  uint8_t padding[16];
};
static_assert(sizeof(WireCommand) == kMessageSize && sizeof(WireReply) == kMessageSize);
static_assert(offsetof(WireCommand, info) == 1 && offsetof(WireCommand, user_data) == 8 &&
              offsetof(WireCommand, offset) == 16 && offsetof(WireCommand, data) == 24);
static_assert(offsetof(WireReply, user_data) == 8 && offsetof(WireReply, padding) == 16);

inline constexpr uint8_t kCmdRead = 0;
inline constexpr uint8_t kCmdWrite = 1;
inline constexpr uint8_t kSizeExponentMask = 0x0f;
inline constexpr uint8_t kResponseBit = 0x10;

enum class Opcode : uint8_t { read = kCmdRead, write = kCmdWrite };

struct Command {
  Opcode op = Opcode::read;
  unsigned size = 1;  // bytes: 1, 2, 4 or 8
  bool response_wanted = true;
  uint64_t user_data = 0;
  uint64_t offset = 0;
  uint64_t data = 0;
  bool operator==(const Command&) const = default;
};

struct Reply {
  uint64_t data = 0;
  uint64_t user_data = 0;  // the echo
  bool operator==(const Reply&) const = default;
};

enum class WireError : uint8_t {
  ok,
  short_message,     // fewer than 32 bytes
  long_message,      // more than 32 bytes
  bad_command,       // cmd other than read or write
  bad_size,          // size exponent above 3
  reserved_bits,     // bits 5-7 of the info byte
  nonzero_padding,
  data_too_wide,     // a write's value has bits above its size, or a read carries data
};
[[nodiscard]] std::string_view to_string(WireError error);

// Throws std::invalid_argument for a size other than 1, 2, 4, 8 or a write value wider than its size: a caller bug.
[[nodiscard]] Message encode(const Command& command);
[[nodiscard]] Message encode(const Reply& reply);

// `bytes` is the whole received message (its true length, so a long message is told from a short one).
[[nodiscard]] WireError decode(std::span<const uint8_t> bytes, Command& out);
[[nodiscard]] WireError decode(std::span<const uint8_t> bytes, Reply& out);

// User data as iovmm uses it (see above).
inline constexpr unsigned kRegionShift = 56;
inline constexpr uint64_t kSequenceMask = (1ull << kRegionShift) - 1;
inline constexpr unsigned kMaxRegion = 0xff;
[[nodiscard]] constexpr uint64_t make_user_data(unsigned region, uint64_t sequence) {
  return (static_cast<uint64_t>(region & kMaxRegion) << kRegionShift) | (sequence & kSequenceMask);
}
[[nodiscard]] constexpr unsigned region_of(uint64_t user_data) {
  return static_cast<unsigned>(user_data >> kRegionShift);
}

// Not a device window: in an iovmm-device process, a read of 8 bytes at offset GPA of this region returns
// page_checksum() of the 4 KiB guest page at GPA (all-ones when it is not RAM). The VMM uses it at start-up to
// check that the process mapped the same guest memory it did.
inline constexpr unsigned kMemoryProbeRegion = kMaxRegion;
inline constexpr uint64_t kProbePageSize = 4096;
// FNV-1a, 64-bit: cheap, and any mismatch in mapping shows.
[[nodiscard]] uint64_t page_checksum(std::span<const uint8_t> page);

}  // namespace iovmm::dispatch::ioregionfd
