#include "cli/bench_io.h"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/bench_support.h"
#include "common/error.h"
#include "common/output_file.h"
#include "cli/raw_floor.h"

namespace iovmm::cli {
namespace {

constexpr int kIovmmTimeoutSeconds = 300;
constexpr int kQemuTimeoutSeconds = 600;

class IoBench {
 public:
  IoBench(const IoBenchSpec& spec, std::vector<IoBenchConfiguration> configurations)
      : spec_(spec), configurations_(std::move(configurations)), result_marker_(spec.name + ": result ") {}

  void run_round(int round);
  void count_qemu_exits();
  // The error line when the results cannot be written, else nullopt.
  [[nodiscard]] std::optional<std::string> report(const IoBenchRun& run, const IoBenchOptions& options) const;

 private:
  void run_configuration(IoBenchConfiguration& configuration);
  void count_qemu_exits(const IoBenchConfiguration& configuration);
  void say(const IoBenchConfiguration& c, const std::string& what) const {
    fmt::print(stderr, "  {} {} {}: {}\n", c.vmm, c.group1, c.group2, what);
  }

  const IoBenchSpec& spec_;
  std::vector<IoBenchConfiguration> configurations_;
  std::string result_marker_;
  BenchTable table_{kvm_tsc_khz()};
};

void IoBench::run_round(int round) {
  // Alternate the order, so that no VMM always runs on a machine another has just warmed.
  if (round % 2 == 0) {
    for (auto& configuration : configurations_) run_configuration(configuration);
  } else {
    for (auto it = configurations_.rbegin(); it != configurations_.rend(); ++it) run_configuration(*it);
  }
}

void IoBench::run_configuration(IoBenchConfiguration& configuration) {
  if (configuration.failed) return;
  std::vector<std::string> argv = configuration.argv;
  std::string stats;
  if (configuration.vmm == "iovmm") {
    stats = temp_file("iovmm-bench-" + spec_.name, "json");
    argv.insert(argv.begin() + 2, {"--stats-json", stats});
  }
  const ProcessResult result =
      run_process(argv, configuration.vmm == "iovmm" ? kIovmmTimeoutSeconds : kQemuTimeoutSeconds);
  const auto results = guest_lines(result.out, result_marker_);
  if (result.status != kGuestSuccessStatus || !has_line(result.out, spec_.name + ": done")) {
    configuration.failed = result.status == kUsageStatus ? last_line(result.err) : describe_failure(result);
    say(configuration, "unavailable: " + *configuration.failed);
    if (!stats.empty()) std::filesystem::remove(stats);
    return;
  }
  std::vector<IovmmSegment> segments;
  if (!stats.empty()) {
    try {
      std::ifstream file(stats);
      segments = iovmm_segments(nlohmann::json::parse(file), spec_.iovmm_device);
    } catch (const std::exception& e) {
      say(configuration, fmt::format("no exit counts: {}", e.what()));
    }
    std::filesystem::remove(stats);
  }
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& fields = results[i];
    try {
      const double requests = std::stod(fields.at("requests"));
      auto& row = table_.row(spec_.row_key(configuration, fields));
      row.fields = spec_.row_fields(fields);
      row.add_sample(requests, std::stod(fields.at("bytes")), std::stod(fields.at("cycles")));
      if (i < segments.size() && requests > 0) {
        row.user_exits_per_request = static_cast<double>(segments[i].user_exits) / requests;
        row.exits_by_register.clear();
        for (const auto& [name, exits] : segments[i].exits_by_register) {
          row.exits_by_register[name] = static_cast<double>(exits) / requests;
        }
      }
    } catch (const std::exception&) {
      continue;  // a garbled line is not a measurement
    }
  }
  say(configuration, "done");
}

// QEMU keeps no exit counts: one extra run under perf, cut at the guest's markers.
void IoBench::count_qemu_exits(const IoBenchConfiguration& configuration) {
  QemuTrace trace = trace_qemu(configuration.argv, kQemuTimeoutSeconds, static_cast<bool>(spec_.qemu_port_name));
  if (trace.error) {
    say(configuration, "exit counts unavailable: " + *trace.error);
    return;
  }
  const auto results = guest_lines(trace.run.out, result_marker_);
  for (size_t i = 0; i < trace.segments.size() && i < results.size(); ++i) {
    try {
      const double requests = std::stod(results[i].at("requests"));
      auto& row = table_.row(spec_.row_key(configuration, results[i]));
      row.user_exits_per_request = static_cast<double>(trace.segments[i].user_exits) / requests;
      if (spec_.qemu_port_name) {
        row.exits_by_register.clear();
        for (const auto& [port, exits] : trace.segments[i].pio_exits_by_port) {
          row.exits_by_register[spec_.qemu_port_name(port)] += static_cast<double>(exits) / requests;
        }
      }
    } catch (const std::exception&) {
      continue;
    }
  }
}

void IoBench::count_qemu_exits() {
  for (const auto& configuration : configurations_) {
    if (configuration.vmm == "qemu" && !configuration.failed) count_qemu_exits(configuration);
  }
}

std::optional<std::string> IoBench::report(const IoBenchRun& run, const IoBenchOptions& options) const {
  table_.print(run.title, spec_.group_names);
  nlohmann::json unavailable = nlohmann::json::array();
  for (const auto& c : configurations_) {
    if (!c.failed) continue;
    fmt::print("{} {} {}: unavailable: {}\n", c.vmm, c.group1, c.group2, *c.failed);
    unavailable.push_back({{"vmm", c.vmm}, {spec_.group_names[0], c.group1}, {spec_.group_names[1], c.group2},
                           {"why", *c.failed}});
  }
  if (options.json_path.empty()) return std::nullopt;
  nlohmann::json document = run.json_header;
  document["benchmark"] = spec_.name;
  document["rounds"] = options.rounds;
  document["requests_per_row"] = options.requests;
  document["image_mib"] = options.image_mib;
  document["unavailable"] = unavailable;
  return table_.write_json(options.json_path, document, spec_.group_names);
}

}  // namespace

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> items;
  std::istringstream words(list);
  std::string item;
  while (std::getline(words, item, ',')) {
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

namespace {
// `mib` MiB of non-zero data (reads must copy real pages, not a sparse file's holes) in a new file in `dir`.
std::optional<std::string> make_bench_image(const std::string& dir, const std::string& name, uint64_t mib) {
  const std::string path = (std::filesystem::path(dir) / fmt::format("iovmm-bench-{}-{}.img", name, ::getpid())).string();
  std::ofstream file(path, std::ios::binary);
  std::vector<char> chunk(1 << 20);
  for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<char>(i * 31 + 7);
  for (uint64_t n = 0; n < mib && file; ++n) file.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
  if (!file) {
    std::filesystem::remove(path);
    return std::nullopt;
  }
  return path;
}
}  // namespace

void add_io_bench_options(CLI::App& command, IoBenchOptions& options) {
  command.add_option("--rounds", options.rounds, "Rounds (each runs every configuration once)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  command.add_option("--json", options.json_path, "Write the rows as JSON to FILE (created before the benchmark runs)")
      ->check([](const std::string& path) { return path.empty() ? std::string("the path is empty") : std::string(); });
  command.add_option("--qemu", options.qemu, "QEMU binary")->capture_default_str();
  command.add_flag("--no-qemu", options.no_qemu, "Do not run QEMU");
  command.add_option("--iovmm", options.iovmm, "The iovmm binary to benchmark (default: this one)");
  command.add_option("--guest", options.guest, "The guest (default: next to iovmm, in guests/)");
  command.add_option("--image-dir", options.image_dir, "Where the image is made (tmpfs)")->capture_default_str();
  command.add_option("--image-mib", options.image_mib, "Image size in MiB")
      ->check(CLI::Range(uint64_t{8}, uint64_t{1} << 16))
      ->capture_default_str();
  command.add_option("--requests", options.requests, "Requests per row and round")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 24))
      ->capture_default_str();
  command.add_option("--block-sizes", options.block_sizes, "Request sizes in bytes")->capture_default_str();
  command.add_flag("--no-exit-counts", [&options](int64_t) { options.count_qemu_exits = false; },
                   "Skip the perf run that counts QEMU's user-space exits");
}

