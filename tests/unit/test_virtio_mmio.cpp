// virtio-mmio driven through its registers as a guest driver would (Linux virtio_mmio.c's order), with a fake device
// type that records what the transport asks of it, a fake interrupt line and fake fd watcher, and real guest memory
// for the rings. Covers identification, negotiation and its refusals, queue set-up in both register layouts,
// notification and doorbell(), interrupts, reset, VirtioContext::fail and watch, the register table's dispatch
// legality, and hostile accesses.
#define VIRTIO_RING_NO_LEGACY
#include <gtest/gtest.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "devices/virtio/mmio.h"
#include "dispatch/binding.h"
#include "virtio_transport_fakes.h"

namespace iovmm::devices::virtio {
namespace {

using testing::FakeDevice;
using testing::FakeIrq;
using testing::FakeWatcher;
using testing::make_available;

constexpr uint64_t kRam = 0x100000;
constexpr uint64_t kDeviceFeatures = (1ull << 0) | (1ull << 9) | (1ull << 50);
constexpr uint64_t kVersion1 = 1ull << VIRTIO_F_VERSION_1;
constexpr uint64_t kEventIdx = 1ull << VIRTIO_RING_F_EVENT_IDX;
constexpr uint64_t kIndirect = 1ull << VIRTIO_RING_F_INDIRECT_DESC;


class VirtioMmioTest : public ::testing::Test {
 protected:
  void build(bool legacy) {
    auto fake = std::make_unique<FakeDevice>(kDeviceFeatures);
    device = fake.get();
    DeviceContext context;
    context.memory = &memory;
    context.watcher = &watcher;
    mmio = std::make_unique<VirtioMmio>("virtio-mmio0", std::move(fake), context, VirtioMmioOptions{.legacy = legacy});
    mmio->connect_irq(irq);
  }
  void SetUp() override { build(false); }

