#include "dispatch/device_options.h"

#include <fmt/core.h>

#include "common/error.h"

namespace iovmm::dispatch {
namespace {

constexpr std::string_view kServerKeys[] = {"server", "posted", "spin", "timeout"};

bool parse_on_off(std::string_view device_text, std::string_view key, const std::string& value) {
  if (value == "on" || value == "true" || value == "1") return true;
  if (value == "off" || value == "false" || value == "0") return false;
  throw UsageError(fmt::format("--device {}: {}={}: expected on or off", device_text, key, value));
}

// Spinning longer than a second only burns a core; a server slower than an hour is dead.
constexpr unsigned kMaxSpinUs = 1'000'000;
constexpr unsigned kMaxTimeoutMs = 3'600'000;

unsigned parse_number(std::string_view device_text, std::string_view key, const std::string& value, unsigned min,
                      unsigned max) {
  const bool digits = !value.empty() && value.find_first_not_of("0123456789") == std::string::npos;
  if (digits) {
    // Past max, however many digits: stoull would throw out_of_range past 2^64, which is out of range too.
    const bool fits = value.size() <= 19;
    const unsigned long long n = fits ? std::stoull(value) : ~0ull;
    if (n >= min && n <= max) return static_cast<unsigned>(n);
    throw UsageError(fmt::format("--device {}: {}={}: out of range ({} to {})", device_text, key, value, min, max));
  }
  throw UsageError(
      fmt::format("--device {}: {}={}: expected a number from {} to {}", device_text, key, value, min, max));
}

}  // namespace

bool is_dispatch_option(std::string_view key) {
  if (key == "dispatch" || key.starts_with("dispatch.")) return true;
  for (auto k : kServerKeys) {
    if (key == k) return true;
  }
  return false;
}

DeviceDispatchOptions parse_device_dispatch(std::string_view device_text, std::string_view type,
                                            const std::vector<std::pair<std::string, std::string>>& options) {
  DeviceDispatchOptions out;
  for (const auto& [key, value] : options) {
    if (key == "dispatch" || key.starts_with("dispatch.")) out.choice.add(type, key, value);
  }
  const bool served = out.choice.whole_device_ioregionfd();
  for (const auto& [key, value] : options) {
    if (!is_dispatch_option(key) || key.starts_with("dispatch")) continue;
    if (!served) {
      throw UsageError(fmt::format("--device {}: {}= applies only with dispatch=ioregionfd", device_text, key));
    }
    if (key == "server") {
      if (value != "thread" && value != "process") {
        throw UsageError(fmt::format("--device {}: server={}: expected thread or process", device_text, value));
      }
      out.process_server = value == "process";
    } else if (key == "posted") {
      out.ioregionfd.posted = parse_on_off(device_text, key, value);
    } else if (key == "spin") {
      out.ioregionfd.spin_us = parse_number(device_text, key, value, 0, kMaxSpinUs);
    } else {
      out.ioregionfd.timeout = std::chrono::milliseconds(parse_number(device_text, key, value, 1, kMaxTimeoutMs));
    }
  }
  return out;
}

std::unique_ptr<ioregionfd::Channel> start_device_server(DeviceDispatchOptions options,
                                                         std::shared_ptr<io::Device> device,
                                                         std::string_view device_text, std::string_view type,
                                                         const std::string& process_spec_text, bool serves_alone,
                                                         const GuestMemory& memory) {
  if (!options.process_server) {
    return ioregionfd::start_thread_server(std::move(device), std::move(options.ioregionfd));
  }
  if (!serves_alone) {
    throw UsageError(fmt::format("--device {}: {} needs guest memory, interrupts and the VMM's event loop; an "
                                 "iovmm-device process cannot serve it yet (use server=thread)",
                                 device_text, type));
  }
  return ioregionfd::start_process_server(process_spec_text, memory, std::move(options.ioregionfd));
}

}  // namespace iovmm::dispatch
