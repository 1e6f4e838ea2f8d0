#include "common/log.h"

#include <unistd.h>

#include <cstdio>

namespace iovmm::log {
namespace {
std::atomic<Level> g_level{Level::warn};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

void set_level(Level level) { g_level.store(level, std::memory_order_relaxed); }
bool enabled(Level level) { return level >= g_level.load(std::memory_order_relaxed); }

void write(Level level, const std::string& message) {
  static constexpr const char* kPrefix[] = {"debug", "info", "warning", "error"};
  // One write(2) per line so lines from different threads never interleave.
  std::string line = fmt::format("iovmm: {}: {}\n", kPrefix[static_cast<int>(level)], message);
  [[maybe_unused]] auto written = ::write(STDERR_FILENO, line.data(), line.size());
}

bool RateLimit::allow(uint64_t& suppressed) {
  uint64_t seen = total_.fetch_add(1, std::memory_order_relaxed);
  int64_t now = now_ns();
  if (seen < kBurst) {
    last_printed_ns_.store(now, std::memory_order_relaxed);
    suppressed = 0;
    return true;
  }
  int64_t last = last_printed_ns_.load(std::memory_order_relaxed);
  if (now - last >= kIntervalNs && last_printed_ns_.compare_exchange_strong(last, now)) {
    suppressed = dropped_.exchange(0, std::memory_order_relaxed);
    return true;
  }
  dropped_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

}  // namespace iovmm::log
