// Moving one 32-byte message over a connected SOCK_SEQPACKET socket, for both ends of an ioregionfd channel.
// SEQPACKET keeps message boundaries, so a peer's short or long message arrives as exactly that (the receive reports
// the message's true length) instead of shifting every later message.
//
// Waiting for a message spins first — non-blocking receives with a pause between them, for up to `spin_us` — and
// only then sleeps in ppoll. On this machine waking a sleeping thread costs ~50 µs while a spinning hand-off costs
// well under 1 µs (when a core is free), so spinning is what makes the path cheap; sleeping is what keeps an idle
// channel from burning a core.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "dispatch/ioregionfd/wire.h"

namespace iovmm::dispatch::ioregionfd {

using Clock = std::chrono::steady_clock;

enum class IoStatus : uint8_t {
  ok,
  closed,   // EOF, or the peer is gone (EPIPE/ECONNRESET); a zero-length message counts too
  timeout,  // the deadline passed
  error,    // any other errno (kept in `err`)
};

struct ReceiveResult {
  IoStatus status = IoStatus::ok;
  size_t length = 0;  // the message's true length when ok (may exceed kMessageSize: the rest was dropped)
  int err = 0;
};

// Waits for one message; `deadline` nullopt waits for ever. The first min(length, 32) bytes land in `out`.
[[nodiscard]] ReceiveResult receive_message(int fd, Message& out, unsigned spin_us,
                                            std::optional<Clock::time_point> deadline);

struct SendResult {
  IoStatus status = IoStatus::ok;
  int err = 0;
};

// Sends one message, waiting (until `deadline`) while the socket's buffer is full. Never raises SIGPIPE.
[[nodiscard]] SendResult send_message(int fd, const Message& message, std::optional<Clock::time_point> deadline);

// A short pause for spin loops (x86 `pause`: cheaper for the sibling hyperthread and for the memory bus).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace iovmm::dispatch::ioregionfd
