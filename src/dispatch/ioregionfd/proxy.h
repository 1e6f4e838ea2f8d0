// The VMM side of an ioregionfd channel: an io::Device that stands in for a device served elsewhere, installed as a
// window's carrier (the route's, dispatch/route.h). Each access becomes one command on the socket; a read waits for
// the reply, a write waits for its acknowledgement unless writes are posted.
//
// Several vCPUs share one proxy, serialised on the proxy's own channel mutex (not Device::mutex(): the bus does not
// take a carrier's lock, and nobody else should). One request is in flight at a time, so replies need no reordering
// and the FIFO order that posted writes rely on holds across vCPUs too.
//
// Nothing the server does can hang or crash the VM: every wait is bounded by the timeout, and the first sign of
// trouble (EOF, a short, long or malformed reply, a reply to some other request, data wider than the access, a
// timeout) calls on_failure once with one line of context. From then on reads return all-ones and writes are
// dropped, as for a device that fell off the bus, and the socket is shut down so the server ends too.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "common/fd.h"
#include "dispatch/ioregionfd/options.h"
#include "dispatch/ioregionfd/wire.h"
#include "io/device.h"

namespace iovmm::dispatch::ioregionfd {

class IoregionfdProxy : public io::Device {
 public:
  // `name` is the served device's, for messages. Takes `socket` (a connected SOCK_SEQPACKET end). Uses posted,
  // spin_us, timeout and on_failure of `options`.
  IoregionfdProxy(std::string name, Fd socket, const Options& options);

  [[nodiscard]] uint64_t read(unsigned region, uint64_t offset, unsigned size) override;
  void write(unsigned region, uint64_t offset, unsigned size, uint64_t value) override;

  // Shuts the socket down (the server sees EOF and ends) without reporting a failure; later accesses read
  // all-ones. Safe to call from any thread, while accesses are in flight, and more than once.
  void close();

  // Appended to failure messages, e.g. "(iovmm-device pid 12 killed by signal 9)". Set before any access.
  void set_peer_description(std::function<std::string()> describe) { describe_peer_ = std::move(describe); }

  [[nodiscard]] bool failed() const { return failed_.load(std::memory_order_acquire); }
  [[nodiscard]] uint64_t round_trips() const { return round_trips_.load(std::memory_order_relaxed); }
  [[nodiscard]] uint64_t posted_writes() const { return posted_writes_.load(std::memory_order_relaxed); }

 private:
  // One request (and its reply when `wait`): empty string on success, else the failure's description.
  [[nodiscard]] std::string exchange(Opcode op, unsigned region, uint64_t offset, unsigned size, uint64_t value,
                                     bool wait, uint64_t& reply_data);
  // Marks the channel failed and reports `why` (once, unless the channel was closed on purpose).
  void fail(const std::string& why);

  Fd socket_;
  bool posted_;
  unsigned spin_us_;
  std::chrono::milliseconds timeout_;
  FailureHandler on_failure_;
  std::function<std::string()> describe_peer_;

  std::mutex channel_mutex_;  // one request in flight; guards next_sequence_
  uint64_t next_sequence_ = 1;
  std::atomic<bool> failed_{false};
  std::atomic<bool> closing_{false};
  std::atomic<uint64_t> round_trips_{0};
  std::atomic<uint64_t> posted_writes_{0};
};

}  // namespace iovmm::dispatch::ioregionfd
