// Port 0x80, the PC's POST-code / I/O-delay port: writes are accepted and dropped, reads return all-ones, as
// QEMU's -M pc does ("ioport80"). Kernels write it for I/O delays and our bench guests write 0xB0/0xE0 there to mark
// a measured loop: the machine passes an observer that snapshots statistics at those markers. Mapped so such writes
// are not reported as guest mistakes.
#pragma once

#include <functional>
#include <span>
#include <utility>

#include "io/device.h"

namespace iovmm::devices {

class PostPort final : public io::Device {
 public:
  static constexpr uint64_t kPort = 0x80;
  // Benchmark markers: written before and after a measured loop (the same values QEMU's kvm_pio trace shows).
  static constexpr uint8_t kMarkerBegin = 0xB0;
  static constexpr uint8_t kMarkerEnd = 0xE0;
  using Observer = std::function<void(uint8_t marker)>;

  // `observer` (may be empty) learns every marker written, on the writing vCPU's thread, before the write is counted.
  explicit PostPort(Observer observer = {}) : io::Device("post-port"), observer_(std::move(observer)) {}
  [[nodiscard]] uint64_t read(unsigned, uint64_t, unsigned size) override { return io::size_mask(size); }
  void write(unsigned, uint64_t, unsigned size, uint64_t value) override {
    if (observer_ && size == 1 && (value == kMarkerBegin || value == kMarkerEnd)) observer_(static_cast<uint8_t>(value));
  }
  [[nodiscard]] std::span<const io::RegisterBlock> register_blocks() const override;

 private:
  Observer observer_;
};

}  // namespace iovmm::devices
