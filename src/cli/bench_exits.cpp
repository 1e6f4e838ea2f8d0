#include "cli/bench_exits.h"

#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <fmt/core.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string_view>
#include <vector>

#include "cli/bench_support.h"
#include "cli/raw_floor.h"
#include "common/error.h"
#include "common/output_file.h"

namespace iovmm::cli {
namespace {

// ---- the configurations: edit here when a dispatch option changes ------------------------------------------------

// One iovmm run of the bench guest: the dispatch path it exercises, the devices that select it, and the kinds of
// access (the guest's kinds= filter) that path applies to. Several entries may share a path.
struct IovmmConfiguration {
  std::string_view path;
  std::vector<std::string_view> devices;  // each becomes --device ARG
  std::string_view kinds;
};

const std::vector<IovmmConfiguration>& iovmm_configurations() {
  static const std::vector<IovmmConfiguration> table = {
      // KVM answers these itself (no device is needed): the in-kernel floor and the loop's own cost.
      {"in-kernel", {}, "empty,cpuid,pic_pio,lapic_mmio"},
      // The same VGA window, by exit and coalesced: the pair the field's coalesced-MMIO argument rests on.
      {"exit", {"vga-window"}, "vga_write"},
      {"exit", {"pci-testdev"}, "testdev_*"},
      {"coalesced", {"pci-testdev,dispatch=coalesced"}, "testdev_*"},
      {"coalesced", {"vga-window,dispatch=coalesced"}, "vga_write"},
      {"ioregionfd-thread", {"pci-testdev,dispatch=ioregionfd,server=thread"}, "testdev_*"},
      {"ioregionfd-process", {"pci-testdev,dispatch=ioregionfd,server=process"}, "testdev_*"},
      {"ioregionfd-posted", {"pci-testdev,dispatch=ioregionfd,server=thread,posted=on"}, "testdev_*"},
      {"ioregionfd-process-posted", {"pci-testdev,dispatch=ioregionfd,server=process,posted=on"}, "testdev_*"},
      {"fastpath", {"pci-testdev,dispatch.count=fastpath"}, "testdev_mmio_count_read"},
      {"hypercall", {"pci-testdev"}, "hypercall_testdev_mmio"},
  };
  return table;
}

std::vector<std::string> qemu_arguments(const std::string& guest, const std::string& append) {
  return {"-M", "pc", "-enable-kvm", "-cpu", "host,-arch-capabilities", "-m", "128", "-nodefaults", "-nographic",
          "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-device", "pci-testdev", "-vga",
          "std", "-kernel", guest, "-append", append};
}

constexpr int kIovmmTimeoutSeconds = 120;
constexpr int kQemuTimeoutSeconds = 180;
constexpr uint64_t kRawFloorRoundTrips = 2000;
constexpr int kRawFloorBatches = 5;

// The path a row belongs to, from the configuration that ran it and the kind. QEMU's rows are labelled with the
// path QEMU takes for that access; iovmm's pci-testdev, like QEMU's, registers an ioeventfd for its eventfd tests.
std::string path_label(std::string_view configuration_path, std::string_view kind) {
  if (kind == "empty") return "none";
  if (kind == "cpuid" || kind == "pic_pio" || kind == "lapic_mmio") return "in-kernel";
  const bool eventfd_test = kind.starts_with("testdev_") && kind.ends_with("-eventfd") &&
                            !kind.ends_with("no-eventfd");
  if (configuration_path == "exit" && eventfd_test) return "ioeventfd";
  return std::string(configuration_path);
}

std::string qemu_path_label(std::string_view kind) {
  return path_label(kind == "vga_write" ? "coalesced" : "exit", kind);
}

// The access a kind's exit is, as guests/bench-exits/main.c performs it: pci-testdev tests are writes in their BAR's
// space, the count read is an MMIO read, vga_write an MMIO write; the hypercall carrier is an `outb` to port 0x0FF0,
// whatever MMIO access it carries. Other kinds never leave the kernel.
std::optional<FloorAccess> exit_access(std::string_view kind) {
  if (kind == "testdev_mmio_count_read") return FloorAccess::mmio_read;
  if (kind.starts_with("hypercall_")) return FloorAccess::pio_write;
  if (kind.starts_with("testdev_pio_")) return FloorAccess::pio_write;
  if (kind.starts_with("testdev_mmio_") || kind == "vga_write") return FloorAccess::mmio_write;
  return std::nullopt;
}

// Rows whose every access is a user-space exit, so that a raw KVM_RUN floor bounds what they cost: the exit-based
// paths (ioregionfd among them on this KVM: without the in-kernel ioregionfd its proxy forwards each exit to the
// device server), and reads under `coalesced`, which binds only latch writes and leaves reads on the exit path.
bool user_space_row(std::string_view path, std::string_view kind) {
  if (path == "exit" || path == "fastpath" || path == "hypercall" || path.starts_with("ioregionfd")) return true;
  const auto access = exit_access(kind);
  return path == "coalesced" && (access == FloorAccess::mmio_read || access == FloorAccess::pio_read);
}

// The exit-path row each floor is set against under the floor table: the plainest device access of that kind.
std::optional<std::string_view> exit_path_reference(FloorAccess access) {
  switch (access) {
    case FloorAccess::pio_write: return "testdev_pio_no-eventfd";
    case FloorAccess::mmio_write: return "testdev_mmio_no-eventfd";
    case FloorAccess::mmio_read: return "testdev_mmio_count_read";
    case FloorAccess::pio_read: return std::nullopt;  // no row reads a port through user space
  }
  return std::nullopt;
}

// ---- what the guest prints -----------------------------------------------------------------------------------------

struct GuestResult {
  std::string kind;
  std::string mode;
  std::optional<std::string> unavailable;
  uint64_t iterations = 0;
  uint64_t cycles = 0;
  std::optional<uint64_t> count;
};

struct GuestOutput {
  std::vector<GuestResult> results;
  bool done = false;
};

// Lines "exits: kind=K mode=M iterations=N cycles=C cycles_per_access=P [count=X] ..." or "... unavailable
// reason=R". The marker is searched anywhere in a line: QEMU's firmware leaves escape codes before the first one.
GuestOutput parse_guest_output(const std::string& text) {
  GuestOutput output;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find("exits: done") != std::string::npos) output.done = true;
    const size_t at = line.find("exits: kind=");
    if (at == std::string::npos) continue;
    std::istringstream words(line.substr(at + 7));
    std::map<std::string, std::string> fields;
    bool unavailable = false;
    std::string word;
    while (words >> word) {
      const size_t eq = word.find('=');
      if (eq == std::string::npos) {
        unavailable = unavailable || word == "unavailable";
      } else {
        fields[word.substr(0, eq)] = word.substr(eq + 1);
      }
    }
    GuestResult result;
    result.kind = fields["kind"];
    result.mode = fields["mode"];
    if (unavailable) {
      result.unavailable = fields.count("reason") ? fields["reason"] : "unavailable";
    } else {
      try {
        result.iterations = std::stoull(fields.at("iterations"));
        result.cycles = std::stoull(fields.at("cycles"));
        if (fields.count("count")) result.count = std::stoull(fields["count"]);
      } catch (const std::exception&) {
        continue;  // a garbled line (serial noise) is not a measurement
      }
    }
    output.results.push_back(result);
  }
  return output;
}

