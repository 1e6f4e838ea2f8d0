#include "dispatch/ioregionfd/wire.h"

#include <cstring>
#include <stdexcept>

#include "io/device.h"

namespace iovmm::dispatch::ioregionfd {
namespace {

void put64(Message& m, size_t at, uint64_t value) { std::memcpy(m.data() + at, &value, sizeof value); }
uint64_t get64(std::span<const uint8_t> bytes, size_t at) {
  uint64_t value;
  std::memcpy(&value, bytes.data() + at, sizeof value);
  return value;
}
bool all_zero(std::span<const uint8_t> bytes) {
  for (uint8_t b : bytes) {
    if (b) return false;
  }
  return true;
}
WireError check_length(std::span<const uint8_t> bytes) {
  if (bytes.size() < kMessageSize) return WireError::short_message;
  if (bytes.size() > kMessageSize) return WireError::long_message;
  return WireError::ok;
}

}  // namespace

std::string_view to_string(WireError error) {
  switch (error) {
    case WireError::ok: return "ok";
    case WireError::short_message: return "short message";
    case WireError::long_message: return "long message";
    case WireError::bad_command: return "unknown command";
    case WireError::bad_size: return "size exponent above 3";
    case WireError::reserved_bits: return "reserved bits set";
    case WireError::nonzero_padding: return "nonzero padding";
    case WireError::data_too_wide: return "data wider than the access";
  }
  return "?";
}

Message encode(const Command& command) {
  if (!io::valid_access_size(command.size)) throw std::invalid_argument("ioregionfd: access size not 1, 2, 4 or 8");
  if (command.op == Opcode::read ? command.data != 0 : (command.data & ~io::size_mask(command.size)) != 0) {
    throw std::invalid_argument("ioregionfd: command data wider than its access");
  }
  Message m{};
  m[offsetof(WireCommand, cmd)] = static_cast<uint8_t>(command.op);
  m[offsetof(WireCommand, info)] = static_cast<uint8_t>(std::countr_zero(command.size)) |
                                   (command.response_wanted ? kResponseBit : uint8_t{0});
  put64(m, offsetof(WireCommand, user_data), command.user_data);
  put64(m, offsetof(WireCommand, offset), command.offset);
  put64(m, offsetof(WireCommand, data), command.data);
  return m;
}

Message encode(const Reply& reply) {
  Message m{};
  put64(m, offsetof(WireReply, data), reply.data);
  put64(m, offsetof(WireReply, user_data), reply.user_data);
  return m;
}

WireError decode(std::span<const uint8_t> bytes, Command& out) {
  if (WireError e = check_length(bytes); e != WireError::ok) return e;
  uint8_t cmd = bytes[offsetof(WireCommand, cmd)];
  uint8_t info = bytes[offsetof(WireCommand, info)];
  if (cmd != kCmdRead && cmd != kCmdWrite) return WireError::bad_command;
  if ((info & kSizeExponentMask) > 3) return WireError::bad_size;
  if (info & ~(kSizeExponentMask | kResponseBit)) return WireError::reserved_bits;
  if (!all_zero(bytes.subspan(offsetof(WireCommand, padding), sizeof(WireCommand::padding)))) {
    return WireError::nonzero_padding;
  }
  Command c;
  c.op = static_cast<Opcode>(cmd);
  c.size = 1u << (info & kSizeExponentMask);
  c.response_wanted = (info & kResponseBit) != 0;
  c.user_data = get64(bytes, offsetof(WireCommand, user_data));
  c.offset = get64(bytes, offsetof(WireCommand, offset));
  c.data = get64(bytes, offsetof(WireCommand, data));
  if (c.op == Opcode::read ? c.data != 0 : (c.data & ~io::size_mask(c.size)) != 0) return WireError::data_too_wide;
  out = c;
  return WireError::ok;
}

WireError decode(std::span<const uint8_t> bytes, Reply& out) {
  if (WireError e = check_length(bytes); e != WireError::ok) return e;
  if (!all_zero(bytes.subspan(offsetof(WireReply, padding), sizeof(WireReply::padding)))) {
    return WireError::nonzero_padding;
  }
  out.data = get64(bytes, offsetof(WireReply, data));
  out.user_data = get64(bytes, offsetof(WireReply, user_data));
  return WireError::ok;
}

uint64_t page_checksum(std::span<const uint8_t> page) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (uint8_t b : page) {
    hash ^= b;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

}  // namespace iovmm::dispatch::ioregionfd