std::optional<IoBenchSetup> prepare_io_bench(const std::string& bench, const IoBenchOptions& options,
                                             const std::string& guest_name) {
  IoBenchSetup setup;
  // Before anything runs: a benchmark of several minutes whose results cannot be written is not worth starting.
  if (!options.json_path.empty()) {
    try {
      OutputFile(options.json_path, "--json").keep();
    } catch (const UsageError& e) {
      fmt::print(stderr, "iovmm: bench {}: {}\n", bench, e.what());
      return std::nullopt;
    }
  }
  const auto iovmm = iovmm_binary(options.iovmm);
  if (!iovmm) {
    fmt::print(stderr, "iovmm: bench {}: cannot find the iovmm binary\n", bench);
    return std::nullopt;
  }
  setup.iovmm = *iovmm;
  setup.guest = guest_path(options.guest, guest_name);
  if (!std::filesystem::is_regular_file(setup.guest)) {
    fmt::print(stderr, "iovmm: bench {}: guest {} not found (build the guests, or pass --guest)\n", bench, setup.guest);
    return std::nullopt;
  }
  if (::access("/dev/kvm", R_OK | W_OK) != 0) {
    fmt::print(stderr, "iovmm: bench {}: /dev/kvm is not usable\n", bench);
    return std::nullopt;
  }
  auto image = make_bench_image(options.image_dir, bench, options.image_mib);
  if (!image) {
    fmt::print(stderr, "iovmm: bench {}: cannot write a {} MiB image in {}\n", bench, options.image_mib,
               options.image_dir);
    return std::nullopt;
  }
  setup.image = *image;
  return setup;
}

int run_io_bench(const IoBenchSpec& spec, std::vector<IoBenchConfiguration> configurations, const IoBenchRun& run,
                 const IoBenchOptions& options, const IoBenchSetup& setup) {
  IoBench bench(spec, std::move(configurations));
  for (int round = 0; round < options.rounds; ++round) {
    fmt::print(stderr, "round {}/{}\n", round + 1, options.rounds);
    bench.run_round(round);
  }
  if (options.count_qemu_exits && !options.no_qemu) {
    fmt::print(stderr, "counting QEMU's user-space exits (perf)...\n");
    bench.count_qemu_exits();
  }
  std::filesystem::remove(setup.image);
  if (auto failure = bench.report(run, options)) {
    // The results are what was asked for: losing them fails the command.
    fmt::print(stderr, "iovmm: bench {}: {}\n", spec.name, *failure);
    return 4;
  }
  return 0;
}

}  // namespace iovmm::cli
