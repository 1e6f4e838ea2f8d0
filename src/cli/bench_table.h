// The table the I/O benchmarks (bench disk, bench ide) print and write: one row per VMM, two grouping columns
// (transport and dispatch, or dispatch and mode) and a request shape (block size, queue depth), each with a sample
// per round; medians with min-max, MB/s, µs per request, user-space exits per request and the ratio to the QEMU row
// of the same shape.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace iovmm::cli {

class BenchTable {
 public:
  struct Key {
    std::string vmm;
    std::string group1;  // "-" on QEMU rows where it does not apply (QEMU has no dispatch choice)
    std::string group2;
    std::string shape;   // "bs=4096 qd=1"
    auto operator<=>(const Key&) const = default;
  };
  struct Row {
    std::vector<double> requests_per_second;  // one per round
    std::vector<double> megabytes_per_second;
    std::optional<double> user_exits_per_request;
    std::map<std::string, double> exits_by_register;  // per request
    nlohmann::json fields = nlohmann::json::object();  // block_size, queue_depth, mode...: copied into the JSON row
    void add_sample(double requests, double bytes, double cycles);
  };

  explicit BenchTable(std::optional<uint64_t> tsc_khz) : tsc_khz_(tsc_khz) {}

  Row& row(const Key& key);
  [[nodiscard]] std::optional<double> ratio_to_qemu(const Key& key) const;
  void print(const std::string& title, const std::array<std::string, 2>& group_names) const;
  // The error line when the file cannot be written, else nullopt.
  [[nodiscard]] std::optional<std::string> write_json(const std::string& path, nlohmann::json document,
                                                      const std::array<std::string, 2>& group_names) const;

 private:
  [[nodiscard]] const Row* qemu_peer(const Key& key) const;
  [[nodiscard]] std::vector<Key> ordered() const;

  std::optional<uint64_t> tsc_khz_;
  std::map<Key, Row> rows_;
  std::vector<Key> first_seen_;
};

}  // namespace iovmm::cli
