// libFuzzer target for the ioregionfd wire decoders (src/dispatch/ioregionfd/wire.h): whatever bytes arrive from a
// device process or a VMM, decoding neither crashes nor reads past the message, and whatever it accepts re-encodes
// to exactly the bytes it came from (strict decoding: no bit is ignored). Links only iovmm_dispatch.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include "dispatch/ioregionfd/wire.h"

using namespace iovmm::dispatch::ioregionfd;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);

  Command command;
  if (decode(bytes, command) == WireError::ok) {
    if (size != kMessageSize) std::abort();
    Message again = encode(command);  // must not throw: decode accepted only what can be encoded
    if (std::memcmp(again.data(), data, kMessageSize) != 0) std::abort();
    Command twice;
    if (decode(again, twice) != WireError::ok || !(twice == command)) std::abort();
  }

  Reply reply;
  if (decode(bytes, reply) == WireError::ok) {
    if (size != kMessageSize) std::abort();
    Message again = encode(reply);
    if (std::memcmp(again.data(), data, kMessageSize) != 0) std::abort();
  }

  // The user-data helpers are total.
  if (size >= 8) {
    uint64_t user_data;
    std::memcpy(&user_data, data, sizeof user_data);
    if (make_user_data(region_of(user_data), user_data & kSequenceMask) != user_data) std::abort();
  }
  return 0;
}
