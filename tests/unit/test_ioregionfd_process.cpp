// Device servers in an iovmm-device process: the real binary, guest memory shared through the memfd, pci-testdev's
// QEMU-compatible header read over the socket, a process that dies or stops mid-run, and start-up failures.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"
#include "devices/device_spec.h"
#include "devices/factory.h"
#include "dispatch/ioregionfd/channel.h"
#include "memory/guest_memory.h"
#include "test_ioregionfd_support.h"

namespace iovmm::dispatch::ioregionfd {
namespace {

using testing::FailureLog;
using namespace std::chrono_literals;

class IoregionfdProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::device_binary_exists()) {
      GTEST_SKIP() << testing::device_binary() << " not built (ninja iovmm-device)";
    }
  }
  Options options(bool posted = false, unsigned spin_us = 0) {
    Options o;
    o.posted = posted;
    o.spin_us = spin_us;
    o.timeout = 2000ms;
    o.on_failure = failures.handler();
    o.device_binary = testing::device_binary();
    return o;
  }
  // Two RAM ranges with a hole, so the region table matters.
  GuestMemory memory{{{0, 0x4000}, {0x100000, 0x2000}}};
  FailureLog failures;
};

TEST_F(IoregionfdProcess, ServesADeviceAndExitsCleanlyOnHangUp) {
  auto channel = start_process_server("ioregionfd-scratch,size=0x100", memory, options());
  ASSERT_GT(channel->pid(), 0);
  auto& proxy = *channel->proxy();
  EXPECT_EQ(proxy.name(), "ioregionfd-scratch");
  proxy.write(0, 0x10, 8, 0x0123456789abcdef);
  EXPECT_EQ(proxy.read(0, 0x10, 8), 0x0123456789abcdefu);
  EXPECT_EQ(proxy.read(0, 0x12, 2), 0x89abu);
  const pid_t pid = channel->pid();
  EXPECT_EQ(channel->stop(), "pid " + std::to_string(pid) + " exited with status 0");
  EXPECT_TRUE(failures.take().empty());
}

TEST_F(IoregionfdProcess, PostedWritesAreSeenByTheNextRead) {
  auto channel = start_process_server("ioregionfd-scratch", memory, options(/*posted=*/true));
  auto& proxy = *channel->proxy();
  for (uint64_t i = 1; i <= 3000; ++i) proxy.write(0, 0x100, 4, i);
  EXPECT_EQ(proxy.read(0, 0x100, 4), 3000u);
  EXPECT_TRUE(failures.take().empty());
}

TEST_F(IoregionfdProcess, TheProcessMapsTheSameGuestMemory) {
  auto channel = start_process_server("ioregionfd-scratch", memory, options());
  auto& proxy = *channel->proxy();
  // A page in the second range, changed by the VMM after the process started: a shared mapping sees it.
  std::vector<uint8_t> page(kProbePageSize);
  for (size_t i = 0; i < page.size(); ++i) page[i] = static_cast<uint8_t>(i * 7 + 3);
  ASSERT_TRUE(memory.write(0x101000, page.data(), page.size()));
  EXPECT_EQ(proxy.read(kMemoryProbeRegion, 0x101000, 8), page_checksum(page));
  page[100] ^= 0xff;
  ASSERT_TRUE(memory.write(0x101000, page.data(), page.size()));
  EXPECT_EQ(proxy.read(kMemoryProbeRegion, 0x101000, 8), page_checksum(page));
  EXPECT_EQ(proxy.read(kMemoryProbeRegion, 0x4000, 8), ~0ull);  // the hole is not RAM
  EXPECT_EQ(proxy.read(kMemoryProbeRegion, 0x101001, 8), ~0ull);  // not a page
  EXPECT_TRUE(failures.take().empty());
}

TEST_F(IoregionfdProcess, AccessesOutsideTheWindowsAreAnsweredNotObeyed) {
  auto channel = start_process_server("ioregionfd-scratch,size=0x1000", memory, options());
  auto& proxy = *channel->proxy();
  EXPECT_EQ(proxy.read(0, 0x1000, 4), 0xffffffffu);
  EXPECT_EQ(proxy.read(0, 0xffc, 8), ~0ull);
  EXPECT_EQ(proxy.read(3, 0, 2), 0xffffu);
  EXPECT_EQ(proxy.read(0, ~0ull, 1), 0xffu);
  proxy.write(0, 0x1000, 8, 1);
  EXPECT_EQ(proxy.read(0, 0xff8, 8), 0u);  // still alive and well
  EXPECT_FALSE(proxy.failed());
  EXPECT_TRUE(failures.take().empty());
}

