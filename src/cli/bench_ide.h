// `iovmm bench ide`: the classic exits-per-register experiment. An IDE guest reads the disk sequentially in PIO,
// PIO-multiple and DMA mode under iovmm with dispatch=exit and dispatch=partial (latches coalesced) and under QEMU
// -M pc with the disk on IDE, alternating VMMs for several rounds. Prints requests/s, MB/s, user-space exits per
// request and per second, and which registers the exits went to; optionally writes JSON. See docs/BENCHMARKS.md.
#pragma once

#include <string>

#include "cli/bench_io.h"

namespace iovmm::cli {

struct BenchIdeOptions {
  IoBenchOptions common{.image_mib = 64, .requests = 500};
  std::string modes = "pio,multiple,dma";
  std::string dispatches = "exit,partial";
};

CLI::App* add_bench_ide_subcommand(CLI::App& parent, BenchIdeOptions& options);
[[nodiscard]] int run_bench_ide(const BenchIdeOptions& options);

}  // namespace iovmm::cli