  uint32_t rd(uint64_t offset) {
    std::lock_guard lock(mmio->mutex());
    return static_cast<uint32_t>(mmio->read(0, offset, 4));
  }
  void wr(uint64_t offset, uint32_t value) {
    std::lock_guard lock(mmio->mutex());
    mmio->write(0, offset, 4, value);
  }
  void write_features(uint64_t features) {
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, static_cast<uint32_t>(features));
    wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(VIRTIO_MMIO_DRIVER_FEATURES, static_cast<uint32_t>(features >> 32));
  }
  void negotiate(uint64_t features = kVersion1 | kEventIdx) {
    wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    write_features(features);
    wr(VIRTIO_MMIO_STATUS, rd(VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_FEATURES_OK);
  }
  // Queue q's rings at base + 0x1000 * q: descriptors, available ring at +0x100, used ring at +0x200.
  void setup_queue(unsigned q, uint16_t size) {
    uint64_t base = 0x10000 + 0x1000 * q;
    wr(VIRTIO_MMIO_QUEUE_SEL, q);
    wr(VIRTIO_MMIO_QUEUE_NUM, size);
    wr(VIRTIO_MMIO_QUEUE_DESC_LOW, static_cast<uint32_t>(base));
    wr(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
    wr(VIRTIO_MMIO_QUEUE_AVAIL_LOW, static_cast<uint32_t>(base + 0x100));
    wr(VIRTIO_MMIO_QUEUE_AVAIL_HIGH, 0);
    wr(VIRTIO_MMIO_QUEUE_USED_LOW, static_cast<uint32_t>(base + 0x200));
    wr(VIRTIO_MMIO_QUEUE_USED_HIGH, 0);
    wr(VIRTIO_MMIO_QUEUE_READY, 1);
  }
  void driver_ok() { wr(VIRTIO_MMIO_STATUS, rd(VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_DRIVER_OK); }
  void bring_up() {
    negotiate(kVersion1);
    setup_queue(0, 4);
    setup_queue(1, 8);
    driver_ok();
    ASSERT_NE(device->context, nullptr);  // activated
  }

  GuestMemory memory{{RamRange{0, kRam}}};
  FakeWatcher watcher;
  std::shared_ptr<FakeIrq> irq = std::make_shared<FakeIrq>();
  FakeDevice* device = nullptr;
  std::unique_ptr<VirtioMmio> mmio;
};

TEST_F(VirtioMmioTest, IdentifiesAsVersion2) {
  EXPECT_EQ(rd(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976u);
  EXPECT_EQ(rd(VIRTIO_MMIO_VERSION), 2u);
  EXPECT_EQ(rd(VIRTIO_MMIO_DEVICE_ID), uint32_t{VIRTIO_ID_BLOCK});
  EXPECT_EQ(rd(VIRTIO_MMIO_VENDOR_ID), VirtioMmio::kVendorId);
  EXPECT_EQ(rd(VIRTIO_MMIO_CONFIG_GENERATION), 7u);
  EXPECT_EQ(rd(VIRTIO_MMIO_SHM_LEN_LOW), 0xFFFFFFFFu);  // no shared memory region
  build(true);
  EXPECT_EQ(rd(VIRTIO_MMIO_VERSION), 1u);
}

TEST_F(VirtioMmioTest, OffersDeviceAndTransportFeatures) {
  wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
  uint64_t low = rd(VIRTIO_MMIO_DEVICE_FEATURES);
  wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
  uint64_t high = rd(VIRTIO_MMIO_DEVICE_FEATURES);
  EXPECT_EQ(low | high << 32, kDeviceFeatures | kVersion1 | kEventIdx | kIndirect);
  wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
  EXPECT_EQ(rd(VIRTIO_MMIO_DEVICE_FEATURES), 0u);

  build(true);  // legacy: one word, no VERSION_1
  wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
  EXPECT_EQ(rd(VIRTIO_MMIO_DEVICE_FEATURES), static_cast<uint32_t>(kDeviceFeatures | kEventIdx | kIndirect));
  wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
  EXPECT_EQ(rd(VIRTIO_MMIO_DEVICE_FEATURES), 0u);
}

TEST_F(VirtioMmioTest, NegotiationAcceptsASubsetWithVersion1) {
  negotiate(kVersion1 | kEventIdx | (1ull << 9));
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), unsigned{VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                                            VIRTIO_CONFIG_S_FEATURES_OK});
  // Frozen after FEATURES_OK.
  write_features(kVersion1 | kDeviceFeatures);
  driver_ok();
  EXPECT_EQ(device->activations, 1);
  EXPECT_EQ(device->features, kVersion1 | kEventIdx | (1ull << 9));
}

TEST_F(VirtioMmioTest, FeaturesOkIsRefusedWithoutVersion1OrWithUnofferedBits) {
  negotiate(kEventIdx);  // no VERSION_1
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK, 0u);
  wr(VIRTIO_MMIO_STATUS, 0);
  negotiate(kVersion1 | (1ull << 3));  // never offered
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK, 0u);
  // DRIVER_OK without FEATURES_OK does not activate.
  driver_ok();
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_DRIVER_OK, 0u);
  EXPECT_EQ(device->activations, 0);
}

TEST_F(VirtioMmioTest, StatusBitsAreStickyAndNeedsResetIsTheDevices) {
  wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_NEEDS_RESET | 0x30);
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), unsigned{VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER});
}

TEST_F(VirtioMmioTest, QueueSetUpReachesTheDeviceOnDriverOk) {
  negotiate(kVersion1 | kEventIdx | kIndirect);
  wr(VIRTIO_MMIO_QUEUE_SEL, 0);
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 8u);
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_READY), 0u);
  setup_queue(0, 4);
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_READY), 1u);
  driver_ok();
  ASSERT_NE(device->context, nullptr);
  ASSERT_EQ(device->context->queues.size(), 2u);
  const Virtqueue& q0 = device->context->queues[0];
  EXPECT_EQ(q0.size(), 4);
  EXPECT_EQ(q0.desc_addr(), 0x10000u);
  EXPECT_EQ(q0.avail_addr(), 0x10100u);
  EXPECT_EQ(q0.used_addr(), 0x10200u);
  EXPECT_TRUE(q0.ready());
  EXPECT_FALSE(device->context->queues[1].ready());
}

