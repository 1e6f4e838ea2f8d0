// The dispatch layer's KVM-side paths through the fakes of tests/support/dispatch_fakes.h: window attach/detach and
// moves keep coalesced zones and ioeventfds where the registers are, doorbell signals reach the device (or wait to be
// taken), the coalesced ring is replayed in order into the window it was resolved to, the hypercall carrier runs on
// the calling vCPU's registers, and the fastpath answers without the device lock.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "../support/dispatch_fakes.h"
#include "dispatch/coalesced.h"
#include "dispatch/dispatcher.h"
#include "dispatch/hypercall.h"
#include "dispatch/registrar.h"

namespace iovmm::dispatch {
namespace {

using io::Access;
using io::Effect;
using io::Path;

using test_support::FakeCoalescedRing;
using test_support::FakeExitContext;
using test_support::FakeRegistrar;
using test_support::FakeWatcher;

constexpr io::Register kRegisters[] = {
    {"index", 0x0, 4, Access::rw, Effect::latch},
    {"data", 0x4, 4, Access::rw, Effect::synchronous},
    {"notify", 0x8, 2, Access::wo, Effect::doorbell, 0, false, 3},  // datamatch: one eventfd per queue 0..2
    {"kick", 0xc, 1, Access::wo, Effect::doorbell, 0, false, 0, 0x5a},
    {"id", 0x10, 4, Access::ro, Effect::constant, 0xabcd1234},
    {"count", 0x14, 4, Access::ro, Effect::synchronous, 0, true},
};
constexpr io::RegisterBlock kBlocks[] = {{0, "regs", kRegisters}};

class TableDevice final : public io::Device, public io::DoorbellSink, public io::LocklessReads {
 public:
  TableDevice() : io::Device("dev") {}
  uint64_t read(unsigned, uint64_t offset, unsigned) override {
    ++locked_reads;
    return offset == 0x14 ? 7 : 0x1000 + offset;
  }
  void write(unsigned, uint64_t offset, unsigned size, uint64_t value) override {
    writes.push_back({offset, size, value, 1});
  }
  void doorbell(unsigned, uint64_t offset, unsigned size, uint64_t value, uint64_t count) override {
    EXPECT_FALSE(mutex().try_lock()) << "doorbells are delivered under the device's lock";
    writes.push_back({offset, size, value, count});
  }
  uint64_t read_lockless(unsigned, uint64_t offset, unsigned) override {
    EXPECT_TRUE(mutex().try_lock()) << "the fastpath takes no device lock";
    mutex().unlock();
    return offset == 0x14 ? 99 : 0;
  }
  std::span<const io::RegisterBlock> register_blocks() const override { return kBlocks; }

  struct Write {
    uint64_t offset;
    unsigned size;
    uint64_t value;
    uint64_t count;
    bool operator==(const Write&) const = default;
  };
  std::vector<Write> writes;
  int locked_reads = 0;
};

struct DispatcherTest : ::testing::Test {
  DispatcherTest() {
    kvm.on_misuse = [](const std::string& what) { ADD_FAILURE() << what; };
    watcher.on_misuse = [](const std::string& what) { ADD_FAILURE() << what; };
  }
  WindowBinding bind(std::initializer_list<std::pair<const char*, const char*>> options) {
    DispatchChoice choice;
    for (auto [key, value] : options) choice.add("dev", key, value);
    return bind_registers("dev", kBlocks, choice).at(0);
  }
  void map_at(uint64_t base) { mmio.map(io::Window{.base = base, .size = 0x20, .device = device, .region = 0}); }
  uint64_t count(uint64_t offset, unsigned size, io::Direction direction, Path path) {
    auto window = mmio.find_window(*device, 0);
    return window ? window->counts->snapshot()[{offset, size, direction, path}] : 0;
  }

