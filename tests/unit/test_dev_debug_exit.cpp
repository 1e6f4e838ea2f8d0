// isa-debug-exit through a port I/O bus: QEMU's status encoding for every access width.
#include <gtest/gtest.h>

#include <memory>
#include <optional>

#include "devices/debug_exit.h"
#include "io/bus.h"

namespace iovmm::devices {
namespace {

class DevDebugExitTest : public ::testing::Test {
 protected:
  DevDebugExitTest() {
    device_ = std::make_shared<DebugExit>("debug-exit", [this](int status) { status_ = status; });
    bus_.map(io::Window{.base = DebugExit::kDefaultBase,
                        .size = DebugExit::kDefaultSize,
                        .device = device_,
                        .region = 0,
                        .label = "debug-exit"});
  }
  std::optional<int> write(unsigned size, uint64_t value) {
    status_.reset();
    EXPECT_EQ(bus_.write(DebugExit::kDefaultBase, size, value), io::AccessResult::ok);
    return status_;
  }

  io::Bus bus_{io::Space::pio};
  std::shared_ptr<DebugExit> device_;
  std::optional<int> status_;
};

TEST_F(DevDebugExitTest, ByteWrite) {
  EXPECT_EQ(write(1, 0x00), 1);
  EXPECT_EQ(write(1, 0x12), 0x25);
  EXPECT_EQ(write(1, 0xFF), 0x1FF);
}

TEST_F(DevDebugExitTest, WordWrite) {
  EXPECT_EQ(write(2, 0x1234), 0x2469);
  EXPECT_EQ(write(2, 0xFFFF), 0x1FFFF);
}

TEST_F(DevDebugExitTest, DwordWrite) {
  EXPECT_EQ(write(4, 0x12345678), static_cast<int>(0x2468ACF1u));
  // (v << 1) | 1 keeps 32 bits, as QEMU's exit() argument does.
  EXPECT_EQ(write(4, 0x80000001), 3);
}

TEST_F(DevDebugExitTest, ValueIsMaskedToTheAccessWidth) {
  // The bus masks the value to the width; the device does too for direct callers.
  EXPECT_EQ(write(1, 0x1FF), 0x1FF);
  device_->write(0, 0, 1, 0x1FF);
  EXPECT_EQ(status_, 0x1FF);
}

TEST_F(DevDebugExitTest, WritesAtAnyOffsetInsideTheWindowCount) {
  status_.reset();
  ASSERT_EQ(bus_.write(DebugExit::kDefaultBase + 2, 1, 0x01), io::AccessResult::ok);
  EXPECT_EQ(status_, 3);
}

TEST_F(DevDebugExitTest, ReadsReturnAllOnes) {
  uint64_t value = 0;
  ASSERT_EQ(bus_.read(DebugExit::kDefaultBase, 1, value), io::AccessResult::ok);
  EXPECT_EQ(value, 0xFFu);
  ASSERT_EQ(bus_.read(DebugExit::kDefaultBase, 4, value), io::AccessResult::ok);
  EXPECT_EQ(value, 0xFFFFFFFFu);
}

}  // namespace
}  // namespace iovmm::devices
