// iovmm's command line. Every failure before the guest runs is one line on stderr and exit status 2.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

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
  // Wider than MachineConfig::cpus, so that a value past 32 bits is refused with the range, not "could not convert".
  int64_t cpus = config.cpus;
  run->add_option("--cpus,--smp", cpus, "Number of vCPUs (1 to KVM's limit)")->capture_default_str();
  run->add_option("--memory,-m", memory, "Guest RAM: a number of MiB, or with a K/M/G suffix")->capture_default_str();
  run->add_option("--device", config.devices, "Add a device: TYPE[,KEY=VALUE...]");
  run->add_flag("--stats", config.print_stats, "At shutdown, print exits by reason and accesses by device and register");
  CLI::Option* stats_json =
      run->add_option("--stats-json", config.stats_json, "At shutdown, write the statistics as JSON to FILE (opened "
                      "before the guest starts)");
  run->add_flag("--no-console-input", [&](int64_t) { config.console_input = false; },
                "Do not feed standard input to the serial port");
  run->add_option("--poll-us", config.poll_us,
                  "Event loop: keep polling for device work this many microseconds before sleeping (0: never)")
      ->check(CLI::Range(0, 1'000'000))
      ->capture_default_str();
  std::string seccomp_mode = "on";
  run->add_option("--seccomp", seccomp_mode,
                  "on: once the guest runs, the VMM's threads may make only the system calls on their allow-lists "
                  "(docs/SECCOMP.md); off: no filter, for debugging")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  // Tests only: see that a forbidden call is caught, on a vCPU thread or on the main thread.
  run->add_option("--seccomp-test-violation", config.seccomp_test_violation)
      ->check(CLI::IsMember({"vcpu", "main"}))
      ->group("");
  run->add_flag("--verbose,-v", verbose, "Log informational messages");

  CLI::App* bench = app.add_subcommand("bench", "Run a benchmark and print its table");
  bench->require_subcommand(1);
  cli::BenchExitsOptions bench_exits_options;
  CLI::App* bench_exits = cli::add_bench_exits_subcommand(*bench, bench_exits_options);
  cli::BenchDiskOptions bench_disk_options;
  CLI::App* bench_disk = cli::add_bench_disk_subcommand(*bench, bench_disk_options);
  cli::BenchIdeOptions bench_ide_options;
  CLI::App* bench_ide = cli::add_bench_ide_subcommand(*bench, bench_ide_options);

  // CLI11 reads "--name=" (nothing after '=') as "--name" and takes the next argument as its value: --stats-json=
  // would write the statistics to a file named after the next option. Give it the empty value that was written.
  std::vector<std::string> args;
  for (int i = argc - 1; i >= 1; --i) {
    std::string_view arg = argv[i];
    if (arg.starts_with("--") && arg.size() > 3 && arg.back() == '=' && arg.find('=') == arg.size() - 1) {
      args.emplace_back("");
      args.emplace_back(arg.substr(0, arg.size() - 1));
    } else {
      args.emplace_back(arg);
    }
  }
  try {
    app.name(argc > 0 ? argv[0] : "iovmm");  // what parse(argc, argv) would have set, for --help
    app.parse(args);  // CLI11 takes them in reverse order
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string_view command = argc > 1 ? argv[1] : "";
    if (!command.empty() && command[0] != '-' && command != "run" && command != "bench") {
      return usage_error(fmt::format("unknown command '{}' (see 'iovmm --help')", argv[1]));
    }
    // CLI11 takes an unknown word after "bench" for a missing subcommand; say which word it was.
    std::string_view benchmark = argc > 2 ? argv[2] : "";
    if (command == "bench" && !benchmark.empty() && benchmark[0] != '-' && !bench_exits->parsed() &&
        !bench_disk->parsed() && !bench_ide->parsed()) {
      return usage_error(fmt::format("unknown benchmark '{}' (known: {}, {}, {}; see 'iovmm bench --help')",
                                     benchmark, bench_exits->get_name(), bench_disk->get_name(),
                                     bench_ide->get_name()));
    }
    return usage_error(fmt::format("{} (see 'iovmm {}--help')", e.what(), run->parsed() ? "run " : ""));
  }
  if (bench_exits->parsed()) return cli::run_bench_exits(bench_exits_options);
  if (bench_disk->parsed()) return cli::run_bench_disk(bench_disk_options);
  if (bench_ide->parsed()) return cli::run_bench_ide(bench_ide_options);
  if (verbose) log::set_level(log::Level::info);

  std::string size_error;
  auto memory_bytes = cli::parse_size(memory, &size_error);
  if (!memory_bytes) return usage_error(fmt::format("--memory {}: {}", memory, size_error));
  config.memory_bytes = *memory_bytes;
  if (cpus < 1 || cpus > UINT32_MAX) {
    return usage_error(fmt::format("--cpus {}: must be between 1 and KVM's limit", cpus));
  }
  config.cpus = static_cast<uint32_t>(cpus);
  config.seccomp = seccomp_mode == "on";
  // An empty path is not "no file": it is a file that cannot be written.
  if (stats_json->count() > 0 && config.stats_json.empty()) return usage_error("--stats-json: the path is empty");

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
