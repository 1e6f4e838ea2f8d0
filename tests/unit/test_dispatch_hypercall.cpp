// The hypercall ABI on its own: decoding, bus routing, results, refusals.
#include <gtest/gtest.h>

#include "dispatch/hypercall.h"

namespace iovmm::dispatch {
namespace {

class ScratchRegisters : public io::Device {
 public:
  ScratchRegisters() : Device("scratch") {}
  uint64_t read(unsigned, uint64_t offset, unsigned) override { return 0x1122334455667788ull >> (8 * offset); }
  void write(unsigned, uint64_t offset, unsigned size, uint64_t value) override {
    last_offset = offset;
    last_size = size;
    last_value = value;
  }
  uint64_t last_offset = 0, last_value = 0;
  unsigned last_size = 0;
};

struct DispatchHypercall : ::testing::Test {
  void SetUp() override {
    io::Window window;
    window.base = 0xfeb00000;
    window.size = 0x100;
    window.device = device;
    mmio.map(window);
    window.base = 0x700;
    window.size = 8;
    pio.map(window);
  }
  io::Bus pio{io::Space::pio};
  io::Bus mmio{io::Space::mmio};
  std::shared_ptr<ScratchRegisters> device = std::make_shared<ScratchRegisters>();
};

TEST_F(DispatchHypercall, WritesReachTheNamedBusAndAreCountedAsHypercalls) {
  HypercallRegisters regs{0xabcdef, 0xfeb00010, 4 | kHypercallWrite};
  execute_hypercall(regs, pio, mmio);
  EXPECT_EQ(regs.rcx, kHypercallDone);
  EXPECT_EQ(device->last_offset, 0x10u);
  EXPECT_EQ(device->last_size, 4u);
  EXPECT_EQ(device->last_value, 0xabcdefu);
  auto counts = mmio.windows()[0].counts->snapshot();
  EXPECT_EQ((counts[{0x10, 4, io::Direction::write, io::Path::hypercall}]), 1u);
}

TEST_F(DispatchHypercall, ReadsReturnTheValueMaskedToSize) {
  HypercallRegisters regs{0, 0x702, 2 | kHypercallPio};
  execute_hypercall(regs, pio, mmio);
  EXPECT_EQ(regs.rcx, kHypercallDone);
  EXPECT_EQ(regs.rax, 0x5566u);
}

TEST_F(DispatchHypercall, UnmappedAndMalformedRequestsSayWhy) {
  HypercallRegisters unmapped{0, 0xd0000000, 8};
  execute_hypercall(unmapped, pio, mmio);
  EXPECT_EQ(unmapped.rcx, kHypercallUnmapped);
  EXPECT_EQ(unmapped.rax, ~0ull);
  for (uint64_t flags : {uint64_t{3}, uint64_t{0}, uint64_t{16 | 4}, uint64_t{4 | (1ull << 40)}}) {
    HypercallRegisters bad{0, 0xfeb00000, flags};
    execute_hypercall(bad, pio, mmio);
    EXPECT_EQ(bad.rcx, kHypercallBadRequest) << flags;
  }
  HypercallRegisters big_port{0, 0x10000, 1 | kHypercallPio};
  execute_hypercall(big_port, pio, mmio);
  EXPECT_EQ(big_port.rcx, kHypercallBadRequest);
}

}  // namespace
}  // namespace iovmm::dispatch
