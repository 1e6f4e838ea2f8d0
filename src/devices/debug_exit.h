// QEMU's isa-debug-exit: a port the guest writes to end the VM with a status of its choosing (test harnesses).
//
// Models: a write of v (1, 2 or 4 bytes, v masked to the access width) reports exit status (v << 1) | 1, exactly as
// QEMU computes it, so a guest's pass/fail code means the same under both VMMs. Reads return all-ones.
// Leaves out: QEMU's configurable iosize (the window size is the machine's choice; 4 bytes at 0xF4 by default).
// Spec: QEMU hw/misc/debugexit.c (no hardware counterpart).
#pragma once

#include <cstdint>
#include <functional>

#include "io/device.h"

namespace iovmm::devices {

class DebugExit final : public io::Device {
 public:
  static constexpr uint16_t kDefaultBase = 0xF4;
  static constexpr uint64_t kDefaultSize = 4;

  // `on_exit` receives the status; it runs on the vCPU thread with the device mutex held and should only request
  // the stop (the process exit status keeps the low 8 bits, as with QEMU's exit()).
  explicit DebugExit(std::string name, std::function<void(int status)> on_exit);

  [[nodiscard]] uint64_t read(unsigned region, uint64_t offset, unsigned size) override;
  [[nodiscard]] std::span<const io::RegisterBlock> register_blocks() const override;
  void write(unsigned region, uint64_t offset, unsigned size, uint64_t value) override;

 private:
  std::function<void(int)> on_exit_;
};

}  // namespace iovmm::devices
