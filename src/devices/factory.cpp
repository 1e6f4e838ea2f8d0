#include "devices/factory.h"

#include <fmt/core.h>

#include "common/error.h"

namespace iovmm::devices {

std::string known_device_types() { return "none yet"; }

std::shared_ptr<io::Device> make_device(const DeviceSpec& spec) {
  throw UsageError(
      fmt::format("--device {}: unknown device type '{}' (known: {})", spec.text(), spec.type(), known_device_types()));
}

}  // namespace iovmm::devices
