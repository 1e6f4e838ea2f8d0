// Device models that can be built from a --device spec alone, with no machine around them: what an iovmm-device
// process (ioregionfd, out of process) can run. The machine builds the same types through here, then attaches them
// (PCI slot, fixed window, interrupt lines) itself.
#pragma once

#include <memory>
#include <string>

#include <optional>

#include "devices/device_spec.h"
#include "io/device.h"

namespace iovmm::devices {

// Where a device that is not a PCI function lives (PCI functions get their windows from their BARs).
struct FixedWindow {
  io::Space space;
  uint64_t base;
  uint64_t size;
};

struct BuiltDevice {
  std::shared_ptr<io::Device> device;
  std::optional<FixedWindow> fixed_window;  // region 0's place, for devices that are not PCI functions
};

// What the host can do that changes how a device is built.
struct HostFeatures {
  bool ioeventfd_any_length = false;  // KVM_CAP_IOEVENTFD_ANY_LENGTH: a doorbell may match any access width
};

// Takes the spec's device options (the machine has already taken the dispatch ones); throws UsageError for an
// unknown type or option.
[[nodiscard]] BuiltDevice make_device(const DeviceSpec& spec, const HostFeatures& host = {});

// "pci-testdev, vga-window": for error messages.
[[nodiscard]] std::string known_device_types();

}  // namespace iovmm::devices