TEST_F(IoregionfdProcess, ExplicitWindowsOverrideTheDevicesOwn) {
  Options o = options();
  o.windows = {{0, 0x10}};
  auto channel = start_process_server("ioregionfd-scratch,size=0x1000", memory, o);
  EXPECT_EQ(channel->proxy()->read(0, 0x8, 8), 0u);
  EXPECT_EQ(channel->proxy()->read(0, 0x10, 1), 0xffu);
}

TEST_F(IoregionfdProcess, ServesPciTestdevsQemuHeader) {
  try {
    (void)devices::make_device(devices::DeviceSpec::parse("pci-testdev"));
  } catch (const UsageError& e) {
    GTEST_SKIP() << "pci-testdev is not in the device factory yet: " << e.what();
  }
  auto channel = start_process_server("pci-testdev", memory, options(false, 20));
  auto& proxy = *channel->proxy();
  proxy.write(0, 0x0, 1, 0);                      // BAR0: select test 0, mmio-no-eventfd
  EXPECT_EQ(proxy.read(0, 0x0, 1), 0u);           // test
  EXPECT_EQ(proxy.read(0, 0x1, 1), 1u);           // width
  EXPECT_EQ(proxy.read(0, 0x4, 4), 0x800u);       // offset
  EXPECT_EQ(proxy.read(0, 0x8, 1), 0xfau);        // data
  std::string name;
  for (uint64_t at = 0x10; at < 0x30; ++at) {
    auto c = static_cast<char>(proxy.read(0, at, 1));
    if (!c) break;
    name += c;
  }
  EXPECT_EQ(name, "mmio-no-eventfd");
  for (int i = 0; i < 3; ++i) proxy.write(0, 0x800, 1, 0xfa);
  proxy.write(0, 0x800, 1, 0x00);                 // not the data byte: not counted
  EXPECT_EQ(proxy.read(0, 0xc, 4), 3u);           // count
  proxy.write(1, 0x0, 1, 0);                      // BAR1 (I/O): select its test 0, device-wide test 3
  EXPECT_EQ(proxy.read(1, 0x0, 1), 3u);
  EXPECT_EQ(proxy.read(1, 0x4, 4), 0x80u + 3);
  EXPECT_EQ(proxy.read(0, 0x1000, 4), 0xffffffffu);  // past BAR0's 4 KiB
  EXPECT_EQ(proxy.read(1, 0x100, 1), 0xffu);          // past BAR1's 256 bytes
  EXPECT_TRUE(failures.take().empty());
}

TEST_F(IoregionfdProcess, KilledMidRunTheVmStopsWithAClearMessage) {
  auto channel = start_process_server("ioregionfd-scratch", memory, options(true, 10));
  auto proxy = channel->proxy();
  proxy->write(0, 0, 4, 1);
  ASSERT_EQ(proxy->read(0, 0, 4), 1u);
  const pid_t pid = channel->pid();
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(proxy->read(0, 0x8, 4), 0xffffffffu);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);  // EOF, not the timeout
  auto messages = failures.take();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0], "ioregionfd: ioregionfd-scratch server closed its socket during a 4-byte read of region 0 "
                         "offset 0x8 (iovmm-device pid " + std::to_string(pid) + " killed by signal 9 (Killed))");
  EXPECT_EQ(channel->stop(), "pid " + std::to_string(pid) + " killed by signal 9 (Killed)");
}

TEST_F(IoregionfdProcess, AStoppedProcessTimesOutAndIsKilledOnShutdown) {
  Options o = options();
  o.timeout = 200ms;
  auto channel = start_process_server("ioregionfd-scratch", memory, o);
  const pid_t pid = channel->pid();
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  EXPECT_EQ(channel->proxy()->read(0, 0, 2), 0xffffu);
  auto messages = failures.take();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_NE(messages[0].find("did not answer a 2-byte read of region 0 offset 0x0 within 200 ms (iovmm-device pid " +
                             std::to_string(pid) + " still running)"),
            std::string::npos)
      << messages[0];
  // It cannot see the hang-up while stopped: after the grace period it is killed.
  EXPECT_EQ(channel->stop(), "pid " + std::to_string(pid) + " killed by signal 9 (Killed)");
}

TEST_F(IoregionfdProcess, AnUnknownDeviceFailsAtStartUpNotAtTheFirstAccess) {
  try {
    (void)start_process_server("no-such-device,x=1", memory, options());
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("ioregionfd: no-such-device: the device process failed to start: it closed its socket"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("exited with status 2"), std::string::npos) << what;
  }
}

