// How one ioregionfd channel behaves: shared by the proxy (VMM side) and the server it talks to.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "dispatch/ioregionfd/server.h"

namespace iovmm::dispatch::ioregionfd {

// Told once, on the vCPU thread that noticed, when the server dies or misbehaves: one line starting
// "ioregionfd: <device> server ...". The machine stops the VM (status 4) with it.
using FailureHandler = std::function<void(const std::string& message)>;

struct Options {
  // Writes are sent without waiting for an acknowledgement. The socket is FIFO and the server handles commands in
  // order, so any later read's reply implies every earlier posted write has been performed.
  bool posted = false;
  // Both sides spin this long for a message before sleeping (see transport.h): 0 sleeps at once.
  unsigned spin_us = 0;
  // How long a read (or a waited write) may take before the server is declared dead.
  std::chrono::milliseconds timeout{5000};
  FailureHandler on_failure;
  // The windows the server serves. Thread server: empty means "whatever the device accepts". Process server: empty
  // means the device's PCI BARs, as iovmm-device finds them.
  std::vector<ServedWindow> windows;
  // Process server only: the iovmm-device executable; empty: "iovmm-device" next to /proc/self/exe.
  std::string device_binary;
};

}  // namespace iovmm::dispatch::ioregionfd
