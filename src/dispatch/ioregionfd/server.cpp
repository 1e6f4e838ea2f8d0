#include "dispatch/ioregionfd/server.h"

#include <cstring>
#include <fmt/core.h>

#include <mutex>

#include "common/log.h"
#include "dispatch/ioregionfd/transport.h"
#include "dispatch/ioregionfd/wire.h"

namespace iovmm::dispatch::ioregionfd {

Server::Server(std::shared_ptr<io::Device> device, Fd socket, ServerOptions options)
    : device_(std::move(device)), socket_(std::move(socket)), options_(std::move(options)) {}

bool Server::allowed(unsigned region, uint64_t offset, unsigned size) const {
  if (options_.windows.empty()) return true;
  for (const auto& w : options_.windows) {
    if (w.region == region) return offset < w.size && size <= w.size - offset;
  }
  return false;
}

ServerResult Server::run() {
  ServerResult result;
  const std::string& name = device_->name();
  Message in{};
  for (;;) {
    ReceiveResult r = receive_message(socket_.get(), in, options_.spin_us, std::nullopt);
    if (r.status == IoStatus::closed) return result;
    if (r.status != IoStatus::ok) {
      result.clean = false;
      result.error = fmt::format("ioregionfd server for {}: receive failed: {}", name, std::strerror(r.err));
      return result;
    }
    Command c;
    if (WireError e = decode(std::span<const uint8_t>(in.data(), std::min(r.length, kMessageSize)), c);
        e != WireError::ok || r.length != kMessageSize) {
      if (r.length > kMessageSize) e = WireError::long_message;
      result.clean = false;
      result.error = fmt::format("ioregionfd server for {}: malformed command #{} ({}, {} bytes); closing", name,
                                 result.commands + 1, to_string(e), r.length);
      return result;
    }
    ++result.commands;

    const unsigned region = region_of(c.user_data);
    uint64_t value = io::size_mask(c.size);  // what hardware answers for nothing there
    if (region == kMemoryProbeRegion && options_.probe) {
      if (c.op == Opcode::read) value = options_.probe(c.offset) & io::size_mask(c.size);
    } else if (region != kMemoryProbeRegion && allowed(region, c.offset, c.size)) {
      std::lock_guard lock(device_->mutex());
      if (c.op == Opcode::read) {
        value = device_->read(region, c.offset, c.size) & io::size_mask(c.size);
      } else {
        device_->write(region, c.offset, c.size, c.data);
      }
    } else {
      ++result.refused;
      IOVMM_LOG_RATELIMITED("ioregionfd server for {}: a {}-byte {} at region {} offset {:#x} is outside its "
                            "windows; {}",
                            name, c.size, c.op == Opcode::read ? "read" : "write", region, c.offset,
                            c.op == Opcode::read ? "answered with all-ones" : "dropped");
    }
    if (!c.response_wanted) continue;
    Reply reply{c.op == Opcode::read ? value : 0, c.user_data};
    SendResult s = send_message(socket_.get(), encode(reply), std::nullopt);
    if (s.status == IoStatus::closed) return result;
    if (s.status != IoStatus::ok) {
      result.clean = false;
      result.error = fmt::format("ioregionfd server for {}: send failed: {}", name, std::strerror(s.err));
      return result;
    }
  }
}

}  // namespace iovmm::dispatch::ioregionfd
