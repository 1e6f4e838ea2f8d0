// The proxy and a device server on a thread: the same device code reached over the wire, posted writes ordered
// before later reads, several vCPU threads at once, the server's own window checks, clean shutdown.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "dispatch/ioregionfd/channel.h"
#include "test_ioregionfd_support.h"

namespace iovmm::dispatch::ioregionfd {
namespace {

using testing::FailureLog;
using testing::FakeRegisters;

Options options_with(FailureLog& failures, bool posted = false, unsigned spin_us = 0) {
  Options o;
  o.posted = posted;
  o.spin_us = spin_us;
  o.timeout = std::chrono::milliseconds(2000);
  o.on_failure = failures.handler();
  return o;
}

TEST(IoregionfdThread, ReadsAndWritesReachTheDeviceAtEveryWidth) {
  auto device = std::make_shared<FakeRegisters>();
  FailureLog failures;
  auto channel = start_thread_server(device, options_with(failures));
  auto& proxy = *channel->proxy();
  EXPECT_EQ(proxy.name(), "fake-registers");
  proxy.write(0, 0x10, 8, 0x1122334455667788);
  EXPECT_EQ(proxy.read(0, 0x10, 8), 0x1122334455667788u);
  EXPECT_EQ(proxy.read(0, 0x10, 4), 0x55667788u);
  EXPECT_EQ(proxy.read(0, 0x14, 2), 0x3344u);
  EXPECT_EQ(proxy.read(0, 0x17, 1), 0x11u);
  proxy.write(1, 0x0, 2, 0xbeef);
  EXPECT_EQ(proxy.read(1, 0x0, 2), 0xbeefu);
  EXPECT_EQ(proxy.read(0, 0x0, 2), 0u);  // region 1's write did not land in region 0
  proxy.write(0, 0x20, 1, 0x1ff);       // wider than the access: only the low byte travels
  EXPECT_EQ(proxy.read(0, 0x20, 2), 0xffu);
  EXPECT_EQ(proxy.round_trips(), 10u);
  EXPECT_FALSE(proxy.failed());
  EXPECT_TRUE(failures.take().empty());
}

TEST(IoregionfdThread, PostedWritesAreSeenByTheNextRead) {
  auto device = std::make_shared<FakeRegisters>();
  FailureLog failures;
  auto channel = start_thread_server(device, options_with(failures, /*posted=*/true));
  auto& proxy = *channel->proxy();
  for (uint64_t i = 1; i <= 5000; ++i) proxy.write(0, 0x40, 8, i);
  // FIFO socket, in-order server: the read's reply comes after every posted write was performed.
  EXPECT_EQ(proxy.read(0, 0x40, 8), 5000u);
  EXPECT_EQ(proxy.posted_writes(), 5000u);
  EXPECT_EQ(proxy.round_trips(), 1u);
  {
    std::lock_guard lock(device->mutex());
    EXPECT_EQ(device->writes, 5000u);
  }
  EXPECT_TRUE(failures.take().empty());
}

TEST(IoregionfdThread, SeveralVcpuThreadsShareOneChannel) {
  for (bool posted : {false, true}) {
    auto device = std::make_shared<FakeRegisters>();
    FailureLog failures;
    auto channel = start_thread_server(device, options_with(failures, posted, /*spin_us=*/20));
    auto proxy = channel->proxy();
    std::atomic<int> mismatches{0};
    std::vector<std::thread> vcpus;
    for (unsigned t = 0; t < 4; ++t) {
      vcpus.emplace_back([&, t] {
        for (uint64_t i = 0; i < 2000; ++i) {
          uint64_t value = (uint64_t{t} << 32) | i;
          proxy->write(0, t * 8, 8, value);
          if (proxy->read(0, t * 8, 8) != value) ++mismatches;
        }
      });
    }
    for (auto& v : vcpus) v.join();
    EXPECT_EQ(mismatches.load(), 0) << "posted=" << posted;
    EXPECT_TRUE(failures.take().empty());
  }
}

TEST(IoregionfdThread, TheServerRefusesAccessesOutsideItsWindows) {
  auto device = std::make_shared<FakeRegisters>();
  FailureLog failures;
  Options o = options_with(failures);
  o.windows = {{0, 0x80}};  // less than the device has: the server's limit, not the device's, applies
  auto channel = start_thread_server(device, o);
  auto& proxy = *channel->proxy();
  proxy.write(0, 0x78, 8, 0x0123456789abcdef);
  EXPECT_EQ(proxy.read(0, 0x78, 8), 0x0123456789abcdefu);
  EXPECT_EQ(proxy.read(0, 0x7c, 8), ~0ull);          // runs past the window's end
  EXPECT_EQ(proxy.read(0, 0x80, 1), 0xffu);           // just past it
  EXPECT_EQ(proxy.read(0, ~0ull - 3, 4), 0xffffffffu);  // an offset that would wrap
  EXPECT_EQ(proxy.read(1, 0, 4), 0xffffffffu);          // a region it does not serve
  EXPECT_EQ(proxy.read(kMemoryProbeRegion, 0, 8), ~0ull);  // no probe in a thread server
  proxy.write(1, 0, 4, 0x1234);                         // dropped
  {
    std::lock_guard lock(device->mutex());
    EXPECT_EQ(device->writes, 1u);
    EXPECT_EQ(device->reads, 1u);
  }
  EXPECT_FALSE(proxy.failed());  // a refusal is an answer, not a failure
  EXPECT_TRUE(failures.take().empty());
}

TEST(IoregionfdThread, ClosingLeavesAProxyThatReadsAllOnesAndReportsNothing) {
  auto device = std::make_shared<FakeRegisters>();
  FailureLog failures;
  auto channel = start_thread_server(device, options_with(failures));
  std::shared_ptr<IoregionfdProxy> proxy = channel->proxy();  // as a bus binding would keep it
  proxy->write(0, 0, 4, 7);
  EXPECT_EQ(channel->stop(), "thread");
  channel.reset();
  EXPECT_EQ(proxy->read(0, 0, 4), 0xffffffffu);
  proxy->write(0, 0, 4, 8);
  EXPECT_TRUE(proxy->failed());
  EXPECT_TRUE(failures.take().empty());
}

TEST(IoregionfdThread, ClosingWhileAnotherThreadIsInsideAReadNeitherHangsNorReports) {
  auto device = std::make_shared<FakeRegisters>();
  FailureLog failures;
  auto channel = start_thread_server(device, options_with(failures, false, 5));
  auto proxy = channel->proxy();
  std::atomic<bool> stop{false};
  std::thread vcpu([&] {
    while (!stop) (void)proxy->read(0, 0, 8);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  channel.reset();
  stop = true;
  vcpu.join();
  EXPECT_TRUE(failures.take().empty());
}

}  // namespace
}  // namespace iovmm::dispatch::ioregionfd
