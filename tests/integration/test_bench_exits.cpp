// Boots the exits bench guest (guests/bench-exits) on real KVM with a tiny cycle goal and checks what it reports:
// every line parses, every kind measured a positive iteration count, and the pci-testdev saw every write the guest
// made. Never timings: those belong to `iovmm bench exits`, not to tests.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "../support/kvm_required.h"
#include "support/run_vmm.h"

namespace iovmm::test {
namespace {

constexpr int kDebugExitSuccess = 1;  // isa-debug-exit: (0 << 1) | 1
constexpr int kDebugExitFail = 3;     // debug_exit(1)
constexpr int kUsageError = 2;
constexpr const char* kTinyGoal = "goal=4096 cpl0_goal=512";
constexpr const char* kQemu = "/usr/bin/qemu-system-x86_64";

struct KindLine {
  std::string kind, mode;
  bool unavailable = false;
  uint64_t iterations = 0, cycles = 0, cycles_per_access = 0;
  std::optional<uint64_t> count, status;
};

// "exits: kind=K mode=M iterations=N cycles=C cycles_per_access=P [count=X] [status=S]" or
// "exits: kind=K mode=M unavailable reason=R". Anywhere in a line (QEMU's firmware leaves escape codes before).
std::vector<KindLine> parse_kind_lines(const std::string& out) {
  std::vector<KindLine> lines;
  std::istringstream stream(out);
  std::string line;
  while (std::getline(stream, line)) {
    size_t at = line.find("exits: kind=");
    if (at == std::string::npos) continue;
    std::istringstream words(line.substr(at + 7));
    std::map<std::string, std::string> fields;
    KindLine parsed;
    std::string word;
    while (words >> word) {
      size_t eq = word.find('=');
      if (eq == std::string::npos) {
        parsed.unavailable = parsed.unavailable || word == "unavailable";
      } else {
        fields[word.substr(0, eq)] = word.substr(eq + 1);
      }
    }
    parsed.kind = fields["kind"];
    parsed.mode = fields["mode"];
    if (!parsed.unavailable) {
      EXPECT_TRUE(fields.count("iterations") && fields.count("cycles") && fields.count("cycles_per_access")) << line;
      if (!fields.count("iterations") || !fields.count("cycles") || !fields.count("cycles_per_access")) continue;
      parsed.iterations = std::stoull(fields["iterations"]);
      parsed.cycles = std::stoull(fields["cycles"]);
      parsed.cycles_per_access = std::stoull(fields["cycles_per_access"]);
      if (fields.count("count")) parsed.count = std::stoull(fields["count"]);
      if (fields.count("status")) parsed.status = std::stoull(fields["status"]);
    }
    lines.push_back(parsed);
  }
  return lines;
}

const KindLine* find_line(const std::vector<KindLine>& lines, const std::string& kind, const std::string& mode) {
  for (const auto& line : lines) {
    if (line.kind == kind && line.mode == mode) return &line;
  }
  return nullptr;
}

bool done(const std::string& out) { return out.find("exits: done\n") != std::string::npos; }

// Every measured kind did at least one access; the per-access figure is the quotient of the two totals.
void expect_well_formed(const std::vector<KindLine>& lines) {
  for (const auto& line : lines) {
    EXPECT_TRUE(line.mode == "cpl3" || line.mode == "cpl0") << line.kind;
    if (line.unavailable) continue;
    EXPECT_GT(line.iterations, 0u) << line.kind << " " << line.mode;
    EXPECT_EQ(line.cycles_per_access, line.cycles / line.iterations) << line.kind << " " << line.mode;
  }
}

// The pci-testdev's counts: a no-eventfd test's count is the guest's iteration count (the device is selected again
// before the reported run, which resets it); the hypercall carrier's writes reach the same register.
void expect_testdev_counts(const std::vector<KindLine>& lines) {
  std::set<std::string> no_eventfd_seen;
  for (const auto& line : lines) {
    if (line.unavailable || !line.kind.starts_with("testdev_")) continue;
    if (line.kind.ends_with("_no-eventfd")) {
      ASSERT_TRUE(line.count.has_value()) << line.kind;
      EXPECT_EQ(*line.count, line.iterations) << line.kind << " " << line.mode;
      no_eventfd_seen.insert(line.kind);
    }
  }
  EXPECT_EQ(no_eventfd_seen, (std::set<std::string>{"testdev_mmio_no-eventfd", "testdev_pio_no-eventfd"}));
  for (const char* name : {"wildcard-eventfd", "datamatch-eventfd"}) {
    for (const char* space : {"mmio", "pio"}) {
      EXPECT_NE(find_line(lines, std::string("testdev_") + space + "_" + name, "cpl3"), nullptr) << space << name;
    }
  }
}

TEST(BenchExits, EveryKindReportsAPositiveIterationCount) {
  IOVMM_REQUIRE_KVM();
  auto result = run_vmm({"run", "--kernel", guest_path("bench-exits.elf"), "--append", kTinyGoal,
                         "--no-console-input"});
  ASSERT_FALSE(result.timed_out) << result.out << result.err;
  ASSERT_EQ(result.status, kDebugExitSuccess) << result.out << result.err;
  EXPECT_TRUE(done(result.out)) << result.out;
  const auto lines = parse_kind_lines(result.out);
  expect_well_formed(lines);
  for (const char* mode : {"cpl3", "cpl0"}) {
    for (const char* kind : {"empty", "cpuid", "pic_pio", "lapic_mmio", "vga_write"}) {
      const KindLine* line = find_line(lines, kind, mode);
      ASSERT_NE(line, nullptr) << kind << " " << mode << "\n" << result.out;
      EXPECT_FALSE(line->unavailable) << kind << " " << mode;
    }
    // Without the device and the hypercall port, those kinds say so instead of failing.
    const KindLine* hypercall = find_line(lines, "hypercall_testdev_mmio", mode);
    ASSERT_NE(hypercall, nullptr) << result.out;
  }
}

TEST(BenchExits, FixedIterationsKindsAndModesFilterTheRun) {
  IOVMM_REQUIRE_KVM();
  auto result = run_vmm({"run", "--kernel", guest_path("bench-exits.elf"), "--append",
                         "iterations=7 kinds=pic_pio,lapic_* modes=cpl3", "--no-console-input"});
  ASSERT_EQ(result.status, kDebugExitSuccess) << result.out << result.err;
  const auto lines = parse_kind_lines(result.out);
  ASSERT_EQ(lines.size(), 2u) << result.out;
  EXPECT_EQ(lines[0].kind, "pic_pio");
  EXPECT_EQ(lines[1].kind, "lapic_mmio");
  for (const auto& line : lines) {
    EXPECT_EQ(line.mode, "cpl3");
    EXPECT_EQ(line.iterations, 7u);
  }

  auto quiet = run_vmm({"run", "--kernel", guest_path("bench-exits.elf"), "--append", "iterations=3 quiet",
                        "--no-console-input"});
  ASSERT_EQ(quiet.status, kDebugExitSuccess) << quiet.out << quiet.err;
  EXPECT_TRUE(parse_kind_lines(quiet.out).empty()) << quiet.out;
  EXPECT_TRUE(done(quiet.out));
}

TEST(BenchExits, BadOptionFailsCleanly) {
  IOVMM_REQUIRE_KVM();
  auto result = run_vmm({"run", "--kernel", guest_path("bench-exits.elf"), "--append", "goal=lots",
                         "--no-console-input"});
  EXPECT_EQ(result.status, kDebugExitFail) << result.out << result.err;
  EXPECT_NE(result.out.find("exits: bad option \"goal=lots\""), std::string::npos) << result.out;
}

// Activates once iovmm has `--device pci-testdev`; until then iovmm refuses the option (status 2) and this skips.
TEST(BenchExits, PciTestdevSeesEveryWrite) {
  IOVMM_REQUIRE_KVM();
  auto result = run_vmm({"run", "--kernel", guest_path("bench-exits.elf"), "--append",
                         std::string(kTinyGoal) + " kinds=testdev_*,hypercall_*", "--device", "pci-testdev",
                         "--no-console-input"});
  if (result.status == kUsageError && result.err.find("pci-testdev") != std::string::npos) {
    GTEST_SKIP() << "iovmm has no pci-testdev yet: " << result.err;
  }
  ASSERT_EQ(result.status, kDebugExitSuccess) << result.out << result.err;
  EXPECT_NE(result.out.find("testdev=present"), std::string::npos) << result.out;
  const auto lines = parse_kind_lines(result.out);
  expect_well_formed(lines);
  expect_testdev_counts(lines);
  for (const char* mode : {"cpl3", "cpl0"}) {
    const KindLine* count_read = find_line(lines, "testdev_mmio_count_read", mode);
    ASSERT_NE(count_read, nullptr) << result.out;
    EXPECT_FALSE(count_read->unavailable);
    // With iovmm's hypercall port, the carrier's writes reach the no-eventfd register, each one counted.
    const KindLine* hypercall = find_line(lines, "hypercall_testdev_mmio", mode);
    ASSERT_NE(hypercall, nullptr) << result.out;
    if (!hypercall->unavailable) {
      EXPECT_EQ(hypercall->status, 0u) << mode;
      EXPECT_EQ(hypercall->count, hypercall->iterations) << mode;
    }
  }
}

// The reference: the same binary under QEMU's pci-testdev lists QEMU's three tests per BAR and counts the
// no-eventfd writes. Slow (SeaBIOS takes ~10 s here), so one run checks everything.
TEST(BenchExits, RunsUnmodifiedUnderQemuWithItsPciTestdev) {
  IOVMM_REQUIRE_KVM();
  if (::access(kQemu, X_OK) != 0) {
    const char* ci = std::getenv("CI");
    if (ci && std::strcmp(ci, "true") == 0) FAIL() << kQemu << " is missing (scripts/setup installs it)";
    GTEST_SKIP() << kQemu << " is missing";
  }
  auto result = run_program(kQemu,
                            {"-M", "pc", "-enable-kvm", "-cpu", "host,-arch-capabilities", "-m", "128", "-nodefaults",
                             "-nographic", "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
                             "-device", "pci-testdev", "-vga", "std", "-kernel", guest_path("bench-exits.elf"),
                             "-append", kTinyGoal},
                            240);
  ASSERT_FALSE(result.timed_out) << result.out << result.err;
  ASSERT_EQ(result.status, kDebugExitSuccess) << result.out << result.err;
  EXPECT_TRUE(done(result.out)) << result.out;
  const auto lines = parse_kind_lines(result.out);
  expect_well_formed(lines);
  expect_testdev_counts(lines);
  const KindLine* hypercall = find_line(lines, "hypercall_testdev_mmio", "cpl3");
  ASSERT_NE(hypercall, nullptr);
  EXPECT_TRUE(hypercall->unavailable);  // QEMU has no hypercall port
}

// `iovmm bench exits` end to end, tiny and without QEMU; skips while the subcommand is not wired into the CLI.
TEST(BenchExits, BenchCommandWritesJsonRows) {
  IOVMM_REQUIRE_KVM();
  auto help = run_vmm({"bench", "exits", "--help"});
  if (help.status != 0 || help.out.find("--count-iterations") == std::string::npos) {
    GTEST_SKIP() << "`iovmm bench exits` is not wired in: " << help.out << help.err;
  }
  const std::string json_path = temp_path("bench-exits.json");
  auto result = run_vmm({"bench", "exits", "--rounds", "1", "--goal", "4096", "--no-qemu", "--count-iterations",
                         "16", "--guest", guest_path("bench-exits.elf"), "--json", json_path},
                        240);
  ASSERT_EQ(result.status, 0) << result.out << result.err;
  std::ifstream file(json_path);
  const auto document = nlohmann::json::parse(file);
  ASSERT_TRUE(document.contains("raw_floor"));
  // One floor per access kind and mode; "cpl3"/"cpl0" keep naming the port-write floor. Each is measured or says
  // why not (a software KVM may refuse a variant): never missing, never both.
  const auto& floors = document.at("raw_floor");
  const std::map<std::string, std::pair<std::string, std::string>> variants = {
      {"cpl3", {"pio_write", "cpl3"}},           {"cpl0", {"pio_write", "cpl0"}},
      {"cpl3_pio_read", {"pio_read", "cpl3"}},   {"cpl0_pio_read", {"pio_read", "cpl0"}},
      {"cpl3_mmio_write", {"mmio_write", "cpl3"}}, {"cpl0_mmio_write", {"mmio_write", "cpl0"}},
      {"cpl3_mmio_read", {"mmio_read", "cpl3"}}, {"cpl0_mmio_read", {"mmio_read", "cpl0"}}};
  for (const auto& [variant, access_mode] : variants) {
    ASSERT_TRUE(floors.contains(variant)) << variant << " in " << floors.dump();
    const auto& floor = floors.at(variant);
    EXPECT_EQ(floor.at("access"), access_mode.first) << variant;
    EXPECT_EQ(floor.at("mode"), access_mode.second) << variant;
    if (floor.contains("unavailable")) {
      EXPECT_FALSE(floor.at("unavailable").get<std::string>().empty()) << variant;
      EXPECT_FALSE(floor.contains("cycles_median")) << variant;
      continue;
    }
    EXPECT_GT(floor.at("cycles_median").get<double>(), 0) << variant;
    for (const char* field : {"cycles_min", "cycles_max", "round_trips_per_batch", "batches", "exit_path_access",
                              "exit_path_ratio"}) {
      EXPECT_TRUE(floor.contains(field)) << field << " in " << variant;
    }
  }
  EXPECT_EQ(floors.size(), variants.size()) << floors.dump();
  for (const char* legacy : {"cpl3", "cpl0"}) {
    if (!floors.at(legacy).contains("unavailable")) {
      EXPECT_TRUE(floors.at(legacy).contains("exit_path_testdev_pio_ratio")) << legacy;
    }
  }

  std::set<std::string> accesses;
  for (const auto& row : document.at("rows")) {
    if (row.contains("unavailable")) continue;
    for (const char* field : {"access", "path", "vmm", "mode", "cycles_median", "cycles_min", "cycles_max",
                              "ns_median", "user_exits_per_access", "ratio_to_qemu", "ratio_to_floor",
                              "ratio_to_raw_floor", "raw_floor"}) {
      EXPECT_TRUE(row.contains(field)) << field << " in " << row.dump();
    }
    EXPECT_EQ(row.at("vmm"), "iovmm");
    const std::string access = row.at("access").get<std::string>();
    accesses.insert(access);
    // Only rows carried by a user-space exit are set against a raw floor, and each against its own access's; reads
    // stay on the exit path under `coalesced`.
    const std::string path = row.at("path").get<std::string>();
    const bool user_space = path == "exit" || path == "fastpath" || path == "hypercall" ||
                            path.starts_with("ioregionfd") ||
                            (path == "coalesced" && access == "testdev_mmio_count_read");
    if (!user_space) {
      EXPECT_TRUE(row.at("raw_floor").is_null()) << row.dump();
      EXPECT_TRUE(row.at("ratio_to_raw_floor").is_null()) << row.dump();
      continue;
    }
    const std::string mode = row.at("mode").get<std::string>();
    std::string expected = access == "testdev_mmio_count_read"   ? mode + "_mmio_read"
                           : access.starts_with("testdev_pio_")  ? mode
                           : access.starts_with("hypercall_")    ? mode  // an outb to the hypercall port
                                                                 : mode + "_mmio_write";
    EXPECT_EQ(row.at("raw_floor"), expected) << row.dump();
    EXPECT_EQ(row.at("ratio_to_raw_floor").is_null(), floors.at(expected).contains("unavailable")) << row.dump();
  }
  for (const char* kind : {"empty", "cpuid", "pic_pio", "lapic_mmio", "vga_write"}) {
    EXPECT_TRUE(accesses.count(kind)) << kind;
  }
}

}  // namespace
}  // namespace iovmm::test
