// Boots the demo guest on real KVM and checks what it found: the platform as a guest written for QEMU sees it.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../support/kvm_required.h"
#include "support/run_vmm.h"

namespace iovmm::test {
namespace {

constexpr int kDebugExitSuccess = 1;  // isa-debug-exit: (0 << 1) | 1

bool has_line(const std::string& out, const std::string& line) {
  return out.find(line + "\n") != std::string::npos;
}

class DemoGuest : public ::testing::TestWithParam<int> {};

TEST_P(DemoGuest, ReportsThePlatform) {
  IOVMM_REQUIRE_KVM();
  int cpus = GetParam();
  auto result = run_vmm({"run", "--kernel", guest_path("demo.elf"), "--append", "hello world", "--cpus",
                         std::to_string(cpus), "--memory", "128M"});
  ASSERT_FALSE(result.timed_out) << result.out << result.err;
  EXPECT_EQ(result.status, kDebugExitSuccess) << result.out << result.err;
  const std::string& out = result.out;
  EXPECT_TRUE(has_line(out, "demo: start")) << out;
  EXPECT_TRUE(has_line(out, "boot: pvh cmdline=\"hello world\"")) << out;
  EXPECT_TRUE(has_line(out, "fwcfg: signature=QEMU cpus=" + std::to_string(cpus) + " cmdline=\"hello world\""))
      << out;
  EXPECT_TRUE(has_line(out, "acpi: rsdp=ok xsdt=ok fadt=ok madt=ok")) << out;
  EXPECT_TRUE(has_line(out, "acpi: madt cpus=" + std::to_string(cpus) + " ioapic=0xfec00000")) << out;
  EXPECT_TRUE(has_line(out, "acpi: fadt pm_tmr_blk=0x608")) << out;
  EXPECT_TRUE(has_line(out, "pmtimer: ok")) << out;
  EXPECT_TRUE(has_line(out, "pci: 00:00.0 8086:1237 class=0600")) << out;
  std::string ids = cpus == 1 ? "0" : "0,1";
  EXPECT_TRUE(has_line(out, "smp: cpus=" + std::to_string(cpus) + " started=" + std::to_string(cpus) +
                                " apic_ids=" + ids))
      << out;
  EXPECT_EQ(lines_starting_with(out, "cpl3: ok").size(), 1u) << out;
  EXPECT_TRUE(has_line(out, "demo: done")) << out;
  EXPECT_TRUE(lines_starting_with(out, "demo: FAIL").empty()) << out;
  // 128 MiB minus the VGA hole (128 KiB), the EBDA (1 KiB) and the BIOS/ACPI area (128 KiB)
  EXPECT_TRUE(has_line(out, "memmap: entries=4 ram_kib=130687")) << out;
}

INSTANTIATE_TEST_SUITE_P(Cpus, DemoGuest, ::testing::Values(1, 2));

TEST(DemoGuestStats, JsonCountsExitsAndAccessesPerRegister) {
  IOVMM_REQUIRE_KVM();
  std::string json_path = temp_path("demo-stats.json");
  auto result = run_vmm({"run", "--kernel", guest_path("demo.elf"), "--stats", "--stats-json", json_path});
  ASSERT_EQ(result.status, kDebugExitSuccess) << result.err;
  EXPECT_NE(result.err.find("=== iovmm statistics ==="), std::string::npos);
  std::ifstream file(json_path);
  auto stats = nlohmann::json::parse(file);
  EXPECT_EQ(stats["exit_status"], kDebugExitSuccess);
  EXPECT_GT(stats["user_exits"]["io"].get<uint64_t>(), 100u);
  // Every transmitted byte is one write to COM1's offset 0 (THR); so is the divisor latch's low byte, written once
  // while the guest sets the baud rate (DLAB=1).
  uint64_t thr_writes = 0, pm_timer_reads = 0;
  for (const auto& window : stats["devices"]) {
    for (const auto& access : window["accesses"]) {
      if (window["device"] == "com1" && access["offset"] == 0 && access["direction"] == "write") {
        thr_writes += access["count"].get<uint64_t>();
      }
      if (window["device"] == "acpi-pm" && access["offset"] == 8) pm_timer_reads += access["count"].get<uint64_t>();
    }
  }
  EXPECT_EQ(thr_writes, result.out.size() + 1);
  EXPECT_GT(pm_timer_reads, 0u);
  EXPECT_FALSE(stats["vcpus"][0]["kvm"].empty());
  EXPECT_EQ(stats["unmapped"]["pio"]["reads"], 0);
}

TEST(DemoGuestStats, GuestExceptionEndsWithTheGuestsStatus) {
  IOVMM_REQUIRE_KVM();
  auto result = run_vmm({"run", "--kernel", guest_path("demo.elf"), "--append", "fault=cpl3"});
  EXPECT_EQ(result.status, 7) << result.out << result.err;  // the guest's exception handler: debug_exit(3)
  EXPECT_FALSE(lines_starting_with(result.out, "exception:").empty()) << result.out;
}

}  // namespace
}  // namespace iovmm::test
