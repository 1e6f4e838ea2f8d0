// What --stats prints and --stats-json writes when a run ends: how it ended, user-space exits by reason, every
// device access by window, register offset, width, direction and path, and KVM's own binary statistics.
#pragma once

#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/output_file.h"
#include "io/bus.h"
#include "kvm/vm.h"
#include "machine/config.h"
#include "machine/vcpu_runner.h"

namespace iovmm {

struct StatsInput {
  const MachineConfig& config;
  double startup_ms;
  int exit_status;
  std::string stop_reason;
  const io::Bus& pio;
  const io::Bus& mmio;
  const std::vector<std::unique_ptr<VcpuRunner>>& runners;
  const kvm::Vm& vm;
  std::string vmcall_carrier;
  const nlohmann::json& markers;
};

// Every window's access counts, by register, size, direction and path: the "devices" list of the statistics.
[[nodiscard]] nlohmann::json device_accesses(const io::Bus& pio, const io::Bus& mmio);

[[nodiscard]] nlohmann::json collect_stats(const StatsInput& input);
// Human-readable, on stderr (stdout belongs to the guest's console).
void print_stats(const nlohmann::json& stats);
// Into the file --stats-json opened before the run; the one error line (with errno text) when it could not.
[[nodiscard]] std::optional<std::string> write_stats_json(const nlohmann::json& stats, OutputFile& file);

}  // namespace iovmm
