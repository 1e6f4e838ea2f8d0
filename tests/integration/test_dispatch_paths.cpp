// Every dispatch path on real KVM: the guest drives a device through it and reports what it saw; the test compares
// that with what the device counted and with the path iovmm's statistics say each access took. No timings.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>
#include <map>
#include <nlohmann/json.hpp>

#include "../support/kvm_required.h"
#include "support/run_vmm.h"

namespace iovmm::test {
namespace {

// Accesses to one device by (direction, path), from --stats-json.
struct PathCounts {
  std::map<std::pair<std::string, std::string>, uint64_t> counts;
  uint64_t count(const std::string& direction, const std::string& path) const {
    auto it = counts.find({direction, path});
    return it == counts.end() ? 0 : it->second;
  }
};

struct Run {
  RunResult result;
  nlohmann::json stats;
  PathCounts by_path(const std::string& device) const {
    PathCounts out;
    for (const auto& window : stats["devices"]) {
      if (window["device"] != device) continue;
      for (const auto& a : window["accesses"]) {
        out.counts[{a["direction"].get<std::string>(), a["path"].get<std::string>()}] += a["count"].get<uint64_t>();
      }
    }
    return out;
  }
};

Run run_dispatch_check(const std::string& mode, const std::vector<std::string>& devices) {
  std::string json = temp_path("dispatch-" + mode + ".json");
  std::vector<std::string> args = {"run", "--kernel", guest_path("dispatch-check.elf"), "--append", "mode=" + mode,
                                   "--stats-json", json};
  for (const auto& d : devices) {
    args.push_back("--device");
    args.push_back(d);
  }
  Run run{run_vmm(args, 180), {}};
  std::ifstream file(json);
  if (file) run.stats = nlohmann::json::parse(file);
  return run;
}

constexpr int kSuccess = 1;  // debug_exit(0)

TEST(DispatchPaths, CoalescedVgaWritesNeverOvertakenAndNeverLost) {
  IOVMM_REQUIRE_KVM();
  auto run = run_dispatch_check("vga", {"vga-window,dispatch=coalesced"});
  ASSERT_EQ(run.result.status, kSuccess) << run.result.out << run.result.err;
  EXPECT_NE(run.result.out.find("dispatch: vga writes=48384 reads=32920 mismatches=0"), std::string::npos)
      << run.result.out;
  auto paths = run.by_path("vga");
  // Every write is accounted for exactly once: most replayed from the ring, the rest exited when it was full.
  EXPECT_EQ(paths.count("write", "coalesced") + paths.count("write", "exit"), 48384u);
  EXPECT_GT(paths.count("write", "coalesced"), 40000u);
  EXPECT_GT(paths.count("write", "exit"), 0u) << "the long bursts must overflow the ring at least once";
  EXPECT_EQ(paths.count("read", "exit"), 32920u);  // reads are never coalesced
}

TEST(DispatchPaths, VgaWithoutCoalescingIsTheControl) {
  IOVMM_REQUIRE_KVM();
  auto run = run_dispatch_check("vga", {"vga-window"});
  ASSERT_EQ(run.result.status, kSuccess) << run.result.out << run.result.err;
  auto paths = run.by_path("vga");
  EXPECT_EQ(paths.count("write", "exit"), 48384u);
  EXPECT_EQ(paths.count("write", "coalesced"), 0u);
}

class TestdevPath : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

// The device counts every write at the test port whichever path carried it, and the statistics say which.
TEST_P(TestdevPath, DeviceCountsEveryWrite) {
  IOVMM_REQUIRE_KVM();
  auto [device, expected_write_path] = GetParam();
  auto run = run_dispatch_check("testdev", {device});
  ASSERT_EQ(run.result.status, kSuccess) << run.result.out << run.result.err;
  EXPECT_NE(run.result.out.find("dispatch: testdev mmio count=1000 pio count=1000"), std::string::npos)
      << run.result.out;
  auto paths = run.by_path("pci-testdev");
  EXPECT_GE(paths.count("write", expected_write_path), expected_write_path == "coalesced" ? 1900u : 2000u);
}

INSTANTIATE_TEST_SUITE_P(
    Paths, TestdevPath,
    ::testing::Values(std::pair{std::string("pci-testdev"), std::string("exit")},
                      std::pair{std::string("pci-testdev,dispatch=coalesced"), std::string("coalesced")},
                      std::pair{std::string("pci-testdev,dispatch.count=fastpath"), std::string("exit")}));

TEST(DispatchPaths, FastpathReadsSkipTheLockAndSeeTheSameCount) {
  IOVMM_REQUIRE_KVM();
  auto run = run_dispatch_check("testdev", {"pci-testdev,dispatch.count=fastpath"});
  ASSERT_EQ(run.result.status, kSuccess) << run.result.out << run.result.err;
  auto paths = run.by_path("pci-testdev");
  EXPECT_EQ(paths.count("read", "fastpath"), 102u);  // 101 mmio count reads + 1 pio
}

TEST(DispatchPaths, HypercallCarriesMmioAndPioAccesses) {
  IOVMM_REQUIRE_KVM();
  auto run = run_dispatch_check("hypercall", {"pci-testdev"});
  ASSERT_EQ(run.result.status, kSuccess) << run.result.out << run.result.err;
  EXPECT_NE(run.result.out.find("dispatch: hypercall mmio count=1000 pio count=1000 errors=0 unmapped=ffffffff/1 "
                                "bad_size=2"),
            std::string::npos)
      << run.result.out;
  auto paths = run.by_path("pci-testdev");
  EXPECT_EQ(paths.count("write", "hypercall"), 2002u);
  EXPECT_EQ(paths.count("write", "exit"), 0u);
}

TEST(DispatchPaths, IllegalChoicesAreRefusedBeforeTheGuestRuns) {
  auto refused = [](const std::string& device) {
    auto result = run_vmm({"run", "--kernel", guest_path("dispatch-check.elf"), "--device", device});
    EXPECT_EQ(result.status, 2) << device;
    EXPECT_TRUE(result.out.empty()) << device;
    return result.err;
  };
  EXPECT_EQ(refused("pci-testdev,dispatch.test=coalesced"),
            "iovmm: pci-testdev: register mmio+0x0 (test) is synchronous; it cannot be coalesced\n");
  EXPECT_NE(refused("pci-testdev,dispatch.count=ioeventfd").find("read-only"), std::string::npos);
  EXPECT_NE(refused("pci-testdev,dispatch=teleport").find("unknown path"), std::string::npos);
  EXPECT_NE(refused("pci-testdev,dispatch.nonesuch=exit").find("no such register"), std::string::npos);
  EXPECT_NE(refused("pci-testdev,colour=blue").find("unknown option 'colour'"), std::string::npos);
}

}  // namespace
}  // namespace iovmm::test

