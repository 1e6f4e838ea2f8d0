// `iovmm bench disk` and `iovmm bench ide` end to end, small and without QEMU (its side runs in the benchmark
// itself): every configuration runs, every row has the JSON fields the issues name, exits per request come from the
// markers, and IDE's partial rows show the latches gone from the exit breakdown. Never timings.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "../support/kvm_required.h"
#include "support/run_vmm.h"

namespace iovmm::test {
namespace {

nlohmann::json run_bench(const std::vector<std::string>& args, const std::string& json) {
  auto result = run_vmm(args, 600);
  EXPECT_EQ(result.status, 0) << result.out << result.err;
  std::ifstream file(json);
  if (!file) return nullptr;
  return nlohmann::json::parse(file);
}

TEST(BenchDisk, BenchCommandWritesRowsForEveryTransportAndDispatch) {
  IOVMM_REQUIRE_KVM();
  const std::string json = temp_path("disk.json");
  auto document = run_bench({"bench", "disk", "--rounds", "1", "--requests", "40", "--no-qemu", "--image-mib", "16",
                             "--image-dir", temp_path(""), "--guest", guest_path("disk-bench.elf"), "--json", json},
                            json);
  ASSERT_TRUE(document.is_object());
  EXPECT_TRUE(document["unavailable"].empty()) << document["unavailable"].dump();
  std::set<std::string> seen;
  for (const auto& row : document["rows"]) {
    for (const char* key : {"vmm", "transport", "dispatch", "block_size", "queue_depth", "iops", "mbps",
                            "user_exits_per_request"}) {
      EXPECT_TRUE(row.contains(key)) << key << " in " << row.dump();
    }
    EXPECT_GT(row["iops"].get<double>(), 0);
    seen.insert(row["transport"].get<std::string>() + "/" + row["dispatch"].get<std::string>());
    if (row["dispatch"] == "exit" && row["queue_depth"] == 1) {
      EXPECT_NEAR(row["user_exits_per_request"].get<double>(), 1.0, 0.1) << "one QueueNotify exit per request";
    }
    if (row["dispatch"].get<std::string>().starts_with("ioeventfd")) {
      EXPECT_LE(row["user_exits_per_request"].get<double>(), 0.02) << row.dump();
    }
  }
  EXPECT_EQ(seen.size(), 15u) << "3 transports x 5 dispatch choices";
}

TEST(BenchIde, BenchCommandShowsLatchesLeavingUserSpace) {
  IOVMM_REQUIRE_KVM();
  const std::string json = temp_path("ide.json");
  auto document = run_bench({"bench", "ide", "--rounds", "1", "--requests", "10", "--block-sizes", "4096",
                             "--no-qemu", "--image-mib", "8", "--image-dir", temp_path(""), "--guest",
                             guest_path("ide-bench.elf"), "--json", json},
                            json);
  ASSERT_TRUE(document.is_object());
  ASSERT_EQ(document["rows"].size(), 6u) << "exit and partial x pio, multiple, dma";
  for (const auto& row : document["rows"]) {
    for (const char* key : {"vmm", "dispatch", "mode", "block_size", "iops", "user_exits_per_request",
                            "exits_by_register"}) {
      ASSERT_TRUE(row.contains(key)) << key << " in " << row.dump();
    }
    const auto& by_register = row["exits_by_register"];
    for (const char* latch : {"sector_count", "lba_low", "lba_mid", "lba_high", "device"}) {
      if (row["dispatch"] == "partial") {
        EXPECT_FALSE(by_register.contains(latch)) << latch << " still exits: " << row.dump();
      } else {
        EXPECT_DOUBLE_EQ(by_register.value(latch, 0.0), 1.0) << latch << ": " << row.dump();
      }
    }
    EXPECT_GE(by_register.value("command", 0.0), 1.0) << "the command register always exits";
    if (row["dispatch"] == "partial" && row["mode"] == "pio") {
      EXPECT_LE(row["user_exits_per_request"].get<double>(), 25.0) << row.dump();
    }
  }
}

}  // namespace
}  // namespace iovmm::test
