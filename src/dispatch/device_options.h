// The dispatch options of one --device: dispatch=PATH, dispatch.NAME=PATH and, with dispatch=ioregionfd, the
// device server's server=thread|process, posted=, spin=, timeout=. They arrive in the device's KEY=VALUE list; what
// is not a dispatch option is the device's own (and is what a device process is told).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dispatch/binding.h"
#include "dispatch/ioregionfd/channel.h"
#include "io/device.h"
#include "memory/guest_memory.h"

namespace iovmm::dispatch {

struct DeviceDispatchOptions {
  DispatchChoice choice;
  bool process_server = false;  // ioregionfd: server=process
  ioregionfd::Options ioregionfd;
};

[[nodiscard]] bool is_dispatch_option(std::string_view key);

// Throws UsageError naming `device_text` for an unknown path, a bad value, or a server option without
// dispatch=ioregionfd.
[[nodiscard]] DeviceDispatchOptions parse_device_dispatch(
    std::string_view device_text, std::string_view type,
    const std::vector<std::pair<std::string, std::string>>& options);

// Starts the device server that carries a dispatch=ioregionfd device: `device` itself on a thread, or a new instance
// built from `process_spec_text` (the device's own options) in an iovmm-device process. `serves_alone` is false for
// a device that needs the VMM's memory, interrupts and event loop, which a process cannot have yet.
[[nodiscard]] std::unique_ptr<ioregionfd::Channel> start_device_server(DeviceDispatchOptions options,
                                                                       std::shared_ptr<io::Device> device,
                                                                       std::string_view device_text,
                                                                       std::string_view type,
                                                                       const std::string& process_spec_text,
                                                                       bool serves_alone, const GuestMemory& memory);

}  // namespace iovmm::dispatch
