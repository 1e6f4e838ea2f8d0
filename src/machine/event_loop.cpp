#include "machine/event_loop.h"

#include <sys/epoll.h>

#include <cerrno>
#include <fmt/core.h>

#include "common/error.h"

namespace iovmm {

EventLoop::EventLoop() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
  if (!epoll_) throw_errno("epoll_create1");
}

void EventLoop::add(int fd, uint32_t events, Handler handler) {
  auto record = std::make_unique<Record>();
  record->handler = std::move(handler);
  epoll_event event{};
  event.events = events;
  event.data.ptr = record.get();
  std::lock_guard lock(mutex_);
  if (handlers_.count(fd)) throw Error(fmt::format("event loop: fd {} is watched already", fd));
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) throw_errno(fmt::format("epoll_ctl add fd {}", fd));
  handlers_[fd] = std::move(record);
}

void EventLoop::modify(int fd, uint32_t events) {
  std::lock_guard lock(mutex_);
  auto it = handlers_.find(fd);
  if (it == handlers_.end()) throw Error(fmt::format("event loop: fd {} is not watched", fd));
  epoll_event event{};
  event.events = events;
  event.data.ptr = it->second.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &event) != 0) throw_errno(fmt::format("epoll_ctl mod fd {}", fd));
}

void EventLoop::remove(int fd) {
  std::lock_guard lock(mutex_);
  auto it = handlers_.find(fd);
  if (it == handlers_.end()) return;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  it->second->live.store(false, std::memory_order_release);
  retired_.push_back(std::move(it->second));
  handlers_.erase(it);
}

void EventLoop::free_retired() {
  std::vector<std::unique_ptr<Record>> done;
  {
    std::lock_guard lock(mutex_);
    done.swap(retired_);
  }
}

void EventLoop::watch(int fd, std::function<void()> on_readable) {
  add(fd, EPOLLIN, [on_readable = std::move(on_readable)](uint32_t) { on_readable(); });
}

void EventLoop::run(const std::function<bool()>& keep_running) {
  epoll_event events[16];
  auto last_event = std::chrono::steady_clock::now();
  while (keep_running()) {
    free_retired();  // no event of the last batch is being handled any more
    const bool polling = poll_budget_.count() > 0 && std::chrono::steady_clock::now() - last_event < poll_budget_;
    int n = ::epoll_wait(epoll_.get(), events, 16, polling ? 0 : -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("epoll_wait");
    }
    if (n > 0 && poll_budget_.count() > 0) last_event = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
      auto* record = static_cast<Record*>(events[i].data.ptr);
      if (record->live.load(std::memory_order_acquire)) record->handler(events[i].events);
    }
  }
}

}  // namespace iovmm
