// How a run ends: the first request wins (a guest power-off, a debug-exit, a signal, a fatal error); everyone else
// is told through an eventfd and the vCPU kicker.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>

#include "common/fd.h"

namespace iovmm {

class StopController {
 public:
  StopController();

  // Thread-safe and idempotent; only the first call sets the status and reason.
  void request(int status, std::string reason);
  [[nodiscard]] bool requested() const { return requested_.load(std::memory_order_acquire); }
  [[nodiscard]] int status() const;
  [[nodiscard]] std::string reason() const;
  // Readable once a stop was requested (for epoll).
  [[nodiscard]] int eventfd() const { return eventfd_.get(); }
  // Called once, after the first request, to get vCPUs out of KVM_RUN.
  void set_kicker(std::function<void()> kick);

 private:
  std::atomic<bool> requested_{false};
  mutable std::mutex mutex_;
  int status_ = 0;
  std::string reason_;
  std::function<void()> kick_;
  Fd eventfd_;
};

}  // namespace iovmm
