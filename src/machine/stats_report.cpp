#include "machine/stats_report.h"

#include <fmt/core.h>

#include <cstdio>
#include <fstream>

#include "common/log.h"
#include "dispatch/hypercall.h"
#include "kvm/stats.h"

namespace iovmm {
namespace {

nlohmann::json nonzero_kvm_stats(const kvm::Stats& stats) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& value : stats.read_all()) {
    if (value.value != 0) out[value.name] = value.value;
  }
  return out;
}

// The register's name from the device's table, or its offset when the window has no table.
std::string register_name(const io::Window& window, uint64_t offset, unsigned size) {
  // A string transfer (rep ins/outs) is counted as one access of all its bytes: name the register it repeats on.
  const unsigned element = size > 8 ? 1 : size;
  if (const io::Register* reg = window.counts->registers().find(offset, element)) return std::string(reg->name);
  return fmt::format("{:#x}", offset);
}

nlohmann::json bus_windows(const io::Bus& bus) {
  nlohmann::json windows = nlohmann::json::array();
  for (const auto& window : bus.windows()) {
    nlohmann::json accesses = nlohmann::json::array();
    for (const auto& [key, count] : window.counts->snapshot()) {
      accesses.push_back({{"offset", key.offset},
                          {"register", register_name(window, key.offset, key.size)},
                          {"size", key.size},
                          {"direction", key.direction == io::Direction::read ? "read" : "write"},
                          {"path", std::string(io::to_string(key.path))},
                          {"count", count}});
    }
    windows.push_back({{"device", window.device->name()},
                       {"window", window.label},
                       {"space", io::to_string(bus.space())},
                       {"base", window.base},
                       {"size", window.size},
                       {"accesses", accesses}});
  }
  return windows;
}

// Guest RAM is a memfd, so it shows as RssShmem; what the VMM itself uses is the rest.
nlohmann::json memory_footprint() {
  nlohmann::json out = nlohmann::json::object();
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    for (const char* key : {"VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"}) {
      std::string prefix = std::string(key) + ":";
      if (line.rfind(prefix, 0) == 0) out[std::string(key) + "_kib"] = std::stoull(line.substr(prefix.size()));
    }
  }
  out["vmm_own_kib"] = out.value("RssAnon_kib", uint64_t{0}) + out.value("RssFile_kib", uint64_t{0});
  return out;
}

}  // namespace

nlohmann::json device_accesses(const io::Bus& pio, const io::Bus& mmio) {
  nlohmann::json windows = bus_windows(pio);
  for (auto& w : bus_windows(mmio)) windows.push_back(std::move(w));
  return windows;
}

nlohmann::json collect_stats(const StatsInput& input) {
  nlohmann::json stats;
  stats["exit_status"] = input.exit_status;
  stats["stop_reason"] = input.stop_reason;
  stats["startup_ms"] = input.startup_ms;
  stats["cpus"] = input.config.cpus;
  stats["memory_bytes"] = input.config.memory_bytes;
  stats["memory_footprint"] = memory_footprint();
  stats["hypercall"] = {{"port_carrier", fmt::format("available at port {:#06x}", dispatch::kHypercallPort)},
                        {"vmcall_carrier", input.vmcall_carrier}};

  nlohmann::json total_exits = nlohmann::json::object();
  nlohmann::json vcpus = nlohmann::json::array();
  for (const auto& runner : input.runners) {
    nlohmann::json exits = nlohmann::json::object();
    const auto& counts = runner->exit_counts();
    for (uint32_t reason = 0; reason < counts.size(); ++reason) {
      if (counts[reason] == 0) continue;
      const char* name = exit_reason_name(reason);
      exits[name] = counts[reason];
      total_exits[name] = total_exits.value(name, uint64_t{0}) + counts[reason];
    }
    vcpus.push_back({{"id", runner->id()}, {"user_exits", exits}, {"kvm", nonzero_kvm_stats(runner->kvm_stats())}});
  }
  stats["user_exits"] = total_exits;
  stats["vcpus"] = vcpus;

  stats["devices"] = device_accesses(input.pio, input.mmio);
  stats["markers"] = input.markers;
  stats["unmapped"] = {{"pio", {{"reads", input.pio.unmapped_reads()}, {"writes", input.pio.unmapped_writes()}}},
                       {"mmio", {{"reads", input.mmio.unmapped_reads()}, {"writes", input.mmio.unmapped_writes()}}}};
  try {
    stats["kvm_vm"] = nonzero_kvm_stats(kvm::Stats(input.vm.fd()));
  } catch (const std::exception& e) {
    stats["kvm_vm"] = {{"error", e.what()}};
  }
  return stats;
}

