// Guest memory: ranges, bounds checks against hostile addresses and lengths, accesses spanning adjacent ranges.
#include <gtest/gtest.h>

#include <vector>

#include "common/error.h"
#include "memory/guest_memory.h"

namespace iovmm {
namespace {

TEST(GuestMemory, ReadsBackWhatWasWrittenAcrossAdjacentRanges) {
  GuestMemory memory({{0, 0x2000}, {0x2000, 0x1000}});
  std::vector<uint8_t> data(0x100, 0xab);
  ASSERT_TRUE(memory.write(0x1f80, data.data(), data.size()));
  std::vector<uint8_t> back(0x100);
  ASSERT_TRUE(memory.read(0x1f80, back.data(), back.size()));
  EXPECT_EQ(back, data);
  EXPECT_TRUE(memory.span(0x1f80, 0x100).empty());  // a single host span cannot cross ranges
  EXPECT_EQ(memory.span(0x1000, 0x100).size(), 0x100u);
}

TEST(GuestMemory, RefusesEveryByteOutsideRam) {
  GuestMemory memory({{0, 0x1000}, {0x3000, 0x1000}});
  uint8_t byte = 0;
  EXPECT_FALSE(memory.read(0x1000, &byte, 1));
  EXPECT_FALSE(memory.write(0xfff, "ab", 2));   // runs into the hole
  EXPECT_FALSE(memory.read(0x3fff, &byte, 2));  // runs off the end
  EXPECT_FALSE(memory.read(~0ull, &byte, 1));
  EXPECT_FALSE(memory.contains(0x3000, ~0ull));  // length that would wrap
  EXPECT_TRUE(memory.span(~0ull - 1, 4).empty());
  EXPECT_FALSE(memory.read_obj<uint64_t>(0xffc).has_value());
  EXPECT_TRUE(memory.write_obj<uint32_t>(0x3ffc, 7));
  EXPECT_EQ(memory.read_obj<uint32_t>(0x3ffc).value(), 7u);
}

TEST(GuestMemory, RejectsBadLayouts) {
  EXPECT_THROW(GuestMemory({}), Error);
  EXPECT_THROW(GuestMemory({{0, 0x1800}}), Error);                  // not page-sized
  EXPECT_THROW(GuestMemory({{0, 0x2000}, {0x1000, 0x1000}}), Error);  // overlap
}

TEST(GuestMemory, IsOneMemfdSoAnotherProcessCanMapIt) {
  GuestMemory memory({{0, 0x1000}, {0x100000, 0x2000}});
  EXPECT_GE(memory.memfd(), 0);
  EXPECT_EQ(memory.total_size(), 0x3000u);
  EXPECT_EQ(memory.regions()[1].file_offset, 0x1000u);
}

}  // namespace
}  // namespace iovmm
