// What the virtio transport fuzz targets lend a transport instead of a machine: an interrupt line that remembers its
// level (the targets check it after every event) and an fd watcher that keeps the handlers for the fuzzer to run.
#pragma once

#include <functional>
#include <map>

#include "io/device.h"
#include "io/fd_watcher.h"

namespace iovmm::fuzz {

class Line final : public io::IrqLine {
 public:
  void set_level(bool asserted) override { level = asserted; }
  bool level = false;
};

class Watcher final : public io::FdWatcher {
 public:
  void watch(int fd, std::function<void()> handler) override { handlers[fd] = std::move(handler); }
  void unwatch(int fd) override { handlers.erase(fd); }
  std::map<int, std::function<void()>> handlers;
};

}  // namespace iovmm::fuzz
