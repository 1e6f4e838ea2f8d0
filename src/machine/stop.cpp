#include "machine/stop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include "common/error.h"

namespace iovmm {

StopController::StopController() : eventfd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!eventfd_) throw_errno("eventfd for stop requests");
}

void StopController::request(int status, std::string reason) {
  std::function<void()> kick;
  {
    std::lock_guard lock(mutex_);
    if (requested_.load(std::memory_order_relaxed)) return;
    status_ = status;
    reason_ = std::move(reason);
    requested_.store(true, std::memory_order_release);
    kick = kick_;
  }
  uint64_t one = 1;
  [[maybe_unused]] auto written = ::write(eventfd_.get(), &one, sizeof one);
  if (kick) kick();
}

int StopController::status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

std::string StopController::reason() const {
  std::lock_guard lock(mutex_);
  return reason_;
}

void StopController::set_kicker(std::function<void()> kick) {
  bool already;
  {
    std::lock_guard lock(mutex_);
    kick_ = kick;
    already = requested_.load(std::memory_order_relaxed);
  }
  if (already && kick) kick();
}

}  // namespace iovmm
