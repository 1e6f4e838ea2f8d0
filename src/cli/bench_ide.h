// `iovmm bench ide`: the classic exits-per-register experiment. An IDE guest reads the disk sequentially in PIO,
// PIO-multiple and DMA mode under iovmm with dispatch=exit and dispatch=partial (latches coalesced) and under QEMU
// -M pc with the disk on IDE, alternating VMMs for several rounds. Prints requests/s, MB/s, user-space exits per
// request and per second, and which registers the exits went to; optionally writes JSON. See docs/BENCHMARKS.md.
#pragma once

#include <cstdint>
#include <string>

namespace CLI {
class App;
}

namespace iovmm::cli {

struct BenchIdeOptions {
  int rounds = 5;
  std::string json_path;
  std::string qemu = "qemu-system-x86_64";
  bool no_qemu = false;
  std::string guest;  // empty: guests/ide-bench.elf next to iovmm
  std::string iovmm;  // empty: this program
  std::string image_dir = "/dev/shm";
  uint64_t image_mib = 64;
  uint64_t requests = 500;  // per row and round
  std::string block_sizes = "4096,65536";
  std::string modes = "pio,multiple,dma";
  std::string dispatches = "exit,partial";
  bool count_qemu_exits = true;
};

CLI::App* add_bench_ide_subcommand(CLI::App& parent, BenchIdeOptions& options);
[[nodiscard]] int run_bench_ide(const BenchIdeOptions& options);

}  // namespace iovmm::cli
