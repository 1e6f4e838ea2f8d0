// The split virtqueue walker driven from the driver's side (virtio_test_driver.h): chains direct and indirect, the
// used ring, event index and notification suppression, and every hostile ring queue.h promises to refuse with a
// QueueError (never a crash, a hang or an access outside guest RAM).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "devices/virtio/queue.h"
#include "virtio_test_driver.h"

namespace iovmm::devices::virtio {
namespace {

using testing::Buffer;
using testing::VirtqueueDriver;

// RAM: 0-1 MiB, a hole, 2-3 MiB and 3-4 MiB (two adjacent regions: a buffer may span them).
constexpr uint64_t kHole = 0x100000;
constexpr uint64_t kLow = 0x200000;
constexpr uint64_t kRamEnd = 0x400000;
constexpr uint64_t kRings = 0x10000;
constexpr uint64_t kData = 0x40000;
constexpr uint64_t kTable = 0x80000;

class VirtqueueTest : public ::testing::Test {
 protected:
  explicit VirtqueueTest(uint16_t size = 8) : driver(memory, kRings, size) {}

  void SetUp() override { driver.configure(queue); }

  // Expects pop() to throw a QueueError whose message contains `fragment`.
  void expect_broken(const std::string& fragment) {
    try {
      (void)queue.pop(memory);
      ADD_FAILURE() << "pop() accepted a broken ring (expected \"" << fragment << "\")";
    } catch (const QueueError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  }

  GuestMemory memory{{{0, kHole}, {kLow, 0x100000}, {0x300000, 0x100000}}};
  Virtqueue queue{256};
  VirtqueueDriver driver;
};

TEST_F(VirtqueueTest, PopsAChainInOrderAndPushesItBack) {
  const Buffer buffers[] = {{kData, 16, false}, {kData + 0x1000, 512, true}, {kData + 0x2000, 1, true}};
  const uint16_t head = driver.add_chain(buffers);
  driver.make_available(head);

  auto chain = queue.pop(memory);
  ASSERT_TRUE(chain);
  EXPECT_EQ(chain->head, head);
  ASSERT_EQ(chain->descriptors.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(chain->descriptors[i].addr, buffers[i].gpa);
    EXPECT_EQ(chain->descriptors[i].len, buffers[i].len);
    EXPECT_EQ(chain->descriptors[i].device_writable, buffers[i].device_writable);
  }
  EXPECT_EQ(queue.last_avail_index(), 1);
  EXPECT_FALSE(queue.pop(memory)) << "only one chain was made available";

  queue.push(memory, head, 513);
  EXPECT_EQ(queue.used_index(), 1);
  auto used = driver.next_used();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->id, head);
  EXPECT_EQ(used->len, 513u);
}

TEST_F(VirtqueueTest, NothingToPopWhenEmptyOrNotReady) {
  EXPECT_FALSE(queue.pop(memory));
  driver.make_available(driver.add_chain(std::vector<Buffer>{{kData, 8, false}}));
  queue.set_ready(false);
  EXPECT_FALSE(queue.pop(memory));
  EXPECT_THROW(queue.push(memory, 0, 0), QueueError);
  queue.set_ready(true);
  EXPECT_TRUE(queue.pop(memory));
}

TEST_F(VirtqueueTest, ManyChainsAndIndexWraparound) {
  // 70000 round trips: both free-running indices wrap past 65535.
  for (unsigned i = 0; i < 70000; ++i) {
    const uint16_t head = driver.add_chain(std::vector<Buffer>{{kData, 4, false}, {kData + 8, 4, true}});
    driver.make_available(head);
    auto chain = queue.pop(memory);
    ASSERT_TRUE(chain) << i;
    ASSERT_EQ(chain->head, head);
    queue.push(memory, head, 4);
    ASSERT_TRUE(driver.next_used());
  }
  EXPECT_EQ(queue.used_index(), static_cast<uint16_t>(70000));
}

TEST_F(VirtqueueTest, AFullQueueOfChainsPops) {
  for (unsigned i = 0; i < 8; ++i) driver.make_available(driver.add_chain(std::vector<Buffer>{{kData, 1, true}}));
  for (unsigned i = 0; i < 8; ++i) ASSERT_TRUE(queue.pop(memory));
  EXPECT_FALSE(queue.pop(memory));
}

TEST_F(VirtqueueTest, AChainAsLongAsTheQueueIsFine) {
  std::vector<Buffer> buffers(8, Buffer{kData, 4, false});
  driver.make_available(driver.add_chain(buffers));
  auto chain = queue.pop(memory);
  ASSERT_TRUE(chain);
  EXPECT_EQ(chain->descriptors.size(), 8u);
}

TEST_F(VirtqueueTest, BufferSpanningAdjacentRegionsIsAccepted) {
  driver.make_available(driver.add_chain(std::vector<Buffer>{{0x300000 - 0x800, 0x1000, true}}));
  auto chain = queue.pop(memory);
  ASSERT_TRUE(chain);
  EXPECT_EQ(chain->descriptors[0].len, 0x1000u);
}

TEST_F(VirtqueueTest, ZeroLengthBufferIsAllowed) {
  driver.make_available(driver.add_chain(std::vector<Buffer>{{kHole + 0x10, 0, false}, {kData, 1, true}}));
  auto chain = queue.pop(memory);
  ASSERT_TRUE(chain);
  EXPECT_EQ(chain->descriptors[0].len, 0u);
}

// --- indirect descriptors ---

TEST_F(VirtqueueTest, IndirectTableIsFlattened) {
  driver.configure(queue, false, true);
  const Buffer buffers[] = {{kData, 16, false}, {kData + 0x100, 4096, true}, {kData + 0x2000, 1, true}};
  const uint16_t head = driver.add_indirect_chain(buffers, kTable);
  driver.make_available(head);
  auto chain = queue.pop(memory);
  ASSERT_TRUE(chain);
  EXPECT_EQ(chain->head, head);
  ASSERT_EQ(chain->descriptors.size(), 3u);
  EXPECT_EQ(chain->descriptors[1].addr, kData + 0x100);
  EXPECT_TRUE(chain->descriptors[1].device_writable);
  EXPECT_FALSE(chain->descriptors[0].device_writable);
}

TEST_F(VirtqueueTest, DirectDescriptorsMayLeadToAnIndirectTable) {
  driver.configure(queue, false, true);
  driver.write_raw_desc(kTable, kData + 0x100, 8, VRING_DESC_F_WRITE, 0);
  driver.write_desc(0, kData, 16, VRING_DESC_F_NEXT, 1);
  driver.write_desc(1, kTable, 16, VRING_DESC_F_INDIRECT, 0);
  driver.write_avail_slot(0, 0);
  driver.set_avail_idx(1);
  auto chain = queue.pop(memory);
  ASSERT_TRUE(chain);
  ASSERT_EQ(chain->descriptors.size(), 2u);
  EXPECT_EQ(chain->descriptors[1].addr, kData + 0x100);
}

TEST_F(VirtqueueTest, IndirectWithoutTheFeatureIsRefused) {
  driver.make_available(driver.add_indirect_chain(std::vector<Buffer>{{kData, 8, false}}, kTable));
  expect_broken("VIRTIO_F_INDIRECT_DESC was not negotiated");
}

TEST_F(VirtqueueTest, IndirectWithNextIsRefused) {
  driver.configure(queue, false, true);
  driver.write_raw_desc(kTable, kData, 8, 0, 0);
  driver.write_desc(0, kTable, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
  driver.write_desc(1, kData, 8, 0, 0);
  driver.write_avail_slot(0, 0);
  driver.set_avail_idx(1);
  expect_broken("both INDIRECT and NEXT");
}

TEST_F(VirtqueueTest, NestedIndirectIsRefused) {
  driver.configure(queue, false, true);
  driver.write_raw_desc(kTable, kData, 8, VRING_DESC_F_NEXT, 1);
  driver.write_raw_desc(kTable + 16, kTable, 32, VRING_DESC_F_INDIRECT, 0);
  driver.write_desc(0, kTable, 32, VRING_DESC_F_INDIRECT, 0);
  driver.write_avail_slot(0, 0);
  driver.set_avail_idx(1);
  expect_broken("nested");
}

struct BadTable {
  uint64_t addr;
  uint32_t len;
  const char* fragment;
};

class VirtqueueBadIndirectTable : public VirtqueueTest, public ::testing::WithParamInterface<BadTable> {};

TEST_P(VirtqueueBadIndirectTable, IsRefused) {
  driver.configure(queue, false, true);
  driver.write_desc(0, GetParam().addr, GetParam().len, VRING_DESC_F_INDIRECT, 0);
  driver.write_avail_slot(0, 0);
  driver.set_avail_idx(1);
  expect_broken(GetParam().fragment);
}

INSTANTIATE_TEST_SUITE_P(
    Tables, VirtqueueBadIndirectTable,
    ::testing::Values(BadTable{kTable, 0, "not a whole number"}, BadTable{kTable, 24, "not a whole number"},
                      BadTable{kHole - 16, 32, "not guest RAM"}, BadTable{kHole + 0x1000, 16, "not guest RAM"},
                      BadTable{kTable, 0xFFFFFFF0u, "more than"}, BadTable{kTable, 16 * 4097, "more than"}));

TEST_F(VirtqueueTest, IndirectLoopIsRefused) {
  driver.configure(queue, false, true);
  driver.write_raw_desc(kTable, kData, 8, VRING_DESC_F_NEXT, 1);
  driver.write_raw_desc(kTable + 16, kData, 8, VRING_DESC_F_NEXT, 0);
  driver.write_desc(0, kTable, 32, VRING_DESC_F_INDIRECT, 0);
  driver.write_avail_slot(0, 0);
  driver.set_avail_idx(1);
  expect_broken("a loop");
}

TEST_F(VirtqueueTest, IndirectNextPastTheTableIsRefused) {
  driver.configure(queue, false, true);
  driver.write_raw_desc(kTable, kData, 8, VRING_DESC_F_NEXT, 2);
  driver.write_desc(0, kTable, 32, VRING_DESC_F_INDIRECT, 0);
  driver.write_avail_slot(0, 0);
  driver.set_avail_idx(1);
  expect_broken("chains to 2, table holds 2");
}

TEST_F(VirtqueueTest, IndirectBufferOutsideRamIsRefused) {
  driver.configure(queue, false, true);
  driver.write_raw_desc(kTable, kHole, 8, 0, 0);
  driver.write_desc(0, kTable, 16, VRING_DESC_F_INDIRECT, 0);
  driver.write_avail_slot(0, 0);
  driver.set_avail_idx(1);
  expect_broken("not guest RAM");
}

// --- hostile direct descriptors ---

struct BadBuffer {
  uint64_t addr;
  uint32_t len;
};

class VirtqueueBadBuffer : public VirtqueueTest, public ::testing::WithParamInterface<BadBuffer> {};

TEST_P(VirtqueueBadBuffer, IsRefused) {
  driver.make_available(
      driver.add_chain(std::vector<Buffer>{{kData, 16, false}, {GetParam().addr, GetParam().len, true}}));
  expect_broken("is not guest RAM");
}

INSTANTIATE_TEST_SUITE_P(Buffers, VirtqueueBadBuffer,
                         ::testing::Values(BadBuffer{kRamEnd, 1},             // past the end of RAM
                                           BadBuffer{kHole, 512},             // in the hole
                                           BadBuffer{kHole - 256, 512},       // runs into the hole
                                           BadBuffer{kLow - 1, 2},            // starts in the hole
                                           BadBuffer{kData, 0xFFFFFFFFu},     // a 4 GiB length
                                           BadBuffer{~uint64_t{0} - 7, 16},   // wraps the address space
                                           BadBuffer{0x1'0000'0000, 4096}));  // above 4 GiB: no RAM there

TEST_F(VirtqueueTest, SelfLoopIsRefused) {
  driver.write_desc(3, kData, 8, VRING_DESC_F_NEXT, 3);
  driver.write_avail_slot(0, 3);
  driver.set_avail_idx(1);
  expect_broken("a loop");
}

TEST_F(VirtqueueTest, LongLoopIsRefused) {
  for (uint16_t i = 0; i < 8; ++i)
    driver.write_desc(i, kData, 8, VRING_DESC_F_NEXT, static_cast<uint16_t>((i + 1) % 8));
  driver.write_avail_slot(0, 5);
  driver.set_avail_idx(1);
  expect_broken("longer than the queue size 8");
}

TEST_F(VirtqueueTest, NextOutOfRangeIsRefused) {
  driver.write_desc(0, kData, 8, VRING_DESC_F_NEXT, 8);
  driver.write_avail_slot(0, 0);
  driver.set_avail_idx(1);
  expect_broken("chains to 8, queue size 8");
}

TEST_F(VirtqueueTest, HeadOutOfRangeIsRefused) {
  driver.write_avail_slot(0, 8);
  driver.set_avail_idx(1);
  expect_broken("names descriptor 8, queue size 8");
}

TEST_F(VirtqueueTest, HeadFarOutOfRangeIsRefused) {
  driver.write_avail_slot(0, 0xFFFF);
  driver.set_avail_idx(1);
  expect_broken("names descriptor 65535");
}

TEST_F(VirtqueueTest, AvailIndexJumpPastTheQueueSizeIsRefused) {
  driver.set_avail_idx(9);
  expect_broken("avail index jumped from 0 to 9, queue size 8");
}

TEST_F(VirtqueueTest, AvailIndexGoingBackwardsIsAJumpToo) {
  driver.make_available(driver.add_chain(std::vector<Buffer>{{kData, 1, true}}));
  ASSERT_TRUE(queue.pop(memory));
  driver.set_avail_idx(0);  // 0 - 1 = 65535 entries ahead
  expect_broken("avail index jumped from 1 to 0");
}

TEST_F(VirtqueueTest, PushOfAnUnknownHeadIsRefused) { EXPECT_THROW(queue.push(memory, 8, 0), QueueError); }

// --- ring placement ---

struct BadRings {
  uint64_t desc, avail, used;
  const char* fragment;
};

class VirtqueueBadRings : public VirtqueueTest, public ::testing::WithParamInterface<BadRings> {};

TEST_P(VirtqueueBadRings, AreRefusedOnFirstUse) {
  queue.set_desc_addr(GetParam().desc);
  queue.set_avail_addr(GetParam().avail);
  queue.set_used_addr(GetParam().used);
  expect_broken(GetParam().fragment);
  EXPECT_THROW(queue.push(memory, 0, 0), QueueError);
  EXPECT_THROW((void)queue.needs_interrupt(memory), QueueError);
}

INSTANTIATE_TEST_SUITE_P(Rings, VirtqueueBadRings,
                         ::testing::Values(BadRings{kRings + 8, kRings + 0x1000, kRings + 0x2000, "misaligned"},
                                           BadRings{kRings, kRings + 0x1001, kRings + 0x2000, "misaligned"},
                                           BadRings{kRings, kRings + 0x1000, kRings + 0x2002, "misaligned"},
                                           BadRings{kHole - 64, kRings + 0x1000, kRings + 0x2000, "descriptor table"},
                                           BadRings{kRings, kHole - 16, kRings + 0x2000, "available ring"},
                                           BadRings{kRings, kRings + 0x1000, kHole - 64, "used ring"},
                                           BadRings{kRings, kRings + 0x1000, ~uint64_t{0} - 63, "used ring"}));

TEST_F(VirtqueueTest, RingsMovedAfterUseAreCheckedAgain) {
  driver.make_available(driver.add_chain(std::vector<Buffer>{{kData, 1, true}}));
  auto chain = queue.pop(memory);
  ASSERT_TRUE(chain);
  queue.set_used_addr(kHole);
  EXPECT_THROW(queue.push(memory, chain->head, 1), QueueError);
}

TEST(VirtqueueSize, OnlyPowersOfTwoUpToTheMaximum) {
  Virtqueue queue(64);
  EXPECT_EQ(queue.size(), 64);
  queue.set_size(48);
  EXPECT_EQ(queue.size(), 64);
  queue.set_size(128);
  EXPECT_EQ(queue.size(), 64);
  queue.set_size(0);
  EXPECT_EQ(queue.size(), 64);
  queue.set_size(16);
  EXPECT_EQ(queue.size(), 16);
  queue.set_desc_addr(0x1000);
  queue.set_ready(true);
  queue.reset();
  EXPECT_EQ(queue.size(), 64);
  EXPECT_EQ(queue.desc_addr(), 0u);
  EXPECT_FALSE(queue.ready());
  EXPECT_THROW(Virtqueue(48), std::exception);
  EXPECT_THROW(Virtqueue(0), std::exception);
}

// --- notifications and interrupts ---

TEST_F(VirtqueueTest, InterruptUnlessTheDriverSuppressesIt) {
  driver.make_available(driver.add_chain(std::vector<Buffer>{{kData, 1, true}}));
  auto chain = queue.pop(memory);
  EXPECT_FALSE(queue.needs_interrupt(memory)) << "nothing pushed yet";
  queue.push(memory, chain->head, 1);
  EXPECT_TRUE(queue.needs_interrupt(memory));
  EXPECT_FALSE(queue.needs_interrupt(memory)) << "nothing pushed since";

  driver.set_avail_flags(VRING_AVAIL_F_NO_INTERRUPT);
  driver.make_available(driver.add_chain(std::vector<Buffer>{{kData, 1, true}}));
  chain = queue.pop(memory);
  queue.push(memory, chain->head, 1);
  EXPECT_FALSE(queue.needs_interrupt(memory));
}

TEST_F(VirtqueueTest, UsedEventDecidesInterruptsWithEventIdx) {
  driver.configure(queue, true, false);
  driver.set_used_event(1);  // interrupt when the used index passes 1, i.e. after the second push
  for (unsigned i = 0; i < 3; ++i) driver.make_available(driver.add_chain(std::vector<Buffer>{{kData, 1, true}}));
  std::vector<uint16_t> heads;
  for (unsigned i = 0; i < 3; ++i) heads.push_back(queue.pop(memory)->head);

  queue.push(memory, heads[0], 1);  // used 0 -> 1: event 1 not crossed
  EXPECT_FALSE(queue.needs_interrupt(memory));
  queue.push(memory, heads[1], 1);  // 1 -> 2: crosses 1
  EXPECT_TRUE(queue.needs_interrupt(memory));
  queue.push(memory, heads[2], 1);  // 2 -> 3: event still 1, already signalled
  EXPECT_FALSE(queue.needs_interrupt(memory));
  driver.set_used_event(3);
  EXPECT_FALSE(queue.needs_interrupt(memory)) << "nothing new pushed";
}

TEST_F(VirtqueueTest, BatchedPushesCrossingUsedEventInterruptOnce) {
  driver.configure(queue, true, false);
  driver.set_used_event(0);
  for (unsigned i = 0; i < 4; ++i) driver.make_available(driver.add_chain(std::vector<Buffer>{{kData, 1, true}}));
  for (unsigned i = 0; i < 4; ++i) queue.push(memory, queue.pop(memory)->head, 1);
  EXPECT_TRUE(queue.needs_interrupt(memory));
}

TEST_F(VirtqueueTest, PopPublishesAvailEventWithEventIdx) {
  driver.configure(queue, true, false);
  driver.make_available(driver.add_chain(std::vector<Buffer>{{kData, 1, true}}));
  driver.make_available(driver.add_chain(std::vector<Buffer>{{kData, 1, true}}));
  ASSERT_TRUE(queue.pop(memory));
  EXPECT_EQ(driver.avail_event(), 1);
  ASSERT_TRUE(queue.pop(memory));
  EXPECT_EQ(driver.avail_event(), 2);

  queue.set_notifications(memory, false);
  driver.make_available(driver.add_chain(std::vector<Buffer>{{kData, 1, true}}));
  driver.make_available(driver.add_chain(std::vector<Buffer>{{kData, 1, true}}));
  ASSERT_TRUE(queue.pop(memory));
  EXPECT_EQ(driver.avail_event(), 2) << "notifications off: avail_event stays";
  queue.set_notifications(memory, true);
  EXPECT_EQ(driver.avail_event(), 4) << "re-enabled: kick on the next entry the driver adds";
}

TEST_F(VirtqueueTest, NoNotifyFlagWithoutEventIdx) {
  queue.set_notifications(memory, false);
  EXPECT_EQ(driver.used_flags(), VRING_USED_F_NO_NOTIFY);
  queue.set_notifications(memory, true);
  EXPECT_EQ(driver.used_flags(), 0);
}

}  // namespace
}  // namespace iovmm::devices::virtio