  FakeRegistrar kvm;
  FakeWatcher watcher;
  io::Bus pio{io::Space::pio};
  io::Bus mmio{io::Space::mmio};
  Dispatcher dispatcher{kvm, pio, mmio, watcher};
  std::shared_ptr<TableDevice> device = std::make_shared<TableDevice>();
};

TEST_F(DispatcherTest, CoalescedZonesFollowTheWindow) {
  dispatcher.bind(*device, 0, bind({{"dispatch.index", "coalesced"}}));
  EXPECT_TRUE(kvm.zones.empty()) << "nothing before the window exists";
  map_at(0xe0000000);
  EXPECT_EQ(kvm.zones, (std::set<FakeRegistrar::Zone>{{kvm::IoSpace::mmio, 0xe0000000, 4}}));
  mmio.move(*device, 0, 0xe0010000);
  EXPECT_EQ(kvm.zones, (std::set<FakeRegistrar::Zone>{{kvm::IoSpace::mmio, 0xe0010000, 4}}));
  EXPECT_TRUE(mmio.unmap(*device, 0));
  EXPECT_TRUE(kvm.zones.empty());
}

TEST_F(DispatcherTest, RebindingReplacesTheKvmSide) {
  map_at(0xe0000000);
  dispatcher.bind(*device, 0, bind({{"dispatch.index", "coalesced"}}));
  EXPECT_EQ(kvm.zones.size(), 1u);
  dispatcher.bind(*device, 0, bind({{"dispatch.notify", "ioeventfd"}}));
  EXPECT_TRUE(kvm.zones.empty());
  EXPECT_EQ(kvm.doorbells.size(), 3u);
}

TEST_F(DispatcherTest, DatamatchDoorbellsAreArmedPerValueAndMoveWithTheWindow) {
  dispatcher.bind(*device, 0, bind({{"dispatch.notify", "ioeventfd"}}));
  map_at(0xe0000000);
  ASSERT_EQ(kvm.doorbells.size(), 3u);
  for (uint64_t queue = 0; queue < 3; ++queue) {
    EXPECT_TRUE(kvm.doorbells.count({kvm::IoSpace::mmio, 0xe0000008, 2, queue})) << queue;
  }
  EXPECT_EQ(watcher.handlers.size(), 3u);
  mmio.move(*device, 0, 0xe0040000);
  EXPECT_TRUE(kvm.doorbells.count({kvm::IoSpace::mmio, 0xe0040008, 2, 1}));
  EXPECT_EQ(kvm.doorbells.size(), 3u);
  EXPECT_TRUE(mmio.unmap(*device, 0));
  EXPECT_TRUE(kvm.doorbells.empty());
  EXPECT_TRUE(watcher.handlers.empty()) << "a binding's doorbells go with its window";
}

TEST_F(DispatcherTest, OneSignalForManyWritesReachesTheDeviceOnceWithTheCount) {
  dispatcher.bind(*device, 0, bind({{"dispatch.notify", "ioeventfd"}, {"dispatch.kick", "ioeventfd"}}));
  map_at(0xe0000000);
  kvm.ring(kvm::IoSpace::mmio, 0xe0000008, 2, 2, 5);
  kvm.ring(kvm::IoSpace::mmio, 0xe000000c, 1, std::nullopt, 2);
  watcher.run_all();
  std::vector<TableDevice::Write> want = {{0x8, 2, 2, 5}, {0xc, 1, 0x5a, 2}};  // a wildcard delivers doorbell_value
  auto writes = device->writes;
  std::sort(writes.begin(), writes.end(), [](const auto& a, const auto& b) { return a.offset < b.offset; });
  EXPECT_EQ(writes, want);
  EXPECT_EQ(count(0x8, 2, io::Direction::write, Path::ioeventfd), 5u);
  EXPECT_EQ(count(0xc, 1, io::Direction::write, Path::ioeventfd), 2u);
  watcher.run_all();
  EXPECT_EQ(device->writes.size(), 2u) << "a handler with no signal pending delivers nothing";
}

TEST_F(DispatcherTest, OnDemandDoorbellsWaitToBeTakenAndStopWithTheirRemoval) {
  map_at(0xe0000000);
  int handle = 0;
  {
    std::lock_guard lock(device->mutex());
    handle = dispatcher.add_doorbell(*device, 0, 0xc, 1, 0x11, io::DoorbellDelivery::on_demand);
  }
  ASSERT_NE(handle, io::DoorbellHost::kNoDoorbell);
  EXPECT_TRUE(watcher.handlers.empty()) << "no thread wakes up per write";
  kvm.ring(kvm::IoSpace::mmio, 0xe000000c, 1, 0x11, 3);
  std::lock_guard lock(device->mutex());
  EXPECT_EQ(dispatcher.take_pending(handle), 3u);
  EXPECT_EQ(dispatcher.take_pending(handle), 0u);
  EXPECT_EQ(count(0xc, 1, io::Direction::write, Path::ioeventfd), 3u);
  dispatcher.remove_doorbell(handle);
  EXPECT_TRUE(kvm.doorbells.empty());
  EXPECT_TRUE(device->writes.empty());
}

TEST_F(DispatcherTest, ADoorbellForAnUnmappedWindowIsRefusedAndWritesKeepExiting) {
  std::lock_guard lock(device->mutex());
  EXPECT_EQ(dispatcher.add_doorbell(*device, 0, 0xc, 1, std::nullopt, io::DoorbellDelivery::on_signal),
            io::DoorbellHost::kNoDoorbell);
}

TEST_F(DispatcherTest, TheRingIsReplayedInOrderIntoTheResolvedWindow) {
  dispatcher.bind(*device, 0, bind({{"dispatch.index", "coalesced"}}));
  map_at(0xe0000000);
  FakeCoalescedRing ring(8);
  EXPECT_EQ(dispatcher.drain_coalesced(ring.view()), 0u) << "an empty ring";
  ring.push(0xe0000000, 4, 1);
  ring.push(0xe0000000, 4, 2);
  ring.push(0xe0000004, 4, 3);  // outside every zone (queued before a zone went away): found on the bus
  ring.push(0xd0000000, 4, 4);  // nowhere at all: dropped like any unmapped write
  EXPECT_EQ(dispatcher.drain_coalesced(ring.view()), 4u);
  EXPECT_EQ(device->writes, (std::vector<TableDevice::Write>{{0, 4, 1, 1}, {0, 4, 2, 1}, {4, 4, 3, 1}}));
  EXPECT_EQ(count(0, 4, io::Direction::write, Path::coalesced), 2u);
  EXPECT_EQ(count(4, 4, io::Direction::write, Path::coalesced), 1u);
  EXPECT_EQ(mmio.unmapped_writes(), 1u);
  EXPECT_EQ(ring.get()->first, ring.get()->last);
}

TEST_F(DispatcherTest, ACorruptRingIndexIsNotFollowed) {
  dispatcher.bind(*device, 0, bind({{"dispatch.index", "coalesced"}}));
  map_at(0xe0000000);
  FakeCoalescedRing ring(4);
  ring.get()->first = 1000;
  ring.get()->last = 2;
  EXPECT_EQ(dispatcher.drain_coalesced(ring.view()), 0u);
  EXPECT_EQ(ring.get()->first, 2u);
}

TEST_F(DispatcherTest, TheFastpathAnswersConstantsFromTheTableAndLocklessReadsWithoutTheLock) {
  dispatcher.bind(*device, 0, bind({{"dispatch.id", "fastpath"}, {"dispatch.count", "fastpath"}}));
  map_at(0xe0000000);
  uint64_t value = 0;
  ASSERT_EQ(mmio.read(0xe0000010, 4, value), io::AccessResult::ok);
  EXPECT_EQ(value, 0xabcd1234u);
  ASSERT_EQ(mmio.read(0xe0000012, 2, value), io::AccessResult::ok);
  EXPECT_EQ(value, 0xabcdu) << "a read inside a constant gets its bytes";
  ASSERT_EQ(mmio.read(0xe0000014, 4, value), io::AccessResult::ok);
  EXPECT_EQ(value, 99u);
  EXPECT_EQ(device->locked_reads, 0);
  ASSERT_EQ(mmio.read(0xe0000004, 4, value), io::AccessResult::ok);
  EXPECT_EQ(device->locked_reads, 1) << "other registers take the lock";
  EXPECT_EQ(count(0x10, 4, io::Direction::read, Path::fastpath), 1u);
  EXPECT_EQ(count(0x12, 2, io::Direction::read, Path::fastpath), 1u);
  EXPECT_EQ(count(0x4, 4, io::Direction::read, Path::exit), 1u);
}

TEST_F(DispatcherTest, AVcpuReaderSeesEveryChangeOfTheTable) {
  dispatcher.bind(*device, 0);
  io::Bus::Reader reader(mmio);
  uint64_t value = 0;
  EXPECT_EQ(mmio.read(reader, 0xe0000004, 4, value), io::AccessResult::unmapped);
  map_at(0xe0000000);
  EXPECT_EQ(mmio.read(reader, 0xe0000004, 4, value), io::AccessResult::ok);
  EXPECT_EQ(value, 0x1004u);
  mmio.move(*device, 0, 0xe0010000);
  EXPECT_EQ(mmio.read(reader, 0xe0000004, 4, value), io::AccessResult::unmapped);
  EXPECT_EQ(mmio.read(reader, 0xe0010004, 4, value), io::AccessResult::ok);
  EXPECT_EQ(count(0x4, 4, io::Direction::read, Path::exit), 2u) << "counts move with the window";
}

TEST_F(DispatcherTest, TheHypercallPortRunsTheCallOnTheCallingVcpusRegisters) {
  dispatcher.bind(*device, 0);
  map_at(0xe0000000);
  attach_hypercall_port(pio, mmio);
  FakeExitContext context(pio, mmio);
  context.regs = {0x77, 0xe0000004, 4 | kHypercallWrite};
  ASSERT_EQ(pio.write(kHypercallPort, 1, 0), io::AccessResult::ok);
  EXPECT_TRUE(device->writes.empty()) << "off a vCPU thread there are no registers to call with";
  set_thread_exit_context(&context);
  uint64_t value = 0;
  ASSERT_EQ(pio.read(kHypercallPort, 4, value), io::AccessResult::ok);
  EXPECT_EQ(value, kHypercallSignature);
  EXPECT_TRUE(context.expected) << "discovery turns on register sync";
  ASSERT_EQ(pio.write(kHypercallPort, 1, 0), io::AccessResult::ok);
  EXPECT_EQ(context.regs.rcx, kHypercallDone);
  EXPECT_EQ(device->writes, (std::vector<TableDevice::Write>{{4, 4, 0x77, 1}}));
  EXPECT_EQ(count(0x4, 4, io::Direction::write, Path::hypercall), 1u);
  context.regs = {0, 0xe0000004, 4};
  ASSERT_EQ(pio.write(kHypercallPort, 1, 0), io::AccessResult::ok);
  EXPECT_EQ(context.regs.rax, 0x1004u);
  set_thread_exit_context(nullptr);
}

TEST_F(DispatcherTest, AHypercallNamingThePortItselfIsNoCall) {
  attach_hypercall_port(pio, mmio);
  FakeExitContext context(pio, mmio);
  set_thread_exit_context(&context);
  context.regs = {0x5, kHypercallPort, 1 | kHypercallWrite | kHypercallPio};
  ASSERT_EQ(pio.write(context.reader(io::Space::pio), kHypercallPort, 1, 0), io::AccessResult::ok);
  EXPECT_EQ(context.regs.rcx, kHypercallDone) << "it wrote a port that ignores the write, and came back";
  context.regs = {0, kHypercallPort, 4 | kHypercallPio};
  ASSERT_EQ(pio.write(context.reader(io::Space::pio), kHypercallPort, 1, 0), io::AccessResult::ok);
  EXPECT_EQ(context.regs.rax, 0xffffffffu) << "the signature is for discovery by the guest, not for a call";
  set_thread_exit_context(nullptr);
}

// Another vCPU changing the table while this one is inside a hypercall: the call's own access must not make the
// outer access's table go away under it (ASan sees it if it does).
class TableChangingExitContext final : public ExitContext {
 public:
  TableChangingExitContext(io::Bus& pio, std::shared_ptr<io::Device> other) : pio_(pio), other_(std::move(other)) {}
  HypercallRegisters load_registers() override {
    const unsigned n = maps_++;
    pio_.map(io::Window{.base = 0x700 + 0x10 * n, .size = 4, .device = other_, .region = n});
    return {0, 0x702, 2 | kHypercallPio};
  }
  void store_registers(const HypercallRegisters& r) override { regs = r; }
  void expect_hypercalls() override {}
  HypercallRegisters regs{};

 private:
  io::Bus& pio_;
  std::shared_ptr<io::Device> other_;
  unsigned maps_ = 0;
};

TEST_F(DispatcherTest, ATableChangedDuringAHypercallOutlivesTheOuterAccess) {
  attach_hypercall_port(pio, mmio);
  TableChangingExitContext context(pio, device);
  io::Bus::Reader reader(pio);
  set_thread_exit_context(&context);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(pio.write(reader, kHypercallPort, 1, 0), io::AccessResult::ok);
    EXPECT_EQ(context.regs.rcx, kHypercallDone) << i;
  }
  set_thread_exit_context(nullptr);
  ASSERT_TRUE(pio.find_window(*device, 2));
  EXPECT_EQ(pio.find_window(*device, 2)->base, 0x720u);
}

}  // namespace
}  // namespace iovmm::dispatch
