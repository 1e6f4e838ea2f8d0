// The engine behind bench disk and bench ide: an image in tmpfs, a list of VMM configurations each booting the same
// guest, rounds that run every configuration (in alternating order), the guest's "X: result k=v..." lines as
// samples, user-space exits per request from iovmm's markers (--stats-json) and from a perf trace of QEMU, and the
// table. What differs between benchmarks (devices, QEMU machines, how a result line maps to a row) is given by
// the caller.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/bench_table.h"

namespace CLI {
class App;
}

namespace iovmm::cli {

// What every I/O benchmark's command line has.
struct IoBenchOptions {
  int rounds = 5;
  std::string json_path{};
  std::string qemu = "qemu-system-x86_64";
  bool no_qemu = false;
  std::string guest{};  // empty: guests/<name>-bench.elf next to iovmm
  std::string iovmm{};  // empty: this program
  std::string image_dir = "/dev/shm";
  uint64_t image_mib = 64;
  uint64_t requests = 500;  // per row and round
  std::string block_sizes = "4096,65536";
  bool count_qemu_exits = true;
};

// Adds the options above to `command`.
void add_io_bench_options(CLI::App& command, IoBenchOptions& options);

// The checks and set-up every I/O benchmark does before it runs: the iovmm binary, the guest (`guest_name` next to
// it unless given), /dev/kvm, an image of image_mib in image_dir. Prints one line and returns nullopt on failure.
struct IoBenchSetup {
  std::string iovmm;
  std::string guest;
  std::string image;
};
[[nodiscard]] std::optional<IoBenchSetup> prepare_io_bench(const std::string& bench, const IoBenchOptions& options,
                                                           const std::string& guest_name);

using GuestFields = std::map<std::string, std::string>;

struct IoBenchConfiguration {
  std::string vmm;     // iovmm or qemu
  std::string group1;  // e.g. transport
  std::string group2;  // e.g. dispatch ("-" where it does not apply)
  std::vector<std::string> argv;  // the whole command; for iovmm, --stats-json is inserted after "run"
  std::optional<std::string> failed = std::nullopt;
};

struct IoBenchSpec {
  std::string name;  // "disk": messages, temporary files and the guest's line prefix ("disk: result ", "disk: done")
  std::array<std::string, 2> group_names;
  std::string iovmm_device;  // whose exits are broken down by register ("" for none)
  // The row a result line belongs to, and the fields copied into its JSON.
  std::function<BenchTable::Key(const IoBenchConfiguration&, const GuestFields&)> row_key;
  std::function<nlohmann::json(const GuestFields&)> row_fields;
  // Names QEMU's port-I/O exits by port for the breakdown; null: no breakdown for QEMU.
  std::function<std::string(uint16_t port)> qemu_port_name;
};

struct IoBenchRun {
  std::string title;
  nlohmann::json json_header = nlohmann::json::object();
};

// Runs the rounds, prints the table (and JSON), removes the image; returns the exit status.
int run_io_bench(const IoBenchSpec& spec, std::vector<IoBenchConfiguration> configurations, const IoBenchRun& run,
                 const IoBenchOptions& options, const IoBenchSetup& setup);

[[nodiscard]] std::vector<std::string> split_list(const std::string& list);

}  // namespace iovmm::cli
