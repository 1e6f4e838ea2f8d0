// A whole virtual machine: guest memory, the KVM VM and vCPUs, the two buses, the platform devices, the event
// loop, and how it all stops. Construction validates everything and loads the kernel; run() is the only place
// vCPUs execute.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>
#include <vector>

#include "boot/boot_setup.h"
#include "common/output_file.h"
#include "io/bus.h"
#include "kvm/system.h"
#include "kvm/vcpu.h"
#include "kvm/vm.h"
#include "machine/config.h"
#include "dispatch/dispatcher.h"
#include "dispatch/registrar.h"
#include "machine/event_loop.h"
#include "machine/interrupts.h"
#include "machine/platform.h"
#include "machine/seccomp.h"
#include "machine/stop.h"
#include "machine/vcpu_runner.h"
#include "memory/guest_memory.h"

namespace iovmm {

class Machine {
 public:
  // Throws UsageError for anything the user can fix (options, kernel file), Error for KVM or host failures.
  explicit Machine(MachineConfig config);
  ~Machine();

  // Runs the guest until it stops; returns the process exit status (see exit_status.h).
  [[nodiscard]] int run();

  // For tests and stats.
  [[nodiscard]] const boot::BootSetup& boot_setup() const { return boot_; }
  [[nodiscard]] GuestMemory& memory() { return *memory_; }

 private:
  void validate_config();
  void create_vm();
  void create_vcpus();
  void watch_for_halted_vcpus();
  void start_vcpus();
  void note_marker(uint8_t value);
  // The error line when --stats-json could not be written, else nullopt.
  [[nodiscard]] std::optional<std::string> write_stats();

  MachineConfig config_;
  // Compiled at start-up, installed by run(); null with --seccomp off or in a sanitizer build.
  std::unique_ptr<seccomp::Filters> seccomp_;
  // --stats-json, opened before anything runs.
  std::unique_ptr<OutputFile> stats_file_;
  kvm::System system_;
  std::unique_ptr<GuestMemory> memory_;
  std::unique_ptr<kvm::Vm> vm_;
  // Before the buses: devices they hold keep MSI vectors until the buses go.
  std::unique_ptr<InterruptRouter> interrupts_;
  io::Bus pio_{io::Space::pio};
  io::Bus mmio_{io::Space::mmio};
  StopController stop_;
  EventLoop loop_;
  std::unique_ptr<dispatch::VmRegistrar> registrar_;
  std::unique_ptr<dispatch::Dispatcher> dispatcher_;
  std::unique_ptr<Platform> platform_;
  boot::BootSetup boot_;
  std::vector<std::unique_ptr<kvm::Vcpu>> vcpus_;
  std::vector<std::unique_ptr<VcpuRunner>> runners_;
  int dead_watchdog_ticks_ = 0;
  std::vector<uint64_t> probes_seen_;
  std::mutex markers_mutex_;
  nlohmann::json markers_ = nlohmann::json::array();
  double startup_ms_ = 0;
};

}  // namespace iovmm
