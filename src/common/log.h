// Logging to stderr. Guest-triggered messages go through IOVMM_LOG_RATELIMITED so a guest hammering a bad port
// cannot flood the host: each call site prints its first few messages, then at most one line every few seconds
// saying how many it suppressed in between.
#pragma once

#include <fmt/core.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace iovmm::log {

enum class Level { debug, info, warn, error };

void set_level(Level level);
[[nodiscard]] bool enabled(Level level);
void write(Level level, const std::string& message);

template <typename... Args>
void warn(fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(Level::warn)) write(Level::warn, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(Level::info)) write(Level::info, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(Level::debug)) write(Level::debug, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> format, Args&&... args) {
  write(Level::error, fmt::format(format, std::forward<Args>(args)...));
}

// One per call site. Lock-free so it can sit on the vCPU exit path.
class RateLimit {
 public:
  static constexpr uint32_t kBurst = 5;
  static constexpr int64_t kIntervalNs = 5'000'000'000;

  // True when this event may be printed; `suppressed` receives how many were dropped since the last printed one.
  [[nodiscard]] bool allow(uint64_t& suppressed);
  [[nodiscard]] uint64_t total() const { return total_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> last_printed_ns_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> total_{0};
};

}  // namespace iovmm::log

#define IOVMM_LOG_RATELIMITED(...)                                                              \
  do {                                                                                          \
    static ::iovmm::log::RateLimit iovmm_rate_limit_;                                           \
    uint64_t iovmm_suppressed_ = 0;                                                             \
    if (iovmm_rate_limit_.allow(iovmm_suppressed_)) {                                           \
      std::string iovmm_msg_ = fmt::format(__VA_ARGS__);                                        \
      if (iovmm_suppressed_) iovmm_msg_ += fmt::format(" ({} similar suppressed)", iovmm_suppressed_); \
      ::iovmm::log::write(::iovmm::log::Level::warn, iovmm_msg_);                               \
    }                                                                                           \
  } while (0)
