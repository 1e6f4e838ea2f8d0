#include "devices/debug_exit.h"

namespace iovmm::devices {
namespace {
constexpr io::Register kDebugExitRegisters[] = {{"exit", 0, 4, io::Access::wo, io::Effect::synchronous}};
constexpr io::RegisterBlock kDebugExitBlocks[] = {{0, "port", kDebugExitRegisters}};
}  // namespace


DebugExit::DebugExit(std::string name, std::function<void(int status)> on_exit)
    : io::Device(std::move(name)), on_exit_(std::move(on_exit)) {}

uint64_t DebugExit::read(unsigned, uint64_t, unsigned) { return ~0ull; }

void DebugExit::write(unsigned, uint64_t, unsigned size, uint64_t value) {
  uint64_t v = value & io::size_mask(size);
  // QEMU passes (v << 1) | 1 to exit(), which takes an int: keep the same truncation to 32 bits.
  auto status = static_cast<int>(static_cast<uint32_t>((v << 1) | 1));
  if (on_exit_) on_exit_(status);
}

std::span<const io::RegisterBlock> DebugExit::register_blocks() const { return kDebugExitBlocks; }

}  // namespace iovmm::devices
