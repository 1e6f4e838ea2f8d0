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
  epoll_event event{};
  event.events = events;
  event.data.fd = fd;
  std::lock_guard lock(mutex_);
  // Registered before epoll can report the fd, so the loop always finds its handler.
  handlers_[fd] = std::make_shared<Handler>(std::move(handler));
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
    handlers_.erase(fd);
    throw_errno(fmt::format("epoll_ctl add fd {}", fd));
  }
}

void EventLoop::modify(int fd, uint32_t events) {
  epoll_event event{};
  event.events = events;
  event.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &event) != 0) throw_errno(fmt::format("epoll_ctl mod fd {}", fd));
}

void EventLoop::remove(int fd) {
  std::lock_guard lock(mutex_);
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  handlers_.erase(fd);
}

void EventLoop::watch(int fd, std::function<void()> on_readable) {
  add(fd, EPOLLIN, [on_readable = std::move(on_readable)](uint32_t) { on_readable(); });
}

void EventLoop::run(const std::function<bool()>& keep_running) {
  epoll_event events[16];
  auto last_event = std::chrono::steady_clock::now();
  while (keep_running()) {
    const bool polling = poll_budget_.count() > 0 && std::chrono::steady_clock::now() - last_event < poll_budget_;
    int n = ::epoll_wait(epoll_.get(), events, 16, polling ? 0 : -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("epoll_wait");
    }
    if (n > 0 && poll_budget_.count() > 0) last_event = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
      std::shared_ptr<Handler> handler;
      {
        std::lock_guard lock(mutex_);
        auto it = handlers_.find(events[i].data.fd);
        if (it == handlers_.end()) continue;
        handler = it->second;  // keeps it alive if it removes itself
      }
      (*handler)(events[i].events);
    }
  }
}

}  // namespace iovmm
