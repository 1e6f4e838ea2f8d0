// The VGA window as the machine maps it (0xA0000 on the memory bus): plain latched memory for every access width
// and alignment, and a register table that makes coalescing legal.
#include <gtest/gtest.h>

#include <memory>

#include "devices/vga_window.h"
#include "io/bus.h"

namespace iovmm::devices {
namespace {

class DevVgaWindow : public ::testing::Test {
 protected:
  DevVgaWindow() {
    mmio_.map(io::Window{.base = VgaWindow::kBase, .size = VgaWindow::kSize, .device = vga_, .region = 0,
                         .label = "vga"});
  }
  uint64_t read(uint64_t offset, unsigned size) {
    uint64_t value = 0;
    EXPECT_EQ(mmio_.read(VgaWindow::kBase + offset, size, value), io::AccessResult::ok);
    return value;
  }
  void write(uint64_t offset, unsigned size, uint64_t value) {
    EXPECT_EQ(mmio_.write(VgaWindow::kBase + offset, size, value), io::AccessResult::ok);
  }

  std::shared_ptr<VgaWindow> vga_ = std::make_shared<VgaWindow>("vga");
  io::Bus mmio_{io::Space::mmio};
};

TEST_F(DevVgaWindow, CoversTheLegacyVgaHole) {
  EXPECT_EQ(VgaWindow::kBase, 0xA0000u);
  EXPECT_EQ(VgaWindow::kSize, 0x20000u);
  EXPECT_EQ(VgaWindow::kBase + VgaWindow::kSize, 0xC0000u);
}

TEST_F(DevVgaWindow, StartsZeroed) {
  for (uint64_t offset = 0; offset < VgaWindow::kSize; offset += 0x1000 - 8) EXPECT_EQ(read(offset, 8), 0u);
}

TEST_F(DevVgaWindow, EveryWidthRoundTripsAtAlignedAndUnalignedOffsets) {
  constexpr uint64_t kPattern = 0x8877'6655'4433'2211ull;
  for (unsigned size : {1u, 2u, 4u, 8u}) {
    uint64_t mask = io::size_mask(size);
    for (uint64_t offset : {uint64_t{0}, uint64_t{1}, uint64_t{3}, uint64_t{0x7FFF}, uint64_t{0x10001},
                            VgaWindow::kSize - size}) {
      SCOPED_TRACE(testing::Message() << size << " bytes at " << offset);
      uint64_t value = (kPattern ^ (offset * 0x0101'0101'0101'0101ull)) & mask;
      write(offset, size, value);
      EXPECT_EQ(read(offset, size), value);
    }
  }
}

TEST_F(DevVgaWindow, BytesAreLittleEndianAndWritesTouchOnlyTheirOwnBytes) {
  write(0x100, 8, 0x0807'0605'0403'0201ull);
  for (unsigned i = 0; i < 8; ++i) EXPECT_EQ(read(0x100 + i, 1), i + 1u);
  write(0x103, 2, 0xBBAA);
  EXPECT_EQ(read(0x100, 8), 0x0807'06BB'AA03'0201ull);
  EXPECT_EQ(read(0xFF, 1), 0u);
  EXPECT_EQ(read(0x108, 1), 0u);
  EXPECT_EQ(read(0x101, 4), 0xBBAA'0302u);
}

TEST_F(DevVgaWindow, AccessesPastTheEndAreRefusedByTheBus) {
  uint64_t value = 0;
  EXPECT_EQ(mmio_.read(VgaWindow::kBase + VgaWindow::kSize - 2, 4, value), io::AccessResult::crosses_end);
  EXPECT_EQ(value, 0xFFFF'FFFFu);
  // Called directly (a bad replay), the device refuses too instead of touching memory past its end.
  std::lock_guard lock(vga_->mutex());
  EXPECT_EQ(vga_->read(0, VgaWindow::kSize - 2, 4), ~0ull);
  EXPECT_EQ(vga_->read(1, 0, 4), ~0ull);
  vga_->write(0, VgaWindow::kSize, 1, 0xFF);
  vga_->write(0, 0, 3, 0xFF);  // not a valid width
  EXPECT_EQ(vga_->read(0, 0, 4), 0u);
}

TEST_F(DevVgaWindow, RegisterTableIsOneLatchOverTheWholeWindow) {
  auto blocks = vga_->register_blocks();
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].region, 0u);
  EXPECT_EQ(blocks[0].name, "vram");
  ASSERT_EQ(blocks[0].registers.size(), 1u);
  const io::Register& vram = blocks[0].registers[0];
  EXPECT_EQ(vram.offset, 0u);
  EXPECT_EQ(vram.width, VgaWindow::kSize);
  EXPECT_EQ(vram.access, io::Access::rw);
  EXPECT_EQ(vram.effect, io::Effect::latch);
  EXPECT_FALSE(vram.lockless_read);
  for (uint64_t offset : {uint64_t{0}, uint64_t{0x1234}, VgaWindow::kSize - 8}) {
    EXPECT_EQ(io::find_register(blocks[0].registers, offset, 8), &vram);
  }
}

}  // namespace
}  // namespace iovmm::devices
