// `iovmm bench exits`: the cost of one guest access for each access kind and dispatch path, side by side with
// QEMU on the same machine in the same run. Runs guests/bench-exits.elf under iovmm once per path configuration and
// under QEMU (-M pc, pci-testdev, VGA), alternating, for several rounds; prints one table (median and spread of
// cycles per access, ns, user-space exits per access, ratios to QEMU, to the in-kernel floor and, for rows that exit
// to user space, to the raw KVM_RUN floor of the same access and mode) and those raw floors; optionally writes it all
// as JSON. See docs/BENCHMARKS.md.
#pragma once

#include <cstdint>
#include <string>

namespace CLI {
class App;
}

namespace iovmm::cli {

struct BenchExitsOptions {
  int rounds = 5;
  uint64_t goal = uint64_t{1} << 26;  // cycles a CPL3 loop must last (the guest uses goal/8 at CPL0)
  std::string json_path;              // --json FILE; empty: no JSON
  std::string qemu = "qemu-system-x86_64";
  bool no_qemu = false;
  std::string guest;                  // empty: guests/bench-exits.elf next to the iovmm binary
  std::string iovmm;                  // the iovmm binary the guest runs under; empty: this program
  std::string modes = "cpl3,cpl0";
  bool stats = false;                 // also print the raw floors' batches and every exit-counting run
  bool count_exits = true;            // --no-exit-counts skips the counting runs (user exits per access: n/a)
  uint64_t count_iterations = 1000;   // accesses per counting run
};

// Adds `exits` (with its options, bound to `options`) under `parent` (the `bench` subcommand); returns it.
CLI::App* add_bench_exits_subcommand(CLI::App& parent, BenchExitsOptions& options);

// Runs the benchmark; returns the process exit status (0, or 2 for bad options / missing guest or KVM).
[[nodiscard]] int run_bench_exits(const BenchExitsOptions& options);

}  // namespace iovmm::cli
