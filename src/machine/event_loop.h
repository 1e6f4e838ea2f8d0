// The machine's one epoll thread: host input, signals, timers and device eventfds. Handlers run on this thread
// only and must not block; add/modify/remove may be called from any thread (a vCPU thread adds a doorbell's eventfd
// while the guest selects a test), and a handler removed while it runs finishes with the state it captured.
// Each epoll event carries a pointer to its handler's record, so an event costs no lock and no lookup; a removed
// record is kept until the loop starts its next wait, after every event that could still name it was handled.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "common/fd.h"
#include "io/fd_watcher.h"

namespace iovmm {

class EventLoop final : public io::FdWatcher {
 public:
  using Handler = std::function<void(uint32_t events)>;

  EventLoop();
  // The loop does not own `fd`; the caller keeps it open until remove() or the loop's end.
  void add(int fd, uint32_t events, Handler handler);
  void modify(int fd, uint32_t events);
  void remove(int fd);
  // io::FdWatcher, for devices: level-triggered EPOLLIN. A handler already fetched by the loop when unwatch() runs may
  // still start once; device handlers therefore re-check their own state under the device lock.
  void watch(int fd, std::function<void()> on_readable) override;
  void unwatch(int fd) override { remove(fd); }

  // Adaptive polling, as QEMU's iothreads do (poll-max-ns): after handling events, look again without sleeping for
  // up to `budget` before blocking, so that a doorbell rung soon after is handled without a thread wake-up (tens of
  // microseconds here). Costs a core while polling; 0 (the default) never polls.
  void set_poll_budget(std::chrono::microseconds budget) { poll_budget_ = budget; }

  // Runs handlers until `keep_running` returns false (checked after each wake-up).
  void run(const std::function<bool()>& keep_running);

 private:
  Fd epoll_;
  struct Record {
    Handler handler;
    std::atomic<bool> live{true};
  };
  void free_retired();

  std::mutex mutex_;  // guards handlers_ and retired_
  std::map<int, std::unique_ptr<Record>> handlers_;
  std::vector<std::unique_ptr<Record>> retired_;
  std::chrono::microseconds poll_budget_{0};
};

}  // namespace iovmm
