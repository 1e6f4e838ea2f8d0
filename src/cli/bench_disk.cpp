#include "cli/bench_disk.h"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <unistd.h>

#include <filesystem>
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

std::vector<IoBenchConfiguration> configurations(const BenchDiskOptions& options, const std::string& iovmm,
                                                 const std::string& guest, const std::string& image) {
  std::vector<IoBenchConfiguration> list;
  for (const auto& transport : split_list(options.transports)) {
    const std::string append =
        fmt::format("transport={} completion=poll bs={} qd={} requests={} pattern=off", transport,
                    options.block_sizes, options.queue_depths, options.requests);
    for (const auto& dispatch : split_list(options.dispatches)) {
      const std::string device = fmt::format("virtio-blk,file={},{},{}", image, *transport_options(transport),
                                             *dispatch_options(dispatch));
      list.push_back({"iovmm", transport, dispatch,
                      {iovmm, "run", "--kernel", guest, "--append", append, "--no-console-input", "--memory", "256M",
                       "--poll-us", dispatch.ends_with("+poll") ? kPollMicroseconds : "0", "--device", device}});
    }
    if (options.no_qemu) continue;
    IoBenchConfiguration qemu{"qemu", transport, "-",
                              {options.qemu, "-enable-kvm", "-cpu", "host,-arch-capabilities", "-m", "256",
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
  disk->add_option("--rounds", options.rounds, "Rounds (each runs every configuration once)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  disk->add_option("--json", options.json_path, "Write the rows as JSON to FILE");
  disk->add_option("--qemu", options.qemu, "QEMU binary")->capture_default_str();
  disk->add_flag("--no-qemu", options.no_qemu, "Do not run QEMU");
  disk->add_option("--iovmm", options.iovmm, "The iovmm binary to benchmark (default: this one)");
  disk->add_option("--guest", options.guest, "The disk guest (default: guests/disk-bench.elf next to iovmm)");
  disk->add_option("--image-dir", options.image_dir, "Where the image is made (tmpfs)")->capture_default_str();
  disk->add_option("--image-mib", options.image_mib, "Image size in MiB")
      ->check(CLI::Range(uint64_t{8}, uint64_t{1} << 16))
      ->capture_default_str();
  disk->add_option("--requests", options.requests, "Requests per row and round")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 24))
      ->capture_default_str();
  disk->add_option("--block-sizes", options.block_sizes, "Request sizes in bytes")->capture_default_str();
  disk->add_option("--queue-depths", options.queue_depths, "Requests in flight")->capture_default_str();
  disk->add_option("--transports", options.transports, "mmio, pci, pci-legacy")->capture_default_str();
  disk->add_option("--dispatches", options.dispatches,
                   "exit, ioeventfd, partial, ioregionfd; +poll adds --poll-us 50 (e.g. ioeventfd+poll)")
      ->capture_default_str();
  disk->add_flag("--no-exit-counts", [&options](int64_t) { options.count_qemu_exits = false; },
                 "Skip the perf run that counts QEMU's user-space exits");
  return disk;
}

int run_bench_disk(const BenchDiskOptions& options) {
  const auto iovmm = iovmm_binary(options.iovmm);
  const std::string guest = guest_path(options.guest, "disk-bench.elf");
  if (!iovmm) {
    fmt::print(stderr, "iovmm: bench disk: cannot find the iovmm binary\n");
    return kUsageStatus;
  }
  if (!std::filesystem::is_regular_file(guest)) {
    fmt::print(stderr, "iovmm: bench disk: guest {} not found (build target guest-disk-bench, or pass --guest)\n",
               guest);
    return kUsageStatus;
  }
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
  if (::access("/dev/kvm", R_OK | W_OK) != 0) {
    fmt::print(stderr, "iovmm: bench disk: /dev/kvm is not usable\n");
    return kUsageStatus;
  }
  const auto image = make_bench_image(options.image_dir, "disk", options.image_mib);
  if (!image) {
    fmt::print(stderr, "iovmm: bench disk: cannot write a {} MiB image in {}\n", options.image_mib, options.image_dir);
    return kUsageStatus;
  }

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
  run.rounds = options.rounds;
  run.count_qemu_exits = options.count_qemu_exits && !options.no_qemu;
  run.json_path = options.json_path;
  run.title = fmt::format("disk: sequential reads, {} requests per row and round, {} rounds, {} MiB image in {}",
                          options.requests, options.rounds, options.image_mib, options.image_dir);
  run.json_header = {{"requests_per_row", options.requests}, {"image_mib", options.image_mib}};
  const int status = run_io_bench(spec, configurations(options, *iovmm, guest, *image), run);
  std::filesystem::remove(*image);
  return status;
}

}  // namespace iovmm::cli
