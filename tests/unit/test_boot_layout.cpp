#include <gtest/gtest.h>

#include "boot/layout.h"
#include "test_boot_image_builder.h"

namespace iovmm::boot {
namespace {

using testing::usage_error_of;

TEST(BootLayout, SmallRamIsLowRamWithoutTheVgaHole) {
  const auto ranges = pc_ram_ranges(64 * kMiB);
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0].gpa, 0u);
  EXPECT_EQ(ranges[0].size, 0xA0000u);
  EXPECT_EQ(ranges[1].gpa, 0xC0000u);
  EXPECT_EQ(ranges[1].gpa + ranges[1].size, 64 * kMiB);
}

TEST(BootLayout, RamAboveThreeGigabytesContinuesAtFourGigabytes) {
  const auto ranges = pc_ram_ranges(5 * kGiB);
  ASSERT_EQ(ranges.size(), 3u);
  EXPECT_EQ(ranges[1].gpa + ranges[1].size, 3 * kGiB);
  EXPECT_EQ(ranges[2].gpa, 4 * kGiB);
  EXPECT_EQ(ranges[2].size, 2 * kGiB);
}

TEST(BootLayout, MemoryTooSmallOrUnalignedIsAUsageError) {
  EXPECT_CONTAINS(usage_error_of([] { (void)pc_ram_ranges(1 * kMiB); }), "too small");
  EXPECT_CONTAINS(usage_error_of([] { (void)pc_ram_ranges(64 * kMiB + 100); }), "multiple of 4 KiB");
}

TEST(BootLayout, E820MapMatchesThePcLayout) {
  GuestMemory memory(pc_ram_ranges(3 * kGiB + 256 * kMiB));
  const auto map = e820_map(memory);
  ASSERT_EQ(map.size(), 5u);
  auto expect_entry = [&](size_t i, uint64_t addr, uint64_t size, uint32_t type) {
    EXPECT_EQ(map[i].addr, addr) << i;
    EXPECT_EQ(map[i].size, size) << i;
    EXPECT_EQ(map[i].type, type) << i;
  };
  expect_entry(0, 0, 0x9FC00, kE820Ram);
  expect_entry(1, 0x9FC00, 0x400, kE820Reserved);
  expect_entry(2, 0xE0000, 0x20000, kE820Reserved);
  expect_entry(3, 1 * kMiB, 3 * kGiB - 1 * kMiB, kE820Ram);
  expect_entry(4, 4 * kGiB, 256 * kMiB, kE820Ram);
  EXPECT_EQ(low_ram_end(memory), 3 * kGiB);
}

TEST(BootLayout, DeviceWindowsDoNotOverlapRam) {
  EXPECT_EQ(kPciMmioWindow.start, kLowRamLimit);
  EXPECT_EQ(kPciMmioWindow.end(), kIoapicAddress);
  EXPECT_LT(kLapicAddress, kHighRamStart);
  EXPECT_EQ(kRsdpAddress, 0xE0000u);
}

}  // namespace
}  // namespace iovmm::boot
