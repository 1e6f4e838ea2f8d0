#include "devices/post_port.h"

namespace iovmm::devices {
namespace {
constexpr io::Register kRegisters[] = {
    {"post_code", 0, 1, io::Access::rw, io::Effect::synchronous, 0xFF},
};
constexpr io::RegisterBlock kBlocks[] = {{0, "pio", kRegisters}};
}  // namespace

std::span<const io::RegisterBlock> PostPort::register_blocks() const { return kBlocks; }

}  // namespace iovmm::devices