// ---- measurements ----------------------------------------------------------------------------------------------------

struct RowKey {
  std::string kind, path, vmm, mode;
  auto operator<=>(const RowKey&) const = default;
};

struct RowData {
  std::vector<double> cycles_per_access;  // one per round
  std::optional<double> user_exits_per_access;
  std::optional<uint64_t> last_count;      // the testdev's count after the last round's loop
  uint64_t last_iterations = 0;
};


struct Unavailable {
  std::string path;
  std::string vmm;
  std::string what;     // the kinds (the guest's kinds= filter), or the QEMU binary
  std::string message;
};

struct RowFigures;

class Bench {
 public:
  Bench(const BenchExitsOptions& options, std::string iovmm, std::string guest)
      : options_(options), iovmm_(std::move(iovmm)), guest_(std::move(guest)) {}

  int run();

 private:
  std::string append(std::string_view kinds, std::string_view extra) const;
  ProcessResult run_iovmm(const IovmmConfiguration& configuration, const std::string& append,
                          const std::string& stats_json = {}) const;
  void run_iovmm_round(size_t index, int round);
  void run_qemu_round(int round);
  void record(const std::string& vmm, std::string_view configuration_path, const GuestOutput& output);
  void count_iovmm_exits();
  void count_qemu_exits();
  std::optional<uint64_t> iovmm_user_exits(const IovmmConfiguration& configuration, const std::string& append);
  void print_table() const;
  [[nodiscard]] std::optional<std::string> write_json() const;  // the error line when the file cannot be written
  [[nodiscard]] std::optional<double> median_of(const RowKey& key) const;
  [[nodiscard]] RowFigures row_figures(const RowKey& key) const;
  [[nodiscard]] std::vector<std::string> modes() const;

