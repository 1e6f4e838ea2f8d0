#include "cli/bench_ide.h"

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "cli/bench_io.h"
#include "cli/bench_support.h"

namespace iovmm::cli {
namespace {

// QEMU's exits named like iovmm's IDE register table, so that the two breakdowns line up: the primary channel's
// legacy ports, and the bus master's registers by their offset in BAR4 (16-byte aligned, wherever firmware put it).
std::string ide_port_name(uint16_t port) {
  static const char* const task_file[8] = {"data", "features", "sector_count", "lba_low",
                                           "lba_mid", "lba_high", "device", "command"};
  if (port >= 0x1F0 && port <= 0x1F7) return task_file[port - 0x1F0];
  if (port == 0x3F6) return "device_control";
  if (port >= 0x400) {
    switch (port & 0xF) {
      case 0: return "bm_command";
      case 2: return "bm_status";
      case 4: case 5: case 6: case 7: return "bm_prd";
      default: break;
    }
  }
  return fmt::format("port {:#x}", port);
}

bool known_mode(const std::string& mode) { return mode == "pio" || mode == "multiple" || mode == "dma"; }

std::optional<std::string> dispatch_options(const std::string& dispatch) {
  if (dispatch == "exit") return "dispatch=exit";
  if (dispatch == "partial") return "dispatch=partial";
  if (dispatch == "ioregionfd") return "dispatch=ioregionfd,server=thread";
  return std::nullopt;
}

std::vector<IoBenchConfiguration> configurations(const BenchIdeOptions& options, const IoBenchSetup& setup) {
  const std::string& iovmm = setup.iovmm;
  const std::string& guest = setup.guest;
  const std::string& image = setup.image;
  const std::string append = fmt::format("mode={} bs={} completion=poll requests={} pattern=off", options.modes,
                                         options.common.block_sizes, options.common.requests);
  std::vector<IoBenchConfiguration> list;
  for (const auto& dispatch : split_list(options.dispatches)) {
    list.push_back({"iovmm", dispatch, "*",
                    {iovmm, "run", "--kernel", guest, "--append", append, "--no-console-input", "--memory", "256M",
                     "--device", fmt::format("ide,file={},{}", image, *dispatch_options(dispatch))}});
  }
  if (!options.common.no_qemu) {
    list.push_back({"qemu", "-", "*",
                    {options.common.qemu, "-M", "pc", "-enable-kvm", "-cpu", "host,-arch-capabilities", "-m", "256",
                     "-nodefaults", "-nographic", "-serial", "stdio", "-device",
                     "isa-debug-exit,iobase=0xf4,iosize=4", "-drive",
                     fmt::format("file={},format=raw,if=ide", image), "-kernel", guest, "-append", append}});
  }
  return list;
}

}  // namespace

CLI::App* add_bench_ide_subcommand(CLI::App& parent, BenchIdeOptions& options) {
  CLI::App* ide = parent.add_subcommand(
      "ide", "IDE reads in PIO, PIO-multiple and DMA mode, exits per register, iovmm exit/partial vs QEMU");
  add_io_bench_options(*ide, options.common);
  ide->add_option("--modes", options.modes, "pio, multiple, dma")->capture_default_str();
  ide->add_option("--dispatches", options.dispatches, "exit, partial, ioregionfd")->capture_default_str();
  return ide;
}

int run_bench_ide(const BenchIdeOptions& options) {
  for (const auto& dispatch : split_list(options.dispatches)) {
    if (!dispatch_options(dispatch)) {
      fmt::print(stderr, "iovmm: bench ide: --dispatches {}: expected exit, partial or ioregionfd\n", dispatch);
      return kUsageStatus;
    }
  }
  for (const auto& mode : split_list(options.modes)) {
    if (!known_mode(mode)) {
      fmt::print(stderr, "iovmm: bench ide: --modes {}: expected pio, multiple or dma\n", mode);
      return kUsageStatus;
    }
  }
  const auto setup = prepare_io_bench("ide", options.common, "ide-bench.elf");
  if (!setup) return kUsageStatus;

  IoBenchSpec spec;
  spec.name = "ide";
  spec.group_names = {"dispatch", "mode"};
  spec.iovmm_device = "ide";
  // The mode comes from the guest's line: one run measures every mode.
  spec.row_key = [](const IoBenchConfiguration& c, const GuestFields& f) {
    return BenchTable::Key{c.vmm, c.group1, f.at("mode"), fmt::format("bs={}", f.at("block_size"))};
  };
  spec.row_fields = [](const GuestFields& f) {
    nlohmann::json fields{{"block_size", std::stoull(f.at("block_size"))}};
    for (const char* key : {"status_reads", "taskfile_writes", "data_chunks", "bm_accesses"}) {
      if (f.count(key)) fields[std::string("guest_") + key] = std::stoull(f.at(key));
    }
    return fields;
  };
  spec.qemu_port_name = ide_port_name;
  IoBenchRun run;
  run.title = fmt::format("ide: sequential reads, {} requests per row and round, {} rounds, {} MiB image in {}",
                          options.common.requests, options.common.rounds, options.common.image_mib,
                          options.common.image_dir);
  return run_io_bench(spec, configurations(options, *setup), run, options.common, *setup);
}

}  // namespace iovmm::cli
