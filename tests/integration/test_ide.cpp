// IDE on real KVM: the IDE guest writes a known pattern in PIO, PIO-multiple and DMA mode under dispatch=exit and
// dispatch=partial, reads it back and compares; the test compares the image on the host and checks from the
// statistics that under partial the task-file latches no longer exit (they are coalesced) while the command and
// status registers still do.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "../support/kvm_required.h"
#include "support/disk_pattern.h"
#include "support/run_vmm.h"

namespace iovmm::test {
namespace {

constexpr int kSuccess = 1;  // debug_exit(0)

struct Case {
  std::string dispatch;    // exit or partial
  std::string mode;        // pio, multiple, dma
  std::string completion;  // poll or irq
};

std::string name(const ::testing::TestParamInfo<Case>& info) {
  return info.param.dispatch + "_" + info.param.mode + "_" + info.param.completion;
}

// (register, path) -> writes to the ide device, from --stats-json. Reads of a latch (a driver checking the
// signature) exit under every choice: only writes can be coalesced.
std::map<std::pair<std::string, std::string>, uint64_t> writes_by_register(const nlohmann::json& stats) {
  std::map<std::pair<std::string, std::string>, uint64_t> out;
  for (const auto& window : stats["devices"]) {
    if (window["device"] != "ide") continue;
    for (const auto& a : window["accesses"]) {
      if (!a["register"].is_string() || a["direction"] != "write") continue;
      out[{a["register"].get<std::string>(), a["path"].get<std::string>()}] += a["count"].get<uint64_t>();
    }
  }
  return out;
}

void PrintTo(const Case& c, std::ostream* out) { *out << c.dispatch << " " << c.mode << " " << c.completion; }

class IdeModes : public ::testing::TestWithParam<Case> {};

TEST_P(IdeModes, PatternRoundTripAndLatchesLeaveUserSpace) {
  IOVMM_REQUIRE_KVM();
  const Case& c = GetParam();
  const std::string image = temp_path("ide.img");
  std::filesystem::remove(image);
  std::ofstream(image).close();
  std::filesystem::resize_file(image, 8 << 20);
  const std::string stats = temp_path("stats.json");
  auto result = run_vmm({"run", "--kernel", guest_path("ide-bench.elf"), "--append",
                         "mode=" + c.mode + " completion=" + c.completion +
                             " pattern=on pattern_start=32 pattern_sectors=128 seed=23 bench=on bs=4096 requests=16",
                         "--no-console-input", "--memory", "256M", "--stats-json", stats, "--device",
                         "ide,file=" + image + ",dispatch=" + c.dispatch},
                        240);
  ASSERT_EQ(result.status, kSuccess) << result.out << result.err;
  EXPECT_EQ(lines_starting_with(result.out, "ide: pattern ok").size(), 1u) << result.out;
  EXPECT_EQ(first_pattern_mismatch(image, 32, 128, 23), "") << "on the host";

  std::ifstream file(stats);
  ASSERT_TRUE(file);
  const auto counts = writes_by_register(nlohmann::json::parse(file));
  auto count = [&](const std::string& reg, const std::string& path) {
    auto it = counts.find({reg, path});
    return it == counts.end() ? uint64_t{0} : it->second;
  };
  const std::vector<std::string> latches = {"sector_count", "lba_low", "lba_mid", "lba_high", "device"};
  for (const auto& reg : latches) {
    if (c.dispatch == "partial") {
      EXPECT_GT(count(reg, "coalesced"), 0u) << reg;
      EXPECT_EQ(count(reg, "exit"), 0u) << reg << " writes still exit";
    } else {
      EXPECT_EQ(count(reg, "coalesced"), 0u) << reg;
      EXPECT_GT(count(reg, "exit"), 0u) << reg;
    }
  }
  // The command register is synchronous under every choice.
  EXPECT_GT(count("command", "exit"), 0u);
  EXPECT_EQ(count("command", "coalesced"), 0u);
}

INSTANTIATE_TEST_SUITE_P(All, IdeModes,
                         ::testing::Values(Case{"exit", "pio", "poll"}, Case{"partial", "pio", "poll"},
                                           Case{"exit", "multiple", "poll"}, Case{"partial", "multiple", "poll"},
                                           Case{"exit", "dma", "poll"}, Case{"partial", "dma", "poll"},
                                           Case{"partial", "pio", "irq"}, Case{"exit", "dma", "irq"}),
                         name);

TEST(Ide, IllegalChoicesAreRefused) {
  const std::string image = temp_path("bad.img");
  std::ofstream(image).close();
  std::filesystem::resize_file(image, 1 << 20);
  struct Bad {
    std::string device;
    std::string says;
  };
  const std::vector<Bad> bad = {
      {"ide,file=" + image + ",dispatch.command=coalesced", "command"},
      {"ide,file=" + image + ",dispatch.data=coalesced", "data"},
      {"ide,file=/nonexistent.img", "/nonexistent.img"},
      {"ide,file=" + image + ",dispatch=ioregionfd,server=process", "server=thread"},
  };
  for (const auto& b : bad) {
    auto result = run_vmm({"run", "--kernel", guest_path("ide-bench.elf"), "--no-console-input", "--device", b.device});
    EXPECT_EQ(result.status, 2) << b.device << "\n" << result.err;
    EXPECT_EQ(lines_starting_with(result.err, "iovmm: ").size(), 1u) << result.err;
    EXPECT_NE(result.err.find(b.says), std::string::npos) << b.device << "\n" << result.err;
  }
}

TEST(Ide, GuestReadsWhatTheHostWroteThroughIoregionfd) {
  IOVMM_REQUIRE_KVM();
  const std::string image = temp_path("host.img");
  std::ofstream(image).close();
  std::filesystem::resize_file(image, 4 << 20);
  write_pattern(image, 100, 64, 77);
  auto result = run_vmm({"run", "--kernel", guest_path("ide-bench.elf"), "--append",
                         "mode=pio,dma verify_only=on bench=off pattern_start=100 pattern_sectors=64 seed=77",
                         "--no-console-input", "--memory", "256M", "--device",
                         "ide,file=" + image + ",dispatch=ioregionfd,server=thread"},
                        240);
  EXPECT_EQ(result.status, kSuccess) << result.out << result.err;
  EXPECT_FALSE(lines_starting_with(result.out, "ide: pattern ok").empty()) << result.out;
}

}  // namespace
}  // namespace iovmm::test