  const BenchExitsOptions& options_;
  std::string iovmm_;
  std::string guest_;
  std::optional<uint64_t> tsc_khz_;
  std::vector<RawFloorResult> raw_floor_;
  std::unique_ptr<OutputFile> json_file_;  // --json, opened before the first round
  std::map<RowKey, RowData> rows_;
  std::vector<RowKey> row_order_;               // first-seen order: guest kind order, configuration order
  std::vector<std::optional<std::string>> configuration_failed_;  // per configuration: why it could not run
  std::vector<std::vector<std::string>> configuration_kinds_;     // per configuration: kinds it measured
  std::vector<std::string> qemu_kinds_;
  std::optional<std::string> qemu_failed_;
  std::vector<Unavailable> unavailable_;
};

std::vector<std::string> Bench::modes() const {
  std::vector<std::string> out;
  std::istringstream words(options_.modes);
  std::string mode;
  while (std::getline(words, mode, ',')) out.push_back(mode);
  return out;
}

std::string Bench::append(std::string_view kinds, std::string_view extra) const {
  std::string text = fmt::format("goal={} modes={}", options_.goal, options_.modes);
  if (!kinds.empty()) text += fmt::format(" kinds={}", kinds);
  if (!extra.empty()) text += fmt::format(" {}", extra);
  return text;
}

ProcessResult Bench::run_iovmm(const IovmmConfiguration& configuration, const std::string& append,
                               const std::string& stats_json) const {
  std::vector<std::string> argv = {iovmm_, "run", "--kernel", guest_, "--append", append, "--no-console-input"};
  for (auto device : configuration.devices) {
    argv.push_back("--device");
    argv.emplace_back(device);
  }
  if (!stats_json.empty()) {
    argv.push_back("--stats-json");
    argv.push_back(stats_json);
  }
  return run_process(argv, kIovmmTimeoutSeconds);
}

void Bench::record(const std::string& vmm, std::string_view configuration_path, const GuestOutput& output) {
  for (const auto& result : output.results) {
    if (result.unavailable || result.iterations == 0) continue;
    const std::string path = vmm == "qemu" ? qemu_path_label(result.kind) : path_label(configuration_path, result.kind);
    RowKey key{result.kind, path, vmm, result.mode};
    auto [it, inserted] = rows_.try_emplace(key);
    if (inserted) row_order_.push_back(key);
    it->second.cycles_per_access.push_back(static_cast<double>(result.cycles) / static_cast<double>(result.iterations));
    it->second.last_count = result.count;
    it->second.last_iterations = result.iterations;
  }
}

void Bench::run_iovmm_round(size_t index, int round) {
  const auto& configuration = iovmm_configurations()[index];
  if (configuration_failed_[index]) return;  // it will not start now either
  const ProcessResult result = run_iovmm(configuration, append(configuration.kinds, ""));
  const GuestOutput output = parse_guest_output(result.out);
  if (result.status != kGuestSuccessStatus || !output.done) {
    const std::string message = result.timed_out ? "timed out"
                                : result.status == kUsageStatus
                                    ? last_line(result.err)
                                    : fmt::format("exit status {}: {}", result.status, last_line(result.err));
    configuration_failed_[index] = message;
    unavailable_.push_back({std::string(configuration.path), "iovmm", std::string(configuration.kinds), message});
    fmt::print(stderr, "  iovmm {:<18} unavailable: {}\n", configuration.path, message);
    return;
  }
  record("iovmm", configuration.path, output);
  if (round == 0) {
    for (const auto& r : output.results) {
      if (!r.unavailable && std::find(configuration_kinds_[index].begin(), configuration_kinds_[index].end(),
                                      r.kind) == configuration_kinds_[index].end()) {
        configuration_kinds_[index].push_back(r.kind);
      }
    }
  }
}

