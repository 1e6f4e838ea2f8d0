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

namespace iovmm::cli {

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
  int rounds = 5;
  bool count_qemu_exits = true;
  std::string json_path;
  std::string title;
  nlohmann::json json_header = nlohmann::json::object();
};

// Writes `mib` MiB of non-zero data (reads must copy real pages) to a new file in `dir`; returns its path.
[[nodiscard]] std::optional<std::string> make_bench_image(const std::string& dir, const std::string& name, uint64_t mib);

// Runs the rounds, prints the table (and JSON); returns the exit status.
int run_io_bench(const IoBenchSpec& spec, std::vector<IoBenchConfiguration> configurations, const IoBenchRun& run);

[[nodiscard]] std::vector<std::string> split_list(const std::string& list);

}  // namespace iovmm::cli