TEST_F(VirtioMmioTest, BadQueueSizesAndLateWritesAreIgnored) {
  negotiate();
  wr(VIRTIO_MMIO_QUEUE_SEL, 0);
  wr(VIRTIO_MMIO_QUEUE_NUM, 3);   // not a power of two
  wr(VIRTIO_MMIO_QUEUE_NUM, 16);  // above the maximum
  wr(VIRTIO_MMIO_QUEUE_NUM, 0);
  wr(VIRTIO_MMIO_QUEUE_READY, 1);
  wr(VIRTIO_MMIO_QUEUE_NUM, 2);                // the queue is ready: locked
  wr(VIRTIO_MMIO_QUEUE_DESC_LOW, 0xdead0000);  // likewise
  driver_ok();
  ASSERT_NE(device->context, nullptr);
  EXPECT_EQ(device->context->queues[0].size(), 8);
  EXPECT_EQ(device->context->queues[0].desc_addr(), 0u);
  // Writing 0 to QueueReady stops the queue (4.2.2.2) and unlocks it.
  wr(VIRTIO_MMIO_QUEUE_READY, 0);
  EXPECT_FALSE(device->context->queues[0].ready());
}

TEST_F(VirtioMmioTest, QueueSelectorsPastTheCountSelectNothing) {
  wr(VIRTIO_MMIO_QUEUE_SEL, 2);
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 0u);
  wr(VIRTIO_MMIO_QUEUE_NUM, 4);
  wr(VIRTIO_MMIO_QUEUE_READY, 1);
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_READY), 0u);
  wr(VIRTIO_MMIO_QUEUE_SEL, 0xFFFFFFFF);
  wr(VIRTIO_MMIO_QUEUE_DESC_HIGH, 1);
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 0u);
}

TEST_F(VirtioMmioTest, LegacyQueuesLiveAtPfnTimesPageSize) {
  build(true);
  wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
  wr(VIRTIO_MMIO_DRIVER_FEATURES, static_cast<uint32_t>(kIndirect | (1ull << 9) | (1ull << 4)));  // 4: not offered
  wr(VIRTIO_MMIO_GUEST_PAGE_SIZE, 4096);
  wr(VIRTIO_MMIO_QUEUE_SEL, 0);
  wr(VIRTIO_MMIO_QUEUE_NUM, 8);
  wr(VIRTIO_MMIO_QUEUE_ALIGN, 4096);
  wr(VIRTIO_MMIO_QUEUE_PFN, 0x20);
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_PFN), 0x20u);
  wr(VIRTIO_MMIO_QUEUE_SEL, 1);
  wr(VIRTIO_MMIO_QUEUE_NUM, 4);
  wr(VIRTIO_MMIO_QUEUE_ALIGN, 3);  // not a power of two: the default (4096) stays
  wr(VIRTIO_MMIO_QUEUE_ALIGN, 64);
  wr(VIRTIO_MMIO_QUEUE_PFN, 0x30);
  wr(VIRTIO_MMIO_QUEUE_READY, 1);  // not a legacy register
  // Legacy drivers never set FEATURES_OK; DRIVER_OK activates with the offered part of what they wrote.
  wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK);
  ASSERT_EQ(device->activations, 1);
  EXPECT_EQ(device->features, kIndirect | (1ull << 9));
  const Virtqueue& q0 = device->context->queues[0];
  EXPECT_EQ(q0.desc_addr(), 0x20000u);
  EXPECT_EQ(q0.avail_addr(), 0x20000u + 16 * 8);
  EXPECT_EQ(q0.used_addr(), 0x21000u);  // 0x20080 + 6 + 16 rounded up to 4096
  EXPECT_TRUE(q0.ready());
  const Virtqueue& q1 = device->context->queues[1];
  EXPECT_EQ(q1.desc_addr(), 0x30000u);
  EXPECT_EQ(q1.avail_addr(), 0x30040u);
  EXPECT_EQ(q1.used_addr(), 0x30080u);  // 0x30040 + 14 rounded up to 64
  // PFN 0: the driver stops using the queue.
  wr(VIRTIO_MMIO_QUEUE_SEL, 1);
  wr(VIRTIO_MMIO_QUEUE_PFN, 0);
  EXPECT_FALSE(q1.ready());
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_PFN), 0u);
}

