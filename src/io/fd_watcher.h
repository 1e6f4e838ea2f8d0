// What a device with work of its own (disk completions) asks of the machine: run a handler when a file descriptor
// becomes readable. The machine runs handlers on its event loop thread, the same thread that delivers on_signal
// doorbells; a handler takes the device's lock itself. The device never sees the loop.
#pragma once

#include <functional>

namespace iovmm::io {

class FdWatcher {
 public:
  virtual ~FdWatcher() = default;
  // Level-triggered: the handler runs again while `fd` stays readable. The caller keeps `fd` open until unwatch().
  virtual void watch(int fd, std::function<void()> on_readable) = 0;
  // After it returns, the handler is not started again (one already running finishes).
  virtual void unwatch(int fd) = 0;
};

}  // namespace iovmm::io
