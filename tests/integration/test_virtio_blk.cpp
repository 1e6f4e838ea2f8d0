// virtio-blk on real KVM: the disk guest writes a known pattern through each transport and each legal dispatch
// choice, reads it back and compares; the test then compares the image on the host. Also: a pattern the host wrote
// is read correctly by the guest, a flushed write survives SIGKILL of the VMM, read-only disks refuse writes
// (the guest sees an I/O error, the VMM keeps running), and bad options are refused in one line.
#include <gtest/gtest.h>

#include <signal.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../support/kvm_required.h"
#include "support/disk_pattern.h"
#include "support/run_vmm.h"

namespace iovmm::test {
namespace {

constexpr int kSuccess = 1;  // debug_exit(0)
constexpr uint64_t kImageBytes = 16 << 20;

struct Case {
  std::string name;        // gtest parameter name
  std::string transport;   // the guest's transport= option
  std::string device;      // --device options after file=IMAGE
  std::string completion;  // poll or irq
};

std::vector<Case> cases() {
  std::vector<Case> out;
  const std::vector<std::pair<std::string, std::string>> transports = {
      {"mmio", "transport=mmio"},
      {"mmio-legacy", "transport=mmio,legacy=on"},
      {"pci", "transport=pci"},
      {"pci-legacy", "transport=pci,legacy=on"}};
  const std::vector<std::pair<std::string, std::string>> dispatches = {
      {"exit", "dispatch=exit"},
      {"ioeventfd", "dispatch.queue_notify=ioeventfd"},
      {"partial", "dispatch=partial"},
      {"ioregionfd", "dispatch=ioregionfd,server=thread"}};
  for (const auto& [transport, transport_options] : transports) {
    for (const auto& [dispatch, dispatch_options] : dispatches) {
      // mmio-legacy is told apart by the device, not by the guest's option: both speak virtio-mmio.
      std::string guest_transport = transport == "mmio-legacy" ? "mmio" : transport;
      out.push_back({transport + "_" + dispatch, guest_transport, transport_options + "," + dispatch_options, "poll"});
    }
    std::string guest_transport = transport == "mmio-legacy" ? "mmio" : transport;
    out.push_back({transport + "_irq", guest_transport, transport_options + ",dispatch.queue_notify=ioeventfd", "irq"});
  }
  out.push_back({"mmio_fastpath_status", "mmio", "transport=mmio,dispatch.interrupt_status=fastpath", "irq"});
  out.push_back({"pci_queues4", "pci", "transport=pci,queues=4,dispatch.queue_notify=ioeventfd", "poll"});
  return out;
}

std::string make_image(const std::string& name) {
  std::string path = temp_path(name);
  std::filesystem::remove(path);
  std::ofstream(path).close();
  std::filesystem::resize_file(path, kImageBytes);
  return path;
}

RunResult run_disk_guest(const std::string& image, const std::string& device_options, const std::string& append,
                         const std::string& stats = {}) {
  std::vector<std::string> args = {"run", "--kernel", guest_path("disk-bench.elf"), "--append", append,
                                   "--no-console-input", "--memory", "256M",
                                   "--device", "virtio-blk,file=" + image + "," + device_options};
  if (!stats.empty()) {
    args.push_back("--stats-json");
    args.push_back(stats);
  }
  return run_vmm(args, 240);
}

void PrintTo(const Case& c, std::ostream* out) { *out << c.device << " (" << c.completion << ")"; }

class VirtioBlkTransports : public ::testing::TestWithParam<Case> {};

TEST_P(VirtioBlkTransports, PatternWrittenReadBackAndOnTheHost) {
  IOVMM_REQUIRE_KVM();
  const Case& c = GetParam();
  const std::string image = make_image("disk.img");
  const std::string stats = temp_path("stats.json");
  const uint32_t seed = 17;
  const uint64_t start = 64, sectors = 512;
  auto result = run_disk_guest(image, c.device,
                               "transport=" + c.transport + " completion=" + c.completion +
                                   " pattern=on bench=on bs=4096,65536 qd=1,8 requests=64" +
                                   " pattern_start=" + std::to_string(start) + " pattern_sectors=" +
                                   std::to_string(sectors) + " seed=" + std::to_string(seed),
                               stats);
  ASSERT_EQ(result.status, kSuccess) << result.out << result.err;
  EXPECT_EQ(lines_starting_with(result.out, "disk: pattern ok").size(), 1u) << result.out;
  EXPECT_EQ(lines_starting_with(result.out, "disk: result ").size(), 4u) << result.out;
  EXPECT_EQ(first_pattern_mismatch(image, start, sectors, seed), "") << "on the host";

  // What the statistics say about the path the doorbell took.
  std::ifstream file(stats);
  ASSERT_TRUE(file) << "no statistics";
  const auto json = nlohmann::json::parse(file);
  uint64_t notify_ioeventfd = 0, notify_exit = 0;
  for (const auto& window : json["devices"]) {
    if (window["device"] != "virtio-blk") continue;
    for (const auto& a : window["accesses"]) {
      if (!a["register"].is_string() || a["register"] != "queue_notify") continue;
      (a["path"] == "ioeventfd" ? notify_ioeventfd : notify_exit) += a["count"].get<uint64_t>();
    }
  }
  if (c.device.find("queue_notify=ioeventfd") != std::string::npos || c.device.find("partial") != std::string::npos) {
    EXPECT_GT(notify_ioeventfd, 0u);
  } else if (c.device.find("dispatch=exit") != std::string::npos) {
    EXPECT_EQ(notify_ioeventfd, 0u);
    EXPECT_GT(notify_exit, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(All, VirtioBlkTransports, ::testing::ValuesIn(cases()),
                         [](const auto& param_info) {
                           std::string name = param_info.param.name;
                           for (char& ch : name) ch = ch == '-' ? '_' : ch;  // gtest names: letters, digits, _
                           return name;
                         });

TEST(VirtioBlk, GuestReadsWhatTheHostWrote) {
  IOVMM_REQUIRE_KVM();
  const std::string image = make_image("host.img");
  const uint32_t seed = 99;
  write_pattern(image, 1000, 300, seed);
  for (const std::string transport : {"mmio", "pci"}) {
    auto result = run_disk_guest(image, "transport=" + transport + ",readonly=on",
                                 "transport=" + transport +
                                     " verify_only=on bench=off pattern_start=1000 pattern_sectors=300 seed=99");
    EXPECT_EQ(result.status, kSuccess) << transport << "\n" << result.out << result.err;
    EXPECT_EQ(lines_starting_with(result.out, "disk: pattern ok").size(), 1u) << result.out;
  }
}

TEST(VirtioBlk, FlushedWriteSurvivesSigkill) {
  IOVMM_REQUIRE_KVM();
  const std::string image = make_image("flush.img");
  auto result = run_program_until(
      IOVMM_BINARY,
      {"run", "--kernel", guest_path("disk-bench.elf"), "--append",
       "transport=pci bench=off pattern=on pattern_start=8 pattern_sectors=256 seed=5 flush_and_wait=on",
       "--no-console-input", "--device", "virtio-blk,transport=pci,dispatch.queue_notify=ioeventfd,file=" + image},
      "disk: flushed", SIGKILL, 120);
  ASSERT_EQ(result.status, 128 + SIGKILL) << result.out << result.err;
  EXPECT_EQ(first_pattern_mismatch(image, 8, 256, 5), "");
}

TEST(VirtioBlk, ReadonlyDiskRefusesWritesAndKeepsRunning) {
  IOVMM_REQUIRE_KVM();
  const std::string image = make_image("ro.img");
  auto result = run_disk_guest(image, "transport=mmio,readonly=on", "transport=mmio bench=off pattern=on");
  // The guest reports the failed write and ends through debug-exit: the VMM did not stop on its own.
  EXPECT_EQ(result.status, 3) << result.out << result.err;
  EXPECT_FALSE(lines_starting_with(result.out, "disk: FAIL").empty()) << result.out;
}

TEST(VirtioBlk, BadOptionsAreOneLine) {
  const std::string image = make_image("bad.img");
  struct Bad {
    std::string device;
    std::string says;
  };
  const std::vector<Bad> bad = {
      {"virtio-blk,file=/nonexistent/disk.img", "/nonexistent/disk.img"},
      {"virtio-blk", "file=IMAGE is required"},
      {"virtio-blk,file=" + image + ",transport=isa", "transport=isa"},
      {"virtio-blk,file=" + image + ",transport=mmio,dispatch.status=coalesced", "status"},
      {"virtio-blk,file=" + image + ",transport=pci,dispatch.isr=fastpath", "isr"},
      {"virtio-blk,file=" + image + ",queues=0", "queues"},
      {"virtio-blk,file=" + image + ",dispatch=ioregionfd,server=process", "server=thread"},
  };
  for (const auto& b : bad) {
    auto result = run_vmm({"run", "--kernel", guest_path("disk-bench.elf"), "--no-console-input", "--device", b.device});
    EXPECT_EQ(result.status, 2) << b.device << "\n" << result.err;
    EXPECT_EQ(lines_starting_with(result.err, "iovmm: ").size(), 1u) << b.device << "\n" << result.err;
    EXPECT_NE(result.err.find(b.says), std::string::npos) << b.device << "\n" << result.err;
  }
}

}  // namespace
}  // namespace iovmm::test