TEST_F(VirtioMmioTest, LegacyPageSizeIsItsLowestSetBit) {
  build(true);
  wr(VIRTIO_MMIO_GUEST_PAGE_SIZE, 0x3000);  // as QEMU: 0x1000
  wr(VIRTIO_MMIO_QUEUE_SEL, 0);
  wr(VIRTIO_MMIO_QUEUE_PFN, 5);
  wr(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_DRIVER_OK);
  ASSERT_NE(device->context, nullptr);
  EXPECT_EQ(device->context->queues[0].desc_addr(), 0x5000u);
}

TEST_F(VirtioMmioTest, NotifyReachesAnActiveDeviceOnly) {
  wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);  // before DRIVER_OK: dropped
  bring_up();
  device->complete_on_notify = false;
  wr(VIRTIO_MMIO_QUEUE_NOTIFY, 1);
  wr(VIRTIO_MMIO_QUEUE_NOTIFY, 2);  // no such queue
  {
    std::lock_guard lock(mmio->mutex());
    mmio->doorbell(0, VIRTIO_MMIO_QUEUE_NOTIFY, 4, 0, 5);  // five writes folded into one eventfd signal
  }
  EXPECT_EQ(device->notifies, (std::vector<unsigned>{1, 0}));
}

TEST_F(VirtioMmioTest, UsedBuffersRaiseTheLineUntilAcknowledged) {
  bring_up();
  uint16_t next = 0;
  make_available(memory, 0x10000, 0x10100, 4, next);
  wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
  EXPECT_EQ(rd(VIRTIO_MMIO_INTERRUPT_STATUS), unsigned{VIRTIO_MMIO_INT_VRING});
  EXPECT_TRUE(irq->level);
  EXPECT_EQ(mmio->read_lockless(0, VIRTIO_MMIO_INTERRUPT_STATUS, 4), unsigned{VIRTIO_MMIO_INT_VRING});
  wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);  // not the pending bit: the line stays up
  EXPECT_TRUE(irq->level);
  wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
  EXPECT_FALSE(irq->level);
  EXPECT_EQ(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0u);
  // VRING_AVAIL_F_NO_INTERRUPT: the driver does not want one.
  ASSERT_TRUE(memory.write_obj<uint16_t>(0x10100, VRING_AVAIL_F_NO_INTERRUPT));
  make_available(memory, 0x10000, 0x10100, 4, next);
  wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
  EXPECT_EQ(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0u);
  EXPECT_FALSE(irq->level);
}

TEST_F(VirtioMmioTest, ResetForgetsEverythingAndLowersTheLine) {
  bring_up();
  uint16_t next = 0;
  make_available(memory, 0x10000, 0x10100, 4, next);
  wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
  ASSERT_TRUE(irq->level);
  wr(VIRTIO_MMIO_STATUS, 0);
  EXPECT_EQ(device->resets, 1);
  EXPECT_FALSE(irq->level);
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), 0u);
  EXPECT_EQ(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0u);
  wr(VIRTIO_MMIO_QUEUE_SEL, 0);
  EXPECT_EQ(rd(VIRTIO_MMIO_QUEUE_READY), 0u);
  EXPECT_EQ(mmio->transport().driver_features(), 0u);
  // A notify after reset does not reach the device.
  wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
  EXPECT_EQ(device->notifies.size(), 1u);
  // And the device can be brought up again.
  bring_up();
  EXPECT_EQ(device->activations, 2);
}