namespace iovmm::test {
namespace {

class IoregionfdPath : public ::testing::TestWithParam<std::string> {};

TEST_P(IoregionfdPath, DeviceServerSeesEveryAccess) {
  IOVMM_REQUIRE_KVM();
  auto run = run_dispatch_check("testdev", {"pci-testdev,dispatch=ioregionfd," + GetParam()});
  ASSERT_EQ(run.result.status, kSuccess) << run.result.out << run.result.err;
  EXPECT_NE(run.result.out.find("dispatch: testdev mmio count=1000 pio count=1000"), std::string::npos)
      << run.result.out;
  auto paths = run.by_path("pci-testdev");
  EXPECT_EQ(paths.count("write", "ioregionfd"), 2002u);
  EXPECT_EQ(paths.count("read", "ioregionfd"), 106u);
  EXPECT_EQ(paths.count("write", "exit") + paths.count("read", "exit"), 0u);
}

INSTANTIATE_TEST_SUITE_P(Servers, IoregionfdPath,
                         ::testing::Values("server=thread", "server=process", "server=thread,posted=on",
                                           "server=process,posted=on"));

// The pid of a process whose parent is `parent` and whose command line contains `needle`, or 0.
pid_t find_child(pid_t parent, const std::string& needle) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string pid, comm, state;
    pid_t ppid = 0;
    stat >> pid >> comm >> state >> ppid;
    std::ifstream cmdline_file(entry.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(cmdline_file)), {});
    if (ppid == parent && cmdline.find(needle) != std::string::npos) return std::stoi(name);
  }
  return 0;
}

TEST(IoregionfdFailure, KilledDeviceProcessStopsTheVmWithOneLine) {
  IOVMM_REQUIRE_KVM();
  // A long measurement, so the device process is killed while the guest is using it.
  std::vector<std::string> args = {"run", "--kernel", guest_path("bench-exits.elf"), "--append",
                                   "goal=100000000000 modes=cpl3 kinds=testdev_mmio_no-eventfd", "--device",
                                   "pci-testdev,dispatch=ioregionfd,server=process"};
  std::atomic<bool> killed{false};
  std::thread killer([&] {
    for (int i = 0; i < 300 && !killed; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      pid_t vmm = find_child(getpid(), "bench-exits.elf");
      pid_t device = vmm ? find_child(vmm, "iovmm-device") : 0;
      if (device && i >= 10) {
        kill(device, SIGKILL);
        killed = true;
      }
    }
  });
  RunResult result = run_program(IOVMM_BINARY, args, 60);
  killer.join();
  ASSERT_TRUE(killed) << "never found the iovmm-device process";
  EXPECT_FALSE(result.timed_out);
  EXPECT_EQ(result.status, 4) << result.err;
  EXPECT_NE(result.err.find("ioregionfd: "), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("killed by signal 9"), std::string::npos) << result.err;
  EXPECT_EQ(lines_starting_with(result.err, "iovmm: error:").size(), 1u) << result.err;
}

TEST(IoregionfdFailure, TransportOptionsNeedIoregionfd) {
  auto result = run_vmm({"run", "--kernel", guest_path("dispatch-check.elf"), "--device", "pci-testdev,posted=on"});
  EXPECT_EQ(result.status, 2);
  EXPECT_EQ(result.err, "iovmm: --device pci-testdev,posted=on: posted= applies only with dispatch=ioregionfd\n");
  result = run_vmm({"run", "--kernel", guest_path("dispatch-check.elf"), "--device",
                    "pci-testdev,dispatch=ioregionfd,server=mars"});
  EXPECT_EQ(result.status, 2);
  EXPECT_NE(result.err.find("expected thread or process"), std::string::npos);
}

}  // namespace
}  // namespace iovmm::test

namespace iovmm::test {
namespace {

// A guest that ends while an eventfd test is selected leaves a doorbell registered at shutdown: the device must be
// detached from the doorbell host before the host goes (this crashed once).
TEST(DispatchShutdown, EndsCleanlyWithADoorbellStillRegistered) {
  IOVMM_REQUIRE_KVM();
  auto result = run_vmm({"run", "--kernel", guest_path("bench-exits.elf"), "--device", "pci-testdev", "--append",
                         "kinds=testdev_mmio_wildcard-eventfd,testdev_pio_datamatch-eventfd modes=cpl3 "
                         "iterations=1000 quiet"});
  EXPECT_EQ(result.status, 1) << result.out << result.err;
  EXPECT_TRUE(result.err.empty()) << result.err;
}

}  // namespace
}  // namespace iovmm::test
