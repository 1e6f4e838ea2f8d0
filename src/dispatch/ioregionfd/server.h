// The device side of an ioregionfd channel: reads commands from a socket, performs them on one io::Device with the
// device's mutex held, and replies when the command asks for it. The same server runs on a thread inside the VMM
// and in an iovmm-device process; it trusts nothing it receives: an access outside the windows it was told about is
// answered with all-ones (reads) or dropped (writes) and logged (rate-limited), and a malformed command ends the
// session, since the stream can no longer be trusted.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/fd.h"
#include "io/device.h"

namespace iovmm::dispatch::ioregionfd {

// One window of the device the server may touch: (region, [0, size)).
struct ServedWindow {
  unsigned region = 0;
  uint64_t size = 0;
};

struct ServerOptions {
  unsigned spin_us = 0;  // after each command, spin this long for the next before sleeping
  // Empty: every (region, offset) goes to the device, which must then refuse what it does not have itself (fine
  // inside the VMM, where the bus has already checked the access against the window).
  std::vector<ServedWindow> windows;
  // Answers reads of kMemoryProbeRegion (offset = guest-physical address); unset: that region is not served.
  std::function<uint64_t(uint64_t gpa)> probe;
};

struct ServerResult {
  bool clean = true;   // the peer closed the socket; false: a malformed command or socket error (see `error`)
  std::string error;   // one line with context, when !clean
  uint64_t commands = 0;
  uint64_t refused = 0;  // well-formed commands outside the served windows
};

class Server {
 public:
  Server(std::shared_ptr<io::Device> device, Fd socket, ServerOptions options);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves until the peer closes the socket or sends something malformed. Blocks; call on the serving thread.
  [[nodiscard]] ServerResult run();

 private:
  [[nodiscard]] bool allowed(unsigned region, uint64_t offset, unsigned size) const;

  std::shared_ptr<io::Device> device_;
  Fd socket_;
  ServerOptions options_;
};

}  // namespace iovmm::dispatch::ioregionfd
