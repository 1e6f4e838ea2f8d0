// `iovmm bench disk`: sequential direct reads from a virtio-blk disk, the bare-metal equivalent of
// `dd if=/dev/vda of=/dev/null bs=4k iflag=direct`, under iovmm for each transport × dispatch choice and under QEMU
// (microvm + virtio-blk-device, pc + virtio-blk-pci) on the same image in tmpfs, alternating VMMs for several
// rounds. Prints requests/s, MB/s, µs per request, user-space exits per request and the ratio to QEMU on the same
// transport; optionally writes JSON. See docs/BENCHMARKS.md.
#pragma once

#include <string>

#include "cli/bench_io.h"

namespace iovmm::cli {

struct BenchDiskOptions {
  IoBenchOptions common{.image_mib = 256, .requests = 2000};
  std::string queue_depths = "1,32";
  std::string transports = "mmio,pci,pci-legacy";
  std::string dispatches = "exit,ioeventfd,ioeventfd+poll,partial,ioregionfd";
};

CLI::App* add_bench_disk_subcommand(CLI::App& parent, BenchDiskOptions& options);
[[nodiscard]] int run_bench_disk(const BenchDiskOptions& options);

}  // namespace iovmm::cli
