// Device models that can be built from a --device spec alone, with no machine around them: what an iovmm-device
// process (ioregionfd, out of process) can run. The machine builds the same types through here, then attaches them
// (PCI slot, fixed window, interrupt lines) itself.
#pragma once

#include <memory>
#include <string>

#include "devices/device_spec.h"
#include "io/device.h"

namespace iovmm::devices {

// Takes the spec's device options (not the dispatch ones: those belong to the machine); throws UsageError for an
// unknown type or option.
[[nodiscard]] std::shared_ptr<io::Device> make_device(const DeviceSpec& spec);

// "pci-testdev, vga-window": for error messages.
[[nodiscard]] std::string known_device_types();

}  // namespace iovmm::devices