TEST_F(VirtioMmioTest, FailSetsNeedsResetAndRaisesAConfigInterrupt) {
  bring_up();
  {
    std::lock_guard lock(mmio->mutex());
    device->context->fail("broken ring");
    device->context->fail("again");  // once
  }
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, unsigned{VIRTIO_CONFIG_S_NEEDS_RESET});
  EXPECT_EQ(rd(VIRTIO_MMIO_INTERRUPT_STATUS), unsigned{VIRTIO_MMIO_INT_CONFIG});
  EXPECT_TRUE(irq->level);
  wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);  // a failed device hears nothing more
  EXPECT_TRUE(device->notifies.empty());
  wr(VIRTIO_MMIO_STATUS, 0);
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS), 0u);
}

TEST_F(VirtioMmioTest, BrokenRingsFailTheDeviceInsteadOfThrowing) {
  negotiate(kVersion1);
  wr(VIRTIO_MMIO_QUEUE_SEL, 0);
  wr(VIRTIO_MMIO_QUEUE_DESC_LOW, 0xFFFFF000);  // past RAM
  wr(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0xFFFFFFFF);
  wr(VIRTIO_MMIO_QUEUE_READY, 1);
  driver_ok();
  wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
  EXPECT_EQ(rd(VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, unsigned{VIRTIO_CONFIG_S_NEEDS_RESET});
}

TEST_F(VirtioMmioTest, WatchHandlersRunUnderTheLockUntilReset) {
  bring_up();
  int runs = 0;
  {
    std::lock_guard lock(mmio->mutex());
    device->context->watch(42, [&] {
      EXPECT_FALSE(mmio->mutex().try_lock());  // held by the transport's wrapper
      ++runs;
    });
  }
  ASSERT_EQ(watcher.handlers.count(42), 1u);
  auto fetched = watcher.handlers[42];  // as if the event loop had fetched it
  fetched();
  EXPECT_EQ(runs, 1);
  wr(VIRTIO_MMIO_STATUS, 0);  // the device left it watched: the transport unwatches
  EXPECT_EQ(watcher.handlers.count(42), 0u);
  fetched();  // a handler fetched before unwatch does nothing
  EXPECT_EQ(runs, 1);
}

TEST_F(VirtioMmioTest, ConfigurationSpaceIsBoundedByItsSize) {
  std::lock_guard lock(mmio->mutex());
  EXPECT_EQ(mmio->read(0, VIRTIO_MMIO_CONFIG, 4), 0x13121110u);
  EXPECT_EQ(mmio->read(0, VIRTIO_MMIO_CONFIG + 10, 4), 0x1b1au);  // the two last bytes, then zeros
  EXPECT_EQ(mmio->read(0, VIRTIO_MMIO_CONFIG + 0x80, 8), 0u);
  EXPECT_EQ(mmio->read(0, VIRTIO_MMIO_CONFIG + 1, 1), 0x11u);
  mmio->write(0, VIRTIO_MMIO_CONFIG + 8, 4, 0xAABBCCDD);
  mmio->write(0, VIRTIO_MMIO_CONFIG + 10, 4, 0x1);  // runs past the end: dropped
  mmio->write(0, VIRTIO_MMIO_CONFIG + 0xF8, 8, 0x1);
  EXPECT_EQ(device->config_writes, (std::vector<FakeDevice::ConfigWrite>{{8, 4, 0xAABBCCDD}}));
}

TEST_F(VirtioMmioTest, HostileAccessesNeverReachTheRegisters) {
  std::lock_guard lock(mmio->mutex());
  EXPECT_EQ(mmio->read(0, VIRTIO_MMIO_MAGIC_VALUE, 2), 0u);      // registers take 32-bit accesses only
  EXPECT_EQ(mmio->read(0, VIRTIO_MMIO_MAGIC_VALUE + 1, 4), 0u);  // unaligned
  EXPECT_EQ(mmio->read(0, VIRTIO_MMIO_QUEUE_NOTIFY, 4), 0u);     // write-only
  EXPECT_EQ(mmio->read(0, 0x0D0, 4), 0u);                        // unknown
  EXPECT_EQ(mmio->read(1, 0, 4), 0xFFFFFFFFu);                   // no such region
  EXPECT_EQ(mmio->read(0, VirtioMmio::kWindowSize, 4), 0xFFFFFFFFu);
  mmio->write(0, VIRTIO_MMIO_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
  mmio->write(0, VIRTIO_MMIO_STATUS, 8, VIRTIO_CONFIG_S_ACKNOWLEDGE);
  mmio->write(0, VIRTIO_MMIO_MAGIC_VALUE, 4, 0);
  mmio->write(0, VIRTIO_MMIO_VERSION, 4, 7);
  mmio->write(0, VIRTIO_MMIO_GUEST_PAGE_SIZE, 4, 4096);  // a legacy register on version 2
  mmio->write(0, 0x1FC, 4, 1);
  EXPECT_EQ(mmio->read(0, VIRTIO_MMIO_STATUS, 4), 0u);
  EXPECT_EQ(mmio->read(0, VIRTIO_MMIO_VERSION, 4), 2u);
}

TEST_F(VirtioMmioTest, QuiesceResetsAndStopsInterrupts) {
  bring_up();
  {
    std::lock_guard lock(mmio->mutex());
    device->context->watch(7, [] {});
  }
  mmio->quiesce();
  EXPECT_EQ(device->resets, 1);
  EXPECT_TRUE(watcher.handlers.empty());
  EXPECT_FALSE(irq->level);
}

TEST_F(VirtioMmioTest, MissingServicesAreUsageErrors) {
  DeviceContext context;
  context.watcher = &watcher;
  EXPECT_THROW(VirtioMmio("m", std::make_unique<FakeDevice>(kDeviceFeatures), context, {}), UsageError);  // no memory
  context.memory = &memory;
  context.watcher = nullptr;
  EXPECT_THROW(VirtioMmio("m", std::make_unique<FakeDevice>(kDeviceFeatures), context, {}), UsageError);  // no watcher
  context.watcher = &watcher;
  EXPECT_THROW(VirtioMmio("m", nullptr, context, {}), UsageError);
}

// --- The register table and the dispatch paths it allows ---

std::set<std::string_view> bound_names(const std::map<unsigned, dispatch::WindowBinding>& bindings, io::Path path) {
  std::set<std::string_view> names;
  for (const auto& [region, binding] : bindings) {
    for (const auto& bound : binding.registers) {
      if (bound.path == path) names.insert(bound.reg.name);
    }
  }
  return names;
}

dispatch::DispatchChoice choose(std::initializer_list<std::pair<const char*, const char*>> options) {
  dispatch::DispatchChoice choice;
  for (auto [key, value] : options) choice.add("virtio-mmio0", key, value);
  return choice;
}

TEST_F(VirtioMmioTest, RegisterTableIsWellFormed) {
  for (bool legacy : {false, true}) {
    build(legacy);
    auto blocks = mmio->register_blocks();
    ASSERT_EQ(blocks.size(), 1u);
    EXPECT_EQ(blocks[0].name, "mmio");
    EXPECT_EQ(blocks[0].region, 0u);
    std::set<std::string_view> names;
    for (const auto& reg : blocks[0].registers) {
      EXPECT_TRUE(names.insert(reg.name).second) << reg.name;
      EXPECT_LE(reg.offset + reg.width, VirtioMmio::kWindowSize) << reg.name;
      for (const auto& other : blocks[0].registers) {
        if (&other != &reg) {
          EXPECT_FALSE(other.covers(reg.offset, 1)) << reg.name << " overlaps " << other.name;
        }
      }
      // Constants read what the table says (the fastpath answers from the table).
      if (reg.effect == io::Effect::constant) {
        EXPECT_EQ(rd(reg.offset), reg.reset_value) << reg.name;
      }
    }
  }
}

TEST_F(VirtioMmioTest, CoalescedBindsTheLatches) {
  auto bindings = dispatch::bind_registers("virtio-mmio0", mmio->register_blocks(), choose({{"dispatch", "coalesced"}}));
  EXPECT_EQ(bound_names(bindings, io::Path::coalesced),
            (std::set<std::string_view>{"device_features_sel", "driver_features", "driver_features_sel", "queue_sel",
                                        "queue_num", "queue_desc_low", "queue_desc_high", "queue_avail_low",
                                        "queue_avail_high", "queue_used_low", "queue_used_high", "shm_sel"}));
  build(true);
  bindings = dispatch::bind_registers("virtio-mmio0", mmio->register_blocks(), choose({{"dispatch", "coalesced"}}));
  EXPECT_EQ(bound_names(bindings, io::Path::coalesced),
            (std::set<std::string_view>{"device_features_sel", "driver_features", "driver_features_sel", "queue_sel",
                                        "queue_num", "guest_page_size", "queue_align"}));
}

TEST_F(VirtioMmioTest, QueueNotifyMayBeAnIoeventfdPerQueue) {
  auto bindings =
      dispatch::bind_registers("virtio-mmio0", mmio->register_blocks(), choose({{"dispatch.queue_notify", "ioeventfd"}}));
  ASSERT_EQ(bindings.at(0).registers.size(), 1u);
  const auto& bound = bindings.at(0).registers[0];
  EXPECT_EQ(bound.reg.name, "queue_notify");
  EXPECT_EQ(bound.reg.offset, uint64_t{VIRTIO_MMIO_QUEUE_NOTIFY});
  EXPECT_EQ(bound.reg.datamatch_values, 2);  // one datamatch eventfd per queue
  EXPECT_THROW((void)dispatch::bind_registers("virtio-mmio0", mmio->register_blocks(),
                                              choose({{"dispatch.status", "ioeventfd"}})),
               UsageError);
}

TEST_F(VirtioMmioTest, InterruptStatusMayTakeTheFastpathButAckMayNotCoalesce) {
  auto bindings = dispatch::bind_registers("virtio-mmio0", mmio->register_blocks(),
                                           choose({{"dispatch.interrupt_status", "fastpath"}}));
  EXPECT_EQ(bound_names(bindings, io::Path::fastpath), (std::set<std::string_view>{"interrupt_status"}));
  bindings = dispatch::bind_registers("virtio-mmio0", mmio->register_blocks(), choose({{"dispatch", "fastpath"}}));
  EXPECT_EQ(bound_names(bindings, io::Path::fastpath),
            (std::set<std::string_view>{"magic_value", "version", "device_id", "vendor_id", "interrupt_status",
                                        "shm_len_low", "shm_len_high", "shm_base_low", "shm_base_high"}));
  for (const char* name : {"dispatch.interrupt_ack", "dispatch.status", "dispatch.queue_ready"}) {
    EXPECT_THROW((void)dispatch::bind_registers("virtio-mmio0", mmio->register_blocks(), choose({{name, "coalesced"}})),
                 UsageError)
        << name;
  }
  EXPECT_THROW((void)dispatch::bind_registers("virtio-mmio0", mmio->register_blocks(),
                                              choose({{"dispatch.status", "fastpath"}})),
               UsageError);
}

}  // namespace
}  // namespace iovmm::devices::virtio
