// The legacy VGA memory window 0xA0000–0xBFFFF as the bench sees it on QEMU's `-M pc`: a region of device memory
// whose writes QEMU's KVM accelerator registers as coalesced MMIO, so a guest writing it exits only when it reads
// back or the ring fills. It exists to measure the coalesced path against QEMU's, not to display anything.
//
// Models: 128 KiB of plain latched memory — a write stores its bytes, a read returns them — for accesses of 1, 2, 4
// or 8 bytes at any offset (little-endian, unaligned allowed). The register table is one block "vram" holding one
// `latch` register covering the whole window, so `dispatch=coalesced` is legal for it: writes may sit in KVM's ring
// until the next exit, and reads (which always exit) see every earlier write once the ring has been drained.
// Leaves out: everything that makes it VGA — planes, latches, the graphics/sequencer registers that steer writes,
// chain-4/odd-even addressing, the text/graphics display and the 0x3B0–0x3DF I/O ports.
// Spec: none for the behaviour modelled; the window is IBM VGA's (0xA0000–0xBFFFF), and QEMU's hw/display/vga.c
// ("vga-lowmem", coalesced in vga_init) is the counterpart measured against.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "io/device.h"
#include "io/registers.h"

namespace iovmm::devices {

class VgaWindow final : public io::Device {
 public:
  static constexpr uint64_t kBase = 0xA0000;
  static constexpr uint64_t kSize = 0x20000;

  explicit VgaWindow(std::string name = "vga");

  [[nodiscard]] uint64_t read(unsigned region, uint64_t offset, unsigned size) override;
  void write(unsigned region, uint64_t offset, unsigned size, uint64_t value) override;
  [[nodiscard]] std::span<const io::RegisterBlock> register_blocks() const override;

 private:
  [[nodiscard]] static bool in_window(unsigned region, uint64_t offset, unsigned size);

  std::unique_ptr<uint8_t[]> memory_;  // kSize bytes, zeroed; on the heap: 128 KiB is too much for an object
};

}  // namespace iovmm::devices
