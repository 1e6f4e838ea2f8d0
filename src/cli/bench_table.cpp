#include "cli/bench_table.h"

#include <fmt/core.h>

#include <algorithm>
#include <fstream>

#include "cli/bench_support.h"
#include "common/output_file.h"

namespace iovmm::cli {
namespace {
// Only used when KVM does not report its TSC rate; the guests print cycles.
constexpr double kFallbackTscKhz = 2'596'138;

std::string spread(const std::vector<double>& values, const char* format) {
  if (values.empty()) return "n/a";
  auto [min, max] = std::minmax_element(values.begin(), values.end());
  return fmt::format("{} ({}-{})", fmt::format(fmt::runtime(format), median(values)),
                     fmt::format(fmt::runtime(format), *min), fmt::format(fmt::runtime(format), *max));
}

nlohmann::json optional_number(std::optional<double> value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}
}  // namespace

void BenchTable::Row::add_sample(double requests, double bytes, double cycles) {
  if (requests <= 0 || cycles <= 0) return;
  requests_per_second.push_back(requests / cycles);  // scaled by the TSC rate when printed
  megabytes_per_second.push_back(bytes / cycles);
}

BenchTable::Row& BenchTable::row(const Key& key) {
  auto [it, inserted] = rows_.try_emplace(key);
  if (inserted) first_seen_.push_back(key);
  return it->second;
}

const BenchTable::Row* BenchTable::qemu_peer(const Key& key) const {
  for (const auto& [other, row] : rows_) {
    if (other.vmm == "qemu" && other.shape == key.shape && (other.group1 == key.group1 || other.group1 == "-") &&
        (other.group2 == key.group2 || other.group2 == "-") && !row.requests_per_second.empty()) {
      return &row;
    }
  }
  return nullptr;
}

std::optional<double> BenchTable::ratio_to_qemu(const Key& key) const {
  auto it = rows_.find(key);
  const Row* peer = qemu_peer(key);
  if (key.vmm == "qemu" || it == rows_.end() || !peer || it->second.requests_per_second.empty()) return std::nullopt;
  return median(it->second.requests_per_second) / median(peer->requests_per_second);
}

// Shapes, then groups in first-seen order, iovmm before QEMU.
std::vector<BenchTable::Key> BenchTable::ordered() const {
  std::vector<Key> keys = first_seen_;
  std::stable_sort(keys.begin(), keys.end(), [&](const Key& a, const Key& b) {
    auto position = [&](const std::string& shape) {
      return std::find_if(first_seen_.begin(), first_seen_.end(), [&](const Key& k) { return k.shape == shape; }) -
             first_seen_.begin();
    };
    if (a.shape != b.shape) return position(a.shape) < position(b.shape);
    return (a.vmm == "qemu") < (b.vmm == "qemu");
  });
  return keys;
}

void BenchTable::print(const std::string& title, const std::array<std::string, 2>& group_names) const {
  const double hz = static_cast<double>(tsc_khz_.value_or(static_cast<uint64_t>(kFallbackTscKhz))) * 1000.0;
  fmt::print("\n{}\n", title);
  fmt::print("{:<6} {:<11} {:<15} {:<14} {:>28} {:>9} {:>10} {:>10} {:>8}\n", "VMM", group_names[0], group_names[1],
             "shape", "requests/s median (min-max)", "MB/s", "us/request", "exits/req", "x QEMU");
  for (const auto& key : ordered()) {
    const Row& row = rows_.at(key);
    if (row.requests_per_second.empty()) continue;
    std::vector<double> iops;
    for (double r : row.requests_per_second) iops.push_back(r * hz);
    const double mbps = median(row.megabytes_per_second) * hz / 1e6;
    auto ratio = ratio_to_qemu(key);
    fmt::print("{:<6} {:<11} {:<15} {:<14} {:>28} {:>9.1f} {:>10.1f} {:>10} {:>8}\n", key.vmm, key.group1,
               key.group2, key.shape, spread(iops, "{:.0f}"), mbps, 1e6 / median(iops),
               row.user_exits_per_request ? fmt::format("{:.3f}", *row.user_exits_per_request) : "n/a",
               ratio ? fmt::format("{:.2f}", *ratio) : "-");
    if (!row.exits_by_register.empty()) {
      std::string breakdown;
      for (const auto& [name, per_request] : row.exits_by_register) {
        breakdown += fmt::format("{}{}={:.2f}", breakdown.empty() ? "" : " ", name, per_request);
      }
      fmt::print("       exits per request by register: {}\n", breakdown);
    }
  }
  fmt::print("TSC {} kHz{}\n", tsc_khz_.value_or(static_cast<uint64_t>(kFallbackTscKhz)),
             tsc_khz_ ? " (KVM_GET_TSC_KHZ)" : " (assumed)");
}

std::optional<std::string> BenchTable::write_json(const std::string& path, nlohmann::json document,
                                                  const std::array<std::string, 2>& group_names) const {
  const double hz = static_cast<double>(tsc_khz_.value_or(static_cast<uint64_t>(kFallbackTscKhz))) * 1000.0;
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& key : ordered()) {
    const Row& row = rows_.at(key);
    if (row.requests_per_second.empty()) continue;
    std::vector<double> iops;
    for (double r : row.requests_per_second) iops.push_back(r * hz);
    const double iops_median = median(iops);
    nlohmann::json out = row.fields;
    out["vmm"] = key.vmm;
    out[group_names[0]] = key.group1;
    out[group_names[1]] = key.group2;
    out["iops"] = iops_median;
    out["iops_samples"] = iops;
    out["mbps"] = median(row.megabytes_per_second) * hz / 1e6;
    out["us_per_request"] = 1e6 / iops_median;
    out["user_exits_per_request"] = optional_number(row.user_exits_per_request);
    out["user_exits_per_second"] =
        optional_number(row.user_exits_per_request ? std::optional(*row.user_exits_per_request * iops_median)
                                                   : std::nullopt);
    out["ratio_to_qemu"] = optional_number(ratio_to_qemu(key));
    if (!row.exits_by_register.empty()) out["exits_by_register"] = row.exits_by_register;
    rows.push_back(out);
  }
  document["tsc_khz"] = tsc_khz_ ? nlohmann::json(*tsc_khz_) : nlohmann::json(nullptr);
  document["rows"] = rows;
  return OutputFile(path, "--json").replace_contents(document.dump(2) + "\n");
}

}  // namespace iovmm::cli
