// The machine's one epoll thread: host input, signals, timers and device eventfds. Handlers run on this thread
// only and must not block; add/modify/remove may be called from any thread (a vCPU thread adds a doorbell's eventfd
// while the guest selects a test), and a handler removed while it runs finishes with the state it captured.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "common/fd.h"

namespace iovmm {

class EventLoop {
 public:
  using Handler = std::function<void(uint32_t events)>;

  EventLoop();
  // The loop does not own `fd`; the caller keeps it open until remove() or the loop's end.
  void add(int fd, uint32_t events, Handler handler);
  void modify(int fd, uint32_t events);
  void remove(int fd);
  // Runs handlers until `keep_running` returns false (checked after each wake-up).
  void run(const std::function<bool()>& keep_running);

 private:
  Fd epoll_;
  std::mutex mutex_;  // guards handlers_
  std::map<int, std::shared_ptr<Handler>> handlers_;
};

}  // namespace iovmm
