// iovmm's command line. Every failure before the guest runs is one line on stderr and exit status 2.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <cstdio>
#include <string_view>

#include "cli/bench_disk.h"
#include "cli/bench_exits.h"
#include "cli/bench_ide.h"
#include "cli/size.h"
#include "common/error.h"
#include "common/log.h"
#include "machine/exit_status.h"
#include "machine/machine.h"

namespace {

int usage_error(const std::string& message) {
  fmt::print(stderr, "iovmm: {}\n", message);
  return iovmm::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace iovmm;
  CLI::App app{"iovmm: a KVM virtual machine monitor for fast, flexible device I/O emulation"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for all subcommands");

  MachineConfig config;
  std::string memory = "128M";
  std::string append;
  bool verbose = false;
  CLI::App* run = app.add_subcommand("run", "Boot a kernel (PVH ELF or Multiboot) and run it until it stops");
  run->add_option("--kernel,-k", config.kernel, "Kernel: an ELF with a PVH note, or a Multiboot (v1) image")
      ->required();
  run->add_option("--append", config.cmdline, "Kernel command line");
  run->add_option("--initrd", config.initrds,
                  "Initrd (PVH module) or Multiboot module, optionally followed by its arguments: \"FILE ARGS\"")
      ->take_all();
  run->add_option("--cpus,--smp", config.cpus, "Number of vCPUs")->capture_default_str();
  run->add_option("--memory,-m", memory, "Guest RAM: a number of MiB, or with a K/M/G suffix")->capture_default_str();
  run->add_option("--device", config.devices, "Add a device: TYPE[,KEY=VALUE...]");
  run->add_flag("--stats", config.print_stats, "At shutdown, print exits by reason and accesses by device and register");
  run->add_option("--stats-json", config.stats_json, "At shutdown, write the statistics as JSON to FILE");
  run->add_flag("--no-console-input", [&](int64_t) { config.console_input = false; },
                "Do not feed standard input to the serial port");
  run->add_option("--poll-us", config.poll_us,
                  "Event loop: keep polling for device work this many microseconds before sleeping (0: never)")
      ->check(CLI::Range(0, 1'000'000))
      ->capture_default_str();
  run->add_flag("--verbose,-v", verbose, "Log informational messages");

  CLI::App* bench = app.add_subcommand("bench", "Run a benchmark and print its table");
  bench->require_subcommand(1);
  cli::BenchExitsOptions bench_exits_options;
  CLI::App* bench_exits = cli::add_bench_exits_subcommand(*bench, bench_exits_options);
  cli::BenchDiskOptions bench_disk_options;
  CLI::App* bench_disk = cli::add_bench_disk_subcommand(*bench, bench_disk_options);
  cli::BenchIdeOptions bench_ide_options;
  CLI::App* bench_ide = cli::add_bench_ide_subcommand(*bench, bench_ide_options);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string_view command = argc > 1 ? argv[1] : "";
    if (!command.empty() && command[0] != '-' && command != "run" && command != "bench") {
      return usage_error(fmt::format("unknown command '{}' (see 'iovmm --help')", argv[1]));
    }
    return usage_error(fmt::format("{} (see 'iovmm {}--help')", e.what(), run->parsed() ? "run " : ""));
  }
  if (bench_exits->parsed()) return cli::run_bench_exits(bench_exits_options);
  if (bench_disk->parsed()) return cli::run_bench_disk(bench_disk_options);
  if (bench_ide->parsed()) return cli::run_bench_ide(bench_ide_options);
  if (verbose) log::set_level(log::Level::info);

  auto memory_bytes = cli::parse_size(memory);
  if (!memory_bytes) return usage_error(fmt::format("--memory {}: not a size (try 128M or 1G)", memory));
  config.memory_bytes = *memory_bytes;

  try {
    Machine machine(config);
    return machine.run();
  } catch (const UsageError& e) {
    return usage_error(e.what());
  } catch (const std::exception& e) {
    fmt::print(stderr, "iovmm: {}\n", e.what());
    return kExitFatal;
  }
}
