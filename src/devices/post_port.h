// Port 0x80, the PC's POST-code / I/O-delay port: writes are accepted and dropped, reads return all-ones, as
// QEMU's -M pc does ("ioport80"). Kernels write it for I/O delays and our bench guests write 0xB0/0xE0 there to mark
// a measured loop (the machine notes those; see VcpuRunner::kMarkerPort). Mapped so such writes are not reported
// as guest mistakes.
#pragma once

#include <span>

#include "io/device.h"

namespace iovmm::devices {

class PostPort final : public io::Device {
 public:
  static constexpr uint64_t kPort = 0x80;
  PostPort() : io::Device("post-port") {}
  [[nodiscard]] uint64_t read(unsigned, uint64_t, unsigned size) override { return io::size_mask(size); }
  void write(unsigned, uint64_t, unsigned, uint64_t) override {}
  [[nodiscard]] std::span<const io::RegisterBlock> register_blocks() const override;
};

}  // namespace iovmm::devices