void print_stats(const nlohmann::json& stats) {
  std::string out = fmt::format("\n=== iovmm statistics ===\nstopped: {} (exit status {})\nstartup: {:.2f} ms\n",
                                stats["stop_reason"].get<std::string>(), stats["exit_status"].get<int>(),
                                stats["startup_ms"].get<double>());
  const auto& footprint = stats["memory_footprint"];
  out += fmt::format("resident: VMM {} KiB (anon+file), guest RAM touched {} KiB\n",
                     footprint.value("vmm_own_kib", uint64_t{0}), footprint.value("RssShmem_kib", uint64_t{0}));
  out += "user-space exits by reason:\n";
  for (const auto& [reason, count] : stats["user_exits"].items()) {
    out += fmt::format("  {:<16} {:>12}\n", reason, count.get<uint64_t>());
  }
  out += "device accesses by register and path:\n";
  out += fmt::format("  {:<20} {:<5} {:>10} {:<16} {:>5} {:<6} {:<10} {:>12}\n", "window", "space", "address",
                     "register", "width", "dir", "path", "count");
  for (const auto& window : stats["devices"]) {
    for (const auto& access : window["accesses"]) {
      out += fmt::format("  {:<20} {:<5} {:>#10x} {:<16} {:>5} {:<6} {:<10} {:>12}\n",
                         window["window"].get<std::string>(), window["space"].get<std::string>(),
                         window["base"].get<uint64_t>() + access["offset"].get<uint64_t>(),
                         access["register"].get<std::string>(), access["size"].get<unsigned>(),
                         access["direction"].get<std::string>(), access["path"].get<std::string>(),
                         access["count"].get<uint64_t>());
    }
  }
  const auto& unmapped = stats["unmapped"];
  out += fmt::format("unmapped accesses: pio {} reads, {} writes; mmio {} reads, {} writes\n",
                     unmapped["pio"]["reads"].get<uint64_t>(), unmapped["pio"]["writes"].get<uint64_t>(),
                     unmapped["mmio"]["reads"].get<uint64_t>(), unmapped["mmio"]["writes"].get<uint64_t>());
  out += fmt::format("hypercall: port carrier {}; vmcall carrier {}\n",
                     stats["hypercall"]["port_carrier"].get<std::string>(),
                     stats["hypercall"]["vmcall_carrier"].get<std::string>());
  out += "KVM statistics (non-zero):\n";
  for (const auto& vcpu : stats["vcpus"]) {
    out += fmt::format("  vcpu{}:", vcpu["id"].get<uint32_t>());
    for (const auto& [name, value] : vcpu["kvm"].items()) out += fmt::format(" {}={}", name, value.dump());
    out += "\n";
  }
  out += "  vm:";
  for (const auto& [name, value] : stats["kvm_vm"].items()) out += fmt::format(" {}={}", name, value.dump());
  out += "\n";
  std::fputs(out.c_str(), stderr);
}

std::optional<std::string> write_stats_json(const nlohmann::json& stats, OutputFile& file) {
  return file.replace_contents(stats.dump(2) + "\n");
}

}  // namespace iovmm
