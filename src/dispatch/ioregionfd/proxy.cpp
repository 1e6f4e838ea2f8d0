#include "dispatch/ioregionfd/proxy.h"

#include <sys/socket.h>

#include <cstring>
#include <fmt/core.h>

#include "common/log.h"
#include "dispatch/ioregionfd/transport.h"
#include "dispatch/ioregionfd/wire.h"

namespace iovmm::dispatch::ioregionfd {

IoregionfdProxy::IoregionfdProxy(std::string name, Fd socket, const Options& options)
    : io::Device(std::move(name)),
      socket_(std::move(socket)),
      posted_(options.posted),
      spin_us_(options.spin_us),
      timeout_(options.timeout),
      on_failure_(options.on_failure) {}

std::string IoregionfdProxy::exchange(Opcode op, unsigned region, uint64_t offset, unsigned size, uint64_t value,
                                      bool wait, uint64_t& reply_data) {
  // Built only on the failure paths: this runs on every access.
  auto what = [&] {
    return fmt::format("a {}-byte {} of region {} offset {:#x}", size, op == Opcode::read ? "read" : "write",
                       region, offset);
  };
  auto io_failure = [&](IoStatus status, int err, const char* waiting_for) {
    switch (status) {
      case IoStatus::closed: return fmt::format("closed its socket during {}", what());
      case IoStatus::timeout:
        return fmt::format("did not {} {} within {} ms", waiting_for, what(), timeout_.count());
      default: return fmt::format("socket failed during {}: {}", what(), std::strerror(err));
    }
  };

  const uint64_t user_data = make_user_data(region, next_sequence_++);
  Command command{op, size, wait, user_data, offset, op == Opcode::write ? value & io::size_mask(size) : 0};
  const auto deadline = Clock::now() + timeout_;
  if (SendResult s = send_message(socket_.get(), encode(command), deadline); s.status != IoStatus::ok) {
    return io_failure(s.status, s.err, "accept");
  }
  if (!wait) {
    posted_writes_.fetch_add(1, std::memory_order_relaxed);
    return {};
  }

  Message in{};
  ReceiveResult r = receive_message(socket_.get(), in, spin_us_, deadline);
  if (r.status != IoStatus::ok) return io_failure(r.status, r.err, "answer");
  if (r.length != kMessageSize) return fmt::format("sent a {}-byte reply to {} (expected {})", r.length, what(), kMessageSize);
  Reply reply;
  if (WireError e = decode(in, reply); e != WireError::ok) {
    return fmt::format("sent a malformed reply to {} ({})", what(), to_string(e));
  }
  if (reply.user_data != user_data) {
    return fmt::format("answered {} with the reply to another request (user data {:#x}, expected {:#x})", what(),
                       reply.user_data, user_data);
  }
  if (op == Opcode::read && (reply.data & ~io::size_mask(size)) != 0) {
    return fmt::format("answered {} with {:#x}, wider than the access", what(), reply.data);
  }
  if (op == Opcode::write && reply.data != 0) {
    return fmt::format("acknowledged {} with data {:#x} (an acknowledgement carries none)", what(), reply.data);
  }
  round_trips_.fetch_add(1, std::memory_order_relaxed);
  reply_data = reply.data;
  return {};
}

uint64_t IoregionfdProxy::read(unsigned region, uint64_t offset, unsigned size) {
  const uint64_t all_ones = io::size_mask(size);
  if (!io::valid_access_size(size) || region > kMaxRegion) {
    IOVMM_LOG_RATELIMITED("ioregionfd: {}: cannot carry a {}-byte read of region {}; answered with all-ones", name(),
                          size, region);
    return all_ones;
  }
  std::string why;
  uint64_t data = 0;
  {
    std::lock_guard lock(channel_mutex_);
    if (failed_.load(std::memory_order_acquire)) return all_ones;
    why = exchange(Opcode::read, region, offset, size, 0, true, data);
    if (!why.empty()) failed_.store(true, std::memory_order_release);
  }
  if (!why.empty()) {
    fail(why);
    return all_ones;
  }
  return data;
}

void IoregionfdProxy::write(unsigned region, uint64_t offset, unsigned size, uint64_t value) {
  if (!io::valid_access_size(size) || region > kMaxRegion) {
    IOVMM_LOG_RATELIMITED("ioregionfd: {}: cannot carry a {}-byte write of region {}; dropped", name(), size, region);
    return;
  }
  std::string why;
  {
    std::lock_guard lock(channel_mutex_);
    if (failed_.load(std::memory_order_acquire)) return;
    uint64_t ignored = 0;
    why = exchange(Opcode::write, region, offset, size, value, !posted_, ignored);
    if (!why.empty()) failed_.store(true, std::memory_order_release);
  }
  if (!why.empty()) fail(why);
}

void IoregionfdProxy::fail(const std::string& why) {
  // The server ends too (EOF), and nothing more is read from a stream we no longer trust.
  ::shutdown(socket_.get(), SHUT_RDWR);
  if (closing_.load(std::memory_order_acquire)) return;  // we hung up ourselves: not the server's fault
  std::string message = fmt::format("ioregionfd: {} server {}", name(), why);
  if (describe_peer_) {
    if (std::string peer = describe_peer_(); !peer.empty()) message += " (" + peer + ")";
  }
  if (on_failure_) {
    on_failure_(message);
  } else {
    log::error("{}", message);
  }
}

void IoregionfdProxy::close() {
  closing_.store(true, std::memory_order_release);
  failed_.store(true, std::memory_order_release);
  ::shutdown(socket_.get(), SHUT_RDWR);  // wakes an access in flight (it sees EOF) and the server
}

}  // namespace iovmm::dispatch::ioregionfd