void Bench::run_qemu_round(int round) {
  if (options_.no_qemu || qemu_failed_) return;
  std::vector<std::string> argv = {options_.qemu};
  for (auto& arg : qemu_arguments(guest_, append("", ""))) argv.push_back(arg);
  const auto start = std::chrono::steady_clock::now();
  const ProcessResult result = run_process(argv, kQemuTimeoutSeconds);
  const GuestOutput output = parse_guest_output(result.out);
  if (result.status != kGuestSuccessStatus || !output.done) {
    qemu_failed_ = result.timed_out ? "timed out"
                                    : fmt::format("exit status {}: {}", result.status, last_line(result.err));
    unavailable_.push_back({"*", "qemu", options_.qemu, *qemu_failed_});
    fmt::print(stderr, "  qemu unavailable: {}\n", *qemu_failed_);
    return;
  }
  record("qemu", "", output);
  if (round == 0) {
    for (const auto& r : output.results) {
      if (!r.unavailable) qemu_kinds_.push_back(r.kind);
    }
  }
  fmt::print(stderr, "  qemu done in {:.1f} s\n",
             std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

// ---- user-space exits per access ---------------------------------------------------------------------------------

// The user-space exits of one quiet run, from its --stats-json (the sum over exit reasons).
std::optional<uint64_t> Bench::iovmm_user_exits(const IovmmConfiguration& configuration, const std::string& append) {
  const std::string stats_path =
      (std::filesystem::temp_directory_path() / fmt::format("iovmm-bench-exits-{}.json", ::getpid())).string();
  const ProcessResult result = run_iovmm(configuration, append, stats_path);
  std::optional<uint64_t> exits;
  try {
    std::ifstream file(stats_path);
    const auto stats = nlohmann::json::parse(file);
    uint64_t total = 0;
    for (const auto& [reason, count] : stats.at("user_exits").items()) total += count.get<uint64_t>();
    if (result.status == kGuestSuccessStatus) exits = total;
  } catch (const std::exception&) {
  }
  std::filesystem::remove(stats_path);
  if (!exits) {
    // The row keeps its timings and shows n/a for exits; say why, since a crash at shutdown is a bug to chase.
    fmt::print(stderr, "  count run failed: {} --append \"{}\": exit status {}: {}\n", configuration.path, append,
               result.status, last_line(result.err));
  } else if (options_.stats) {
    fmt::print(stderr, "  count run: {} --append \"{}\": {} user exits\n", configuration.path, append, *exits);
  }
  return exits;
}

// Why two runs per kind: a run's exits include booting and printing, which dwarf the loop at small counts. The same
// run with iterations=0 and no per-kind output makes exactly the same exits but the loop's, so the difference is
// the loop's alone, whatever path carried it.
void Bench::count_iovmm_exits() {
  const auto& configurations = iovmm_configurations();
  const uint64_t n = options_.count_iterations;
  for (size_t index = 0; index < configurations.size(); ++index) {
    if (configuration_failed_[index]) continue;
    for (const auto& kind : configuration_kinds_[index]) {
      const auto baseline = iovmm_user_exits(configurations[index],
                                             fmt::format("kinds={} modes=cpl3 iterations=0 quiet", kind));
      for (const auto& mode : modes()) {
        const auto counted = iovmm_user_exits(configurations[index],
                                              fmt::format("kinds={} modes={} iterations={} quiet", kind, mode, n));
        if (!baseline || !counted) continue;
        const RowKey key{kind, path_label(configurations[index].path, kind), "iovmm", mode};
        if (auto it = rows_.find(key); it != rows_.end()) {
          it->second.user_exits_per_access =
              (static_cast<double>(*counted) - static_cast<double>(*baseline)) / static_cast<double>(n);
        }
      }
    }
  }
}

// QEMU keeps no exit statistics of its own: perf records KVM's kvm_userspace_exit tracepoint for the QEMU
// process, and the guest's port-0x80 markers cut the trace into one segment per timed loop (trace_qemu).
void Bench::count_qemu_exits() {
  if (options_.no_qemu || qemu_failed_) return;
  const uint64_t n = options_.count_iterations;
  std::vector<std::string> argv = {options_.qemu};
  for (auto& arg : qemu_arguments(guest_, append("", fmt::format("iterations={} markers", n)))) argv.push_back(arg);
  const QemuTrace trace = trace_qemu(argv, kQemuTimeoutSeconds, false);
  const GuestOutput output = parse_guest_output(trace.run.out);
  if (trace.error || !output.done) {
    fmt::print(stderr, "  qemu exit count unavailable ({})\n", trace.error.value_or("the guest did not finish"));
    return;
  }
  std::vector<uint64_t> segments;
  for (const auto& segment : trace.segments) segments.push_back(segment.user_exits);
  std::vector<const GuestResult*> measured;
  for (const auto& r : output.results) {
    if (!r.unavailable && r.iterations > 0) measured.push_back(&r);
  }
  if (segments.size() != measured.size()) {
    fmt::print(stderr, "  qemu exit count unavailable: {} traced loops for {} measured kinds\n", segments.size(),
               measured.size());
    return;
  }
  for (size_t i = 0; i < measured.size(); ++i) {
    const RowKey key{measured[i]->kind, qemu_path_label(measured[i]->kind), "qemu", measured[i]->mode};
    const double loop_exits = static_cast<double>(segments[i]);  // the begin marker's own exit already excluded
    if (auto it = rows_.find(key); it != rows_.end()) it->second.user_exits_per_access = loop_exits / n;
    if (options_.stats) fmt::print(stderr, "  qemu count {} {}: {} exits traced\n", key.kind, key.mode, segments[i]);
  }
}

// ---- report --------------------------------------------------------------------------------------------------------

std::optional<double> Bench::median_of(const RowKey& key) const {
  auto it = rows_.find(key);
  if (it == rows_.end() || it->second.cycles_per_access.empty()) return std::nullopt;
  return median(it->second.cycles_per_access);
}

std::string format_ratio(std::optional<double> ratio) { return ratio ? fmt::format("{:.2f}", *ratio) : "-"; }

struct RowFigures {
  double cycles_median = 0, cycles_min = 0, cycles_max = 0;
  std::optional<double> ns_median, ratio_to_qemu, ratio_to_floor;
  std::optional<double> ratio_to_raw_floor;  // user-space rows: / the raw floor of the same access and mode
  std::optional<std::string> raw_floor;      // that floor's variant name, when the row has one
};

// The raw floor a row is set against: user-space rows only, by the access their exit is and their mode. Also a
// floor that could not be measured, so that the row can say which one it would have been.
const RawFloorResult* raw_floor_of(const RowKey& key, const std::vector<RawFloorResult>& floors) {
  const auto access = exit_access(key.kind);
  if (!access || !user_space_row(key.path, key.kind)) return nullptr;
  return find_raw_floor(floors, *access, key.mode);
}

RowFigures figures(const RowKey& key, const RowData& data, std::optional<uint64_t> tsc_khz,
                   std::optional<double> qemu_median, std::optional<double> floor_median,
                   const RawFloorResult* raw_floor) {
  RowFigures f;
  f.cycles_median = median(data.cycles_per_access);
  f.cycles_min = *std::min_element(data.cycles_per_access.begin(), data.cycles_per_access.end());
  f.cycles_max = *std::max_element(data.cycles_per_access.begin(), data.cycles_per_access.end());
  if (tsc_khz) f.ns_median = f.cycles_median * 1e6 / static_cast<double>(*tsc_khz);
  if (qemu_median && *qemu_median > 0) f.ratio_to_qemu = f.cycles_median / *qemu_median;
  if (floor_median && *floor_median > 0 && key.kind != "empty") f.ratio_to_floor = f.cycles_median / *floor_median;
  if (raw_floor) {
    f.raw_floor = raw_floor->variant();
    if (!raw_floor->error && raw_floor->median() > 0) f.ratio_to_raw_floor = f.cycles_median / raw_floor->median();
  }
  return f;
}

// Rows grouped by mode, then kind (in the guest's order), then iovmm's paths, then QEMU.
std::vector<RowKey> ordered_rows(const std::vector<RowKey>& first_seen, const std::vector<std::string>& modes) {
  std::vector<std::string> kinds;
  for (const auto& key : first_seen) {
    if (std::find(kinds.begin(), kinds.end(), key.kind) == kinds.end()) kinds.push_back(key.kind);
  }
  std::vector<RowKey> ordered;
  for (const auto& mode : modes) {
    for (const auto& kind : kinds) {
      for (const char* vmm : {"iovmm", "qemu"}) {
        for (const auto& key : first_seen) {
          if (key.mode == mode && key.kind == kind && key.vmm == vmm) ordered.push_back(key);
        }
      }
    }
  }
  return ordered;
}

RowFigures Bench::row_figures(const RowKey& key) const {
  return figures(key, rows_.at(key), tsc_khz_, median_of({key.kind, qemu_path_label(key.kind), "qemu", key.mode}),
                 median_of({"pic_pio", "in-kernel", key.vmm, key.mode}), raw_floor_of(key, raw_floor_));
}

void Bench::print_table() const {
  fmt::print("\n{:<32} {:<18} {:<6} {:<5} {:>30} {:>10} {:>10} {:>7} {:>7} {:>7}\n", "access", "path", "VMM", "mode",
             "cycles/access median (min-max)", "ns", "exits/acc", "x QEMU", "x floor", "x raw");
  for (const auto& key : ordered_rows(row_order_, modes())) {
    const RowData& data = rows_.at(key);
    const RowFigures f = row_figures(key);
    fmt::print("{:<32} {:<18} {:<6} {:<5} {:>30} {:>10} {:>10} {:>7} {:>7} {:>7}\n", key.kind, key.path, key.vmm,
               key.mode, fmt::format("{:.0f} ({:.0f}-{:.0f})", f.cycles_median, f.cycles_min, f.cycles_max),
               f.ns_median ? fmt::format("{:.0f}", *f.ns_median) : "n/a",
               data.user_exits_per_access ? fmt::format("{:.3f}", *data.user_exits_per_access) : "n/a",
               key.vmm == "qemu" ? "-" : format_ratio(f.ratio_to_qemu), format_ratio(f.ratio_to_floor),
               format_ratio(f.ratio_to_raw_floor));
  }
  for (const auto& u : unavailable_) {
    fmt::print("{:<32} {:<18} {:<6} unavailable: {}\n", u.what, u.path, u.vmm, u.message);
  }

  fmt::print("\nraw KVM_RUN floors (one access in a loop, each exit answered by KVM_RUN alone, no bus lookup; "
             "`x raw` above is a user-space row / the floor of its own access and mode):\n");
  for (const auto& floor : raw_floor_) {
    const std::string label = fmt::format("{:<16} {:<10}", floor.variant(), floor_access_name(floor.access));
    if (floor.error) {
      fmt::print("  {} unavailable: {}\n", label, *floor.error);
      continue;
    }
    const auto reference = exit_path_reference(floor.access);
    const auto exit_row = reference ? median_of({std::string(*reference), "exit", "iovmm", floor.mode}) : std::nullopt;
    fmt::print("  {} {:.0f} cycles per round trip ({:.0f}-{:.0f}){}\n", label, floor.median(), floor.min(),
               floor.max(),
               exit_row ? fmt::format("; iovmm exit path, {}: {:.0f} cycles = {:.3f}x the floor", *reference,
                                      *exit_row, *exit_row / floor.median())
                        : "");
    if (options_.stats) {
      for (double batch : floor.cycles_per_round_trip) {
        fmt::print("    batch of {}: {:.0f} cycles per round trip\n", floor.round_trips_per_batch, batch);
      }
    }
  }
  fmt::print("TSC: {}; {} rounds, goal {} cycles (CPL0: goal/8)\n",
             tsc_khz_ ? fmt::format("{} kHz (KVM_GET_TSC_KHZ)", *tsc_khz_) : "unknown (ns: n/a)", options_.rounds,
             options_.goal);
}

nlohmann::json optional_number(std::optional<double> value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

std::optional<std::string> Bench::write_json() const {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& key : ordered_rows(row_order_, modes())) {
    const RowData& data = rows_.at(key);
    const RowFigures f = row_figures(key);
    rows.push_back({{"access", key.kind},
                    {"path", key.path},
                    {"vmm", key.vmm},
                    {"mode", key.mode},
                    {"cycles_median", f.cycles_median},
                    {"cycles_min", f.cycles_min},
                    {"cycles_max", f.cycles_max},
                    {"ns_median", optional_number(f.ns_median)},
                    {"user_exits_per_access", optional_number(data.user_exits_per_access)},
                    {"ratio_to_qemu", key.vmm == "qemu" ? nlohmann::json(nullptr) : optional_number(f.ratio_to_qemu)},
                    {"ratio_to_floor", optional_number(f.ratio_to_floor)},
                    {"ratio_to_raw_floor", optional_number(f.ratio_to_raw_floor)},
                    {"raw_floor", f.raw_floor ? nlohmann::json(*f.raw_floor) : nullptr},
                    {"samples", data.cycles_per_access},
                    {"device_count_last_round", data.last_count ? nlohmann::json(*data.last_count) : nullptr},
                    {"iterations_last_round", data.last_iterations}});
  }
  for (const auto& u : unavailable_) {
    rows.push_back({{"access", u.what}, {"path", u.path}, {"vmm", u.vmm}, {"unavailable", u.message}});
  }
  // Keyed by variant: "cpl3" and "cpl0" stay the port-write floor, as when it was the only one.
  nlohmann::json floor = nlohmann::json::object();
  for (const auto& f : raw_floor_) {
    if (f.error) {
      floor[f.variant()] = {{"access", floor_access_name(f.access)}, {"mode", f.mode}, {"unavailable", *f.error}};
      continue;
    }
    const auto reference = exit_path_reference(f.access);
    const auto exit_row = reference ? median_of({std::string(*reference), "exit", "iovmm", f.mode}) : std::nullopt;
    const nlohmann::json exit_ratio = exit_row ? nlohmann::json(*exit_row / f.median()) : nullptr;
    nlohmann::json entry = {{"access", floor_access_name(f.access)},
                            {"mode", f.mode},
                            {"cycles_median", f.median()},
                            {"cycles_min", f.min()},
                            {"cycles_max", f.max()},
                            {"round_trips_per_batch", f.round_trips_per_batch},
                            {"batches", f.cycles_per_round_trip},
                            {"exit_path_access", reference ? nlohmann::json(*reference) : nullptr},
                            {"exit_path_ratio", exit_ratio}};
    if (f.access == FloorAccess::pio_write) entry["exit_path_testdev_pio_ratio"] = exit_ratio;
    floor[f.variant()] = entry;
  }
  const nlohmann::json document = {{"benchmark", "exits"},
                                   {"rounds", options_.rounds},
                                   {"goal_cycles", options_.goal},
                                   {"modes", modes()},
                                   {"tsc_khz", tsc_khz_ ? nlohmann::json(*tsc_khz_) : nullptr},
                                   {"guest", guest_},
                                   {"qemu", options_.no_qemu ? nlohmann::json(nullptr) : nlohmann::json(options_.qemu)},
                                   {"rows", rows},
                                   {"raw_floor", floor}};
  return json_file_->replace_contents(document.dump(2) + "\n");
}

int Bench::run() {
  // Before anything runs: results that cannot be written are not worth minutes of measuring (throws UsageError).
  if (!options_.json_path.empty()) json_file_ = std::make_unique<OutputFile>(options_.json_path, "--json");
  const auto& configurations = iovmm_configurations();
  configuration_failed_.assign(configurations.size(), std::nullopt);
  configuration_kinds_.assign(configurations.size(), {});
  tsc_khz_ = kvm_tsc_khz();
  fmt::print(stderr, "raw KVM_RUN floors...\n");
  raw_floor_ = measure_raw_floor(kRawFloorRoundTrips, kRawFloorBatches);

  for (int round = 0; round < options_.rounds; ++round) {
    fmt::print(stderr, "round {}/{}\n", round + 1, options_.rounds);
    // Alternate which VMM goes first, so that neither always runs on a machine the other has just warmed.
    if (round % 2 == 1) run_qemu_round(round);
    for (size_t index = 0; index < configurations.size(); ++index) run_iovmm_round(index, round);
    if (round % 2 == 0) run_qemu_round(round);
  }
  if (options_.count_exits) {
    fmt::print(stderr, "counting user-space exits...\n");
    count_iovmm_exits();
    count_qemu_exits();
  }
  print_table();
  if (json_file_) {
    json_file_->keep();
    if (auto failure = write_json()) {
      fmt::print(stderr, "iovmm: bench exits: {}\n", *failure);
      return 4;
    }
  }
  return 0;
}

std::string default_guest() {
  std::error_code error;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return "guests/bench-exits.elf";
  return (self.parent_path() / "guests" / "bench-exits.elf").string();
}

}  // namespace

CLI::App* add_bench_exits_subcommand(CLI::App& parent, BenchExitsOptions& options) {
  CLI::App* exits = parent.add_subcommand(
      "exits", "Cycles per guest access for each access kind and dispatch path, side by side with QEMU");
  exits->add_option("--rounds", options.rounds, "Rounds (each runs every configuration and QEMU once)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  exits->add_option("--goal", options.goal, "Cycles each CPL3 loop must last (CPL0: goal/8)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40))
      ->capture_default_str();
  exits->add_option("--json", options.json_path, "Write the rows and the raw floors as JSON to FILE");
  exits->add_option("--qemu", options.qemu, "QEMU binary")->capture_default_str();
  exits->add_flag("--no-qemu", options.no_qemu, "Do not run QEMU");
  exits->add_option("--iovmm", options.iovmm, "The iovmm binary to benchmark (default: this one)");
  exits->add_option("--guest", options.guest, "The bench guest (default: guests/bench-exits.elf next to iovmm)");
  exits->add_option("--modes", options.modes, "Modes to measure, in order: cpl3, cpl0 or both")
      ->check(CLI::IsMember({"cpl3", "cpl0", "cpl3,cpl0", "cpl0,cpl3"}))
      ->capture_default_str();
  exits->add_flag("--stats", options.stats, "Also print the raw floors' batches and every exit-counting run");
  exits->add_flag("--no-exit-counts", [&options](int64_t) { options.count_exits = false; },
                  "Skip the runs that count user-space exits per access");
  exits->add_option("--count-iterations", options.count_iterations, "Accesses per exit-counting run")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 24))
      ->capture_default_str();
  return exits;
}

int run_bench_exits(const BenchExitsOptions& options) {
  std::error_code error;
  const std::filesystem::path iovmm =
      options.iovmm.empty() ? std::filesystem::read_symlink("/proc/self/exe", error)
                            : std::filesystem::path(options.iovmm);
  if (error) {
    fmt::print(stderr, "iovmm: bench exits: cannot find the iovmm binary: {}\n", error.message());
    return kUsageStatus;
  }
  const std::string guest = options.guest.empty() ? default_guest() : options.guest;
  if (!std::filesystem::is_regular_file(guest)) {
    fmt::print(stderr, "iovmm: bench exits: guest {} not found (build target guest-bench-exits, or pass --guest)\n",
               guest);
    return kUsageStatus;
  }
  if (::access("/dev/kvm", R_OK | W_OK) != 0) {
    fmt::print(stderr, "iovmm: bench exits: /dev/kvm is not usable\n");
    return kUsageStatus;
  }
  Bench bench(options, iovmm.string(), std::filesystem::absolute(guest).string());
  try {
    return bench.run();
  } catch (const UsageError& e) {
    fmt::print(stderr, "iovmm: bench exits: {}\n", e.what());
    return kUsageStatus;
  }
}

}  // namespace iovmm::cli
