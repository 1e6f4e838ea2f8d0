// Round-trip costs of the ioregionfd path — a benchmark, not a test: it prints numbers and asserts nothing about
// them. Disabled by default (it takes several seconds and wants an idle machine); run with
//   build-iorfd/tests/unit_tests --gtest_also_run_disabled_tests --gtest_filter='IoregionfdBench.*'
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

#include "dispatch/ioregionfd/channel.h"
#include "memory/guest_memory.h"
#include "test_ioregionfd_support.h"

namespace iovmm::dispatch::ioregionfd {
namespace {

using Clock = std::chrono::steady_clock;

// ns per operation: median and range over `rounds` batches of `per_round` operations.
// `ops_per_call`: how many operations one call of `op` stands for.
void measure(const char* label, int rounds, int per_round, const std::function<void()>& op, int ops_per_call = 1) {
  for (int i = 0; i < per_round / 10 + 1; ++i) op();  // warm up
  std::vector<double> ns;
  for (int r = 0; r < rounds; ++r) {
    auto start = Clock::now();
    for (int i = 0; i < per_round; ++i) op();
    ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - start).count() / per_round / ops_per_call);
  }
  std::sort(ns.begin(), ns.end());
  std::printf("  %-58s %9.0f ns  (%.0f-%.0f)\n", label, ns[ns.size() / 2], ns.front(), ns.back());
  std::fflush(stdout);
}

void bench_channel(const char* kind, const std::function<std::unique_ptr<Channel>(Options)>& start) {
  for (unsigned spin : {0u, 200u}) {
    Options o;
    o.spin_us = spin;
    o.timeout = std::chrono::milliseconds(5000);
    o.device_binary = testing::device_binary();
    auto channel = start(o);
    auto& proxy = *channel->proxy();
    char label[128];
    std::snprintf(label, sizeof label, "%s, %s: read", kind, spin ? "spin 200us" : "sleep");
    measure(label, 7, 2000, [&] { (void)proxy.read(0, 0, 4); });
    std::snprintf(label, sizeof label, "%s, %s: waited write", kind, spin ? "spin 200us" : "sleep");
    measure(label, 7, 2000, [&] { proxy.write(0, 0, 4, 1); });
    channel.reset();

    o.posted = true;
    channel = start(o);
    auto& posted = *channel->proxy();
    std::snprintf(label, sizeof label, "%s, %s: posted write (100 writes + 1 read, per write)", kind,
                  spin ? "spin 200us" : "sleep");
    measure(
        label, 7, 200,
        [&] {
          for (int i = 0; i < 100; ++i) posted.write(0, 0, 4, 1);
          (void)posted.read(0, 0, 4);
        },
        100);
  }
}

TEST(IoregionfdBench, DISABLED_RoundTrips) {
  std::printf("ioregionfd round trips (4-byte accesses; median of 7 batches, min-max):\n");
  auto device = std::make_shared<testing::FakeRegisters>();
  measure("direct call with the device lock (no channel)", 7, 1000000, [&] {
    std::lock_guard lock(device->mutex());
    (void)device->read(0, 0, 4);
  });
  bench_channel("thread", [&](Options o) { return start_thread_server(device, o); });
  if (!testing::device_binary_exists()) {
    std::printf("  (process server skipped: %s not built)\n", testing::device_binary().c_str());
    return;
  }
  GuestMemory memory({{0, 0x100000}});
  bench_channel("process", [&](Options o) { return start_process_server("ioregionfd-scratch", memory, o); });
}

}  // namespace
}  // namespace iovmm::dispatch::ioregionfd