TEST_F(IoregionfdProcess, AMissingBinaryIsAClearError) {
  Options o = options();
  o.device_binary = "/nonexistent/iovmm-device";
  try {
    (void)start_process_server("ioregionfd-scratch", memory, o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot run the device process /nonexistent/iovmm-device"),
              std::string::npos)
        << e.what();
  }
}

int run_device(const std::string& arguments, std::string& stderr_text) {
  std::string err_file = ::testing::TempDir() + "iovmm-device-stderr.txt";
  int status = std::system((testing::device_binary() + " " + arguments + " 2>" + err_file + " </dev/null").c_str());
  FILE* f = std::fopen(err_file.c_str(), "r");
  stderr_text.clear();
  if (f) {
    char buffer[512];
    while (std::fgets(buffer, sizeof buffer, f)) stderr_text += buffer;
    std::fclose(f);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(IoregionfdProcess, TheBinaryRefusesBadCommandLinesWithOneLine) {
  std::string err;
  EXPECT_EQ(run_device("", err), 2);
  EXPECT_EQ(err, "iovmm-device: --socket is required (usage: iovmm-device --socket FD --memfd FD --regions "
                 "GPA:SIZE:OFFSET,... --device SPEC [--windows REGION:SIZE,...] [--spin-us N])\n");
  EXPECT_EQ(run_device("--socket 0 --memfd 0 --regions 0:0x1000:0 --device ioregionfd-scratch", err), 1);
  EXPECT_EQ(err, "iovmm-device: --socket 0: not a SOCK_SEQPACKET socket\n");
  EXPECT_EQ(run_device("--socket x --memfd 0 --regions 0 --device d", err), 2);
  EXPECT_EQ(err, "iovmm-device: --socket: 'x' is not a number\n");
  EXPECT_EQ(run_device("--bogus 1", err), 2);
  EXPECT_EQ(err, "iovmm-device: unknown option '--bogus'\n");
}

}  // namespace
}  // namespace iovmm::dispatch::ioregionfd

namespace iovmm {
namespace {

// The attach constructor iovmm-device uses: same bytes through a second mapping, and a table that does not
// describe the memfd is refused.
std::vector<MemfdRange> table_of(const GuestMemory& memory) {
  std::vector<MemfdRange> table;
  for (const auto& r : memory.regions()) table.push_back({r.gpa, r.size, r.file_offset});
  return table;
}

TEST(IoregionfdGuestMemory, AttachingSharesTheSamePages) {
  GuestMemory owner({{0, 0x2000}, {0x100000, 0x1000}});
  GuestMemory attached(Fd(::dup(owner.memfd())), table_of(owner));
  ASSERT_TRUE(owner.write_obj<uint32_t>(0x100ffc, 0xfeedf00d));
  EXPECT_EQ(attached.read_obj<uint32_t>(0x100ffc), 0xfeedf00du);
  ASSERT_TRUE(attached.write_obj<uint8_t>(0x1fff, 0x5a));
  EXPECT_EQ(owner.read_obj<uint8_t>(0x1fff), 0x5au);
  EXPECT_FALSE(attached.contains(0x2000, 1));
}

TEST(IoregionfdGuestMemory, AttachingRefusesATableThatDoesNotDescribeTheFile) {
  GuestMemory owner({{0, 0x2000}, {0x100000, 0x1000}});
  auto attach = [&](std::vector<MemfdRange> table) { GuestMemory m(Fd(::dup(owner.memfd())), std::move(table)); };
  EXPECT_THROW(attach({}), Error);
  EXPECT_THROW(attach({{0, 0x2000, 0}}), Error);                                    // leaves part of the file out
  EXPECT_THROW(attach({{0, 0x2000, 0}, {0x100000, 0x2000, 0x2000}}), Error);        // runs past the file's end
  EXPECT_THROW(attach({{0, 0x2000, 0}, {0x100000, 0x1000, 0x1000}}), Error);        // shares file bytes
  EXPECT_THROW(attach({{0, 0x2000, 0}, {0x1000, 0x1000, 0x2000}}), Error);          // overlapping guest ranges
  EXPECT_THROW(attach({{0, 0x2000, 0}, {0x100800, 0x1000, 0x2000}}), Error);        // not page-aligned
  EXPECT_THROW(attach({{0, 0x2000, 0}, {~0ull & ~0xfffull, 0x1000, 0x2000}}), Error);  // wraps
  EXPECT_NO_THROW(attach(table_of(owner)));
}

}  // namespace
}  // namespace iovmm
