// `iovmm bench disk`: sequential direct reads from a virtio-blk disk, the bare-metal equivalent of
// `dd if=/dev/vda of=/dev/null bs=4k iflag=direct`, under iovmm for each transport × dispatch choice and under QEMU
// (microvm + virtio-blk-device, pc + virtio-blk-pci) on the same image in tmpfs, alternating VMMs for several
// rounds. Prints requests/s, MB/s, µs per request, user-space exits per request and the ratio to QEMU on the same
// transport; optionally writes JSON. See docs/BENCHMARKS.md.
#pragma once

#include <cstdint>
#include <string>

namespace CLI {
class App;
}

namespace iovmm::cli {

struct BenchDiskOptions {
  int rounds = 5;
  std::string json_path;
  std::string qemu = "qemu-system-x86_64";
  bool no_qemu = false;
  std::string guest;  // empty: guests/disk-bench.elf next to iovmm
  std::string iovmm;  // empty: this program
  std::string image_dir = "/dev/shm";
  uint64_t image_mib = 256;
  uint64_t requests = 2000;  // per row and round
  std::string block_sizes = "4096,65536";
  std::string queue_depths = "1,32";
  std::string transports = "mmio,pci,pci-legacy";
  std::string dispatches = "exit,ioeventfd,ioeventfd+poll,partial,ioregionfd";
  bool count_qemu_exits = true;
};

CLI::App* add_bench_disk_subcommand(CLI::App& parent, BenchDiskOptions& options);
[[nodiscard]] int run_bench_disk(const BenchDiskOptions& options);

}  // namespace iovmm::cli
