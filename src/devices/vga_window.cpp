#include "devices/vga_window.h"

#include <array>

#include "common/log.h"

namespace iovmm::devices {
namespace {

constexpr std::array<io::Register, 1> kVramRegisters = {
    io::Register{.name = "vram", .offset = 0, .width = VgaWindow::kSize, .access = io::Access::rw,
                 .effect = io::Effect::latch, .lockless_read = false},
};
constexpr std::array<io::RegisterBlock, 1> kRegisterBlocks = {
    io::RegisterBlock{.region = 0, .name = "vram", .registers = kVramRegisters},
};

}  // namespace

VgaWindow::VgaWindow(std::string name)
    : io::Device(std::move(name)), memory_(std::make_unique<uint8_t[]>(kSize)) {}

std::span<const io::RegisterBlock> VgaWindow::register_blocks() const { return kRegisterBlocks; }

bool VgaWindow::in_window(unsigned region, uint64_t offset, unsigned size) {
  return region == 0 && io::valid_access_size(size) && offset < kSize && size <= kSize - offset;
}

uint64_t VgaWindow::read(unsigned region, uint64_t offset, unsigned size) {
  if (!in_window(region, offset, size)) {
    IOVMM_LOG_RATELIMITED("{}: {}-byte read at {:#x} of region {} is outside the window", name(), size, offset,
                          region);
    return ~0ull;
  }
  uint64_t value = 0;
  for (unsigned i = 0; i < size; ++i) value |= uint64_t{memory_[offset + i]} << (8 * i);
  return value;
}

void VgaWindow::write(unsigned region, uint64_t offset, unsigned size, uint64_t value) {
  if (!in_window(region, offset, size)) {
    IOVMM_LOG_RATELIMITED("{}: {}-byte write at {:#x} of region {} is outside the window: dropped", name(), size,
                          offset, region);
    return;
  }
  for (unsigned i = 0; i < size; ++i) memory_[offset + i] = static_cast<uint8_t>(value >> (8 * i));
}

}  // namespace iovmm::devices
