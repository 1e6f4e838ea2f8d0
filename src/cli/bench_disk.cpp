#include "cli/bench_disk.h"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <optional>

#include "cli/bench_io.h"
#include "cli/bench_support.h"

namespace iovmm::cli {
namespace {

// Event-loop polling for the "+poll" choices: long enough to catch the next request of a queue-depth-1 stream.
constexpr const char* kPollMicroseconds = "50";

// What each dispatch choice means for a virtio-blk device on iovmm's command line. "+poll" adds the event loop's
// adaptive polling (--poll-us), which spares a thread wake-up per doorbell at the price of a busy core.
std::optional<std::string> dispatch_options(const std::string& dispatch) {
  std::string base = dispatch.ends_with("+poll") ? dispatch.substr(0, dispatch.size() - 5) : dispatch;
  if (base == "exit") return "dispatch=exit";
  if (base == "ioeventfd") return "dispatch.queue_notify=ioeventfd";
  if (base == "partial") return "dispatch=partial";
  if (base == "ioregionfd") return "dispatch=ioregionfd,server=thread";
  return std::nullopt;
}

std::optional<std::string> transport_options(const std::string& transport) {
  if (transport == "mmio") return "transport=mmio";
  if (transport == "pci") return "transport=pci";
  if (transport == "pci-legacy") return "transport=pci,legacy=on";
  return std::nullopt;
}

// The same transport under QEMU: virtio-mmio version 2 on microvm (its default is the legacy version 1), a
// modern-only or a transitional virtio-blk-pci on pc.
std::vector<std::string> qemu_machine(const std::string& transport) {
  if (transport == "mmio") {
    return {"-M", "microvm,acpi=on", "-global", "virtio-mmio.force-legacy=false", "-device",
            "virtio-blk-device,drive=d0"};
  }
  return {"-M", "pc", "-device",
          transport == "pci" ? "virtio-blk-pci,drive=d0,disable-legacy=on" : "virtio-blk-pci,drive=d0"};
}

std::vector<IoBenchConfiguration> configurations(const BenchDiskOptions& options, const IoBenchSetup& setup) {
  const std::string& iovmm = setup.iovmm;
  const std::string& guest = setup.guest;
  const std::string& image = setup.image;
  std::vector<IoBenchConfiguration> list;
  for (const auto& transport : split_list(options.transports)) {
    const std::string append =
        fmt::format("transport={} completion=poll bs={} qd={} requests={} pattern=off", transport,
                    options.common.block_sizes, options.queue_depths, options.common.requests);
    for (const auto& dispatch : split_list(options.dispatches)) {
      const std::string device = fmt::format("virtio-blk,file={},{},{}", image, *transport_options(transport),
                                             *dispatch_options(dispatch));
      list.push_back({"iovmm", transport, dispatch,
                      {iovmm, "run", "--kernel", guest, "--append", append, "--no-console-input", "--memory", "256M",
                       "--poll-us", dispatch.ends_with("+poll") ? kPollMicroseconds : "0", "--device", device}});
    }
    if (options.common.no_qemu) continue;
    IoBenchConfiguration qemu{"qemu", transport, "-",
                              {options.common.qemu, "-enable-kvm", "-cpu", "host,-arch-capabilities", "-m", "256",
                               "-nodefaults", "-nographic", "-serial", "stdio", "-device",
                               "isa-debug-exit,iobase=0xf4,iosize=4", "-drive",
                               fmt::format("id=d0,file={},format=raw,if=none", image)}};
    for (auto& arg : qemu_machine(transport)) qemu.argv.push_back(arg);
    for (auto arg : {"-kernel", guest.c_str(), "-append", append.c_str()}) qemu.argv.emplace_back(arg);
    list.push_back(std::move(qemu));
  }
  return list;
}

}  // namespace

CLI::App* add_bench_disk_subcommand(CLI::App& parent, BenchDiskOptions& options) {
  CLI::App* disk = parent.add_subcommand(
      "disk", "Sequential virtio-blk reads per transport and dispatch choice, side by side with QEMU");
  add_io_bench_options(*disk, options.common);
  disk->add_option("--queue-depths", options.queue_depths, "Requests in flight")->capture_default_str();
  disk->add_option("--transports", options.transports, "mmio, pci, pci-legacy")->capture_default_str();
  disk->add_option("--dispatches", options.dispatches,
                   "exit, ioeventfd, partial, ioregionfd; +poll adds --poll-us 50 (e.g. ioeventfd+poll)")
      ->capture_default_str();
  return disk;
}

int run_bench_disk(const BenchDiskOptions& options) {
  for (const auto& dispatch : split_list(options.dispatches)) {
    if (!dispatch_options(dispatch)) {
      fmt::print(stderr, "iovmm: bench disk: --dispatches {}: expected exit, ioeventfd, partial or ioregionfd, "
                 "each optionally with +poll\n", dispatch);
      return kUsageStatus;
    }
  }
  for (const auto& transport : split_list(options.transports)) {
    if (!transport_options(transport)) {
      fmt::print(stderr, "iovmm: bench disk: --transports {}: expected mmio, pci or pci-legacy\n", transport);
      return kUsageStatus;
    }
  }
  const auto setup = prepare_io_bench("disk", options.common, "disk-bench.elf");
  if (!setup) return kUsageStatus;

  IoBenchSpec spec;
  spec.name = "disk";
  spec.group_names = {"transport", "dispatch"};
  spec.iovmm_device = "virtio-blk";
  spec.row_key = [](const IoBenchConfiguration& c, const GuestFields& f) {
    return BenchTable::Key{c.vmm, c.group1, c.group2,
                           fmt::format("bs={} qd={}", f.at("block_size"), f.at("queue_depth"))};
  };
  spec.row_fields = [](const GuestFields& f) {
    return nlohmann::json{{"block_size", std::stoull(f.at("block_size"))},
                          {"queue_depth", std::stoull(f.at("queue_depth"))}};
  };
  IoBenchRun run;
  run.title = fmt::format("disk: sequential reads, {} requests per row and round, {} rounds, {} MiB image in {}",
                          options.common.requests, options.common.rounds, options.common.image_mib,
                          options.common.image_dir);
  return run_io_bench(spec, configurations(options, *setup), run, options.common, *setup);
}

}  // namespace iovmm::cli
