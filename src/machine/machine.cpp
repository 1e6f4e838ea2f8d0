#include "machine/machine.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <fmt/core.h>

#include <cstring>

#include "boot/kernel_loader.h"
#include "boot/layout.h"
#include "common/error.h"
#include "common/log.h"
#include "common/process_clock.h"
#include "machine/cpu_setup.h"
#include "machine/exit_status.h"
#include "dispatch/hypercall.h"
#include "machine/stats_report.h"

namespace iovmm {
namespace {
// KVM may need these pages for real-mode emulation (VMX without unrestricted guest); like QEMU, put them just below
// the BIOS area, outside RAM and every MMIO window.
constexpr uint64_t kIdentityMapAddress = 0xFEFFC000;
constexpr uint64_t kTssAddress = 0xFEFFD000;
constexpr auto kWatchdogPeriod = std::chrono::milliseconds(200);
constexpr int kDeadTicksBeforeStop = 3;

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}
}  // namespace

Machine::Machine(MachineConfig config) : config_(std::move(config)) {
  validate_config();
  create_vm();
  loop_.set_poll_budget(std::chrono::microseconds(config_.poll_us));
  registrar_ = std::make_unique<dispatch::VmRegistrar>(*vm_);
  dispatcher_ = std::make_unique<dispatch::Dispatcher>(*registrar_, pio_, mmio_, loop_);
  dispatch::attach_hypercall_port(pio_, mmio_);
  devices::PostPort::Observer on_marker;
  if (config_.print_stats || !config_.stats_json.empty()) on_marker = [this](uint8_t value) { note_marker(value); };
  platform_ = std::make_unique<Platform>(PlatformContext{*vm_, *memory_, pio_, mmio_, stop_, *dispatcher_, loop_,
                                                         *interrupts_, config_, std::move(on_marker)});
  boot::KernelConfig kernel{config_.kernel, platform_->kernel_cmdline(), config_.initrds, platform_->rsdp_address()};
  boot_ = boot::load_kernel(*memory_, kernel);
  create_vcpus();
  if (config_.seccomp && seccomp::sanitizer_build()) {
    log::info("seccomp: no filter in a sanitizer build (the runtime makes system calls of its own)");
  } else if (config_.seccomp) {
    seccomp_ = std::make_unique<seccomp::Filters>();
  }
}

Machine::~Machine() {
  stop_.request(kExitFatal, "machine destroyed");
  for (auto& runner : runners_) runner->join();
}

void Machine::validate_config() {
  int max = system_.max_vcpus();
  if (config_.cpus < 1 || static_cast<int>(config_.cpus) > max) {
    throw UsageError(fmt::format("--cpus {}: must be between 1 and {} (KVM's limit)", config_.cpus, max));
  }
  if (config_.cpus > 255) throw UsageError(fmt::format("--cpus {}: the xAPIC platform has at most 255", config_.cpus));
  boot::check_ram_size(config_.memory_bytes);
  system_.require(KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "the in-kernel PIC, IOAPIC and LAPICs");
  system_.require(KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest RAM");
  system_.require(KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "stopping vCPUs without races");
  system_.require(KVM_CAP_BINARY_STATS_FD, "KVM_CAP_BINARY_STATS_FD", "statistics and halt detection");
  if (!config_.stats_json.empty()) stats_file_ = std::make_unique<OutputFile>(config_.stats_json, "--stats-json");
}

void Machine::create_vm() {
  memory_ = std::make_unique<GuestMemory>(boot::pc_ram_ranges(config_.memory_bytes));
  vm_ = std::make_unique<kvm::Vm>(system_);
  uint32_t slot = 0;
  for (const auto& region : memory_->regions()) vm_->set_memory_region(slot++, region.gpa, region.size, region.host);
  vm_->set_tss_and_identity_map(kTssAddress, kIdentityMapAddress);
  vm_->create_irqchip();
  interrupts_ = std::make_unique<InterruptRouter>(*vm_);
  if (system_.check_extension(KVM_CAP_PIT2) > 0) vm_->create_pit();
}

void Machine::create_vcpus() {
  for (uint32_t id = 0; id < config_.cpus; ++id) {
    auto vcpu = std::make_unique<kvm::Vcpu>(*vm_, id);
    set_vcpu_cpuid(*vcpu, system_, config_.cpus);
    // The BSP enters the kernel; APs stay in KVM's wait-for-SIPI state until the guest starts them.
    if (id == 0) apply_entry_state(*vcpu, boot_.cpu);
    vcpus_.push_back(std::move(vcpu));
  }
  for (auto& vcpu : vcpus_) runners_.push_back(std::make_unique<VcpuRunner>(*vcpu, pio_, mmio_, *dispatcher_, stop_));
  probes_seen_.assign(runners_.size(), 0);
}

// What a benchmark needs to attribute exits and accesses to one measured loop: a snapshot at each marker, taken on
// the writing vCPU's thread.
void Machine::note_marker(uint8_t value) {
  const VcpuRunner* runner = VcpuRunner::current();
  if (!runner) return;
  nlohmann::json marker = {{"vcpu", runner->id()}, {"value", value}, {"user_exits", runner->user_exits()},
                           {"devices", device_accesses(pio_, mmio_)}};
  std::lock_guard lock(markers_mutex_);
  markers_.push_back(std::move(marker));
}

// A guest that halts with interrupts off (or whose every vCPU waits for a SIPI nobody can send) would block in
// KVM forever. Each tick, vCPUs that KVM reports as blocking are asked for their state; when all of them have
// been dead for several ticks in a row, the run ends with its own status.
void Machine::watch_for_halted_vcpus() {
  bool all_dead = true;
  for (size_t i = 0; i < runners_.size(); ++i) {
    VcpuRunner& runner = *runners_[i];
    if (!runner.blocking_in_kernel()) {
      all_dead = false;
      continue;
    }
    uint64_t answered = runner.probes_answered();
    bool fresh = answered != probes_seen_[i];
    probes_seen_[i] = answered;
    VcpuActivity activity = runner.last_activity();
    if (!fresh || (activity != VcpuActivity::halted_interrupts_off && activity != VcpuActivity::waiting_for_sipi)) {
      all_dead = false;
    }
    runner.request_probe();
  }
  dead_watchdog_ticks_ = all_dead ? dead_watchdog_ticks_ + 1 : 0;
  if (dead_watchdog_ticks_ >= kDeadTicksBeforeStop) {
    stop_.request(kExitHaltedForever,
                  "guest halted forever: every vCPU is halted with interrupts disabled or waiting for a SIPI");
  }
}

// After start-up, before the first KVM_RUN: the process filter on every thread (so on this one, the event loop),
// then the vCPU threads, which inherit it and add their own before they enter the guest.
void Machine::start_vcpus() {
  if (!seccomp_) {
    for (auto& runner : runners_) runner->start();
    return;
  }
  seccomp_->install_process();
  const bool vcpu_violation = config_.seccomp_test_violation == "vcpu";
  for (auto& runner : runners_) {
    runner->start([this, vcpu_violation, id = runner->id()] {
      if (const int err = seccomp_->install_vcpu(static_cast<int>(id)); err != 0) {
        stop_.request(kExitFatal, fmt::format("vCPU {}: seccomp: installing its filter: {} (--seccomp off runs "
                                              "without it)", id, std::strerror(err)));
        return false;
      }
      if (vcpu_violation && id == 0) seccomp::make_forbidden_call();
      return true;
    });
  }
  if (config_.seccomp_test_violation == "main") seccomp::make_forbidden_call();
}

int Machine::run() {
  // Signals: SIGINT/SIGTERM/SIGHUP arrive through a signalfd on the event loop, so every thread blocks them; the
  // vCPU kick signal is blocked everywhere but in vCPU threads (they unblock it themselves).
  sigset_t blocked = stop_signals();
  sigaddset(&blocked, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &blocked, nullptr);
  VcpuRunner::install_kick_signal();
  sigset_t signals = stop_signals();
  Fd signal_fd(::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signal_fd) throw_errno("signalfd");
  loop_.add(signal_fd.get(), EPOLLIN, [&](uint32_t) {
    signalfd_siginfo info{};
    if (::read(signal_fd.get(), &info, sizeof info) == sizeof info) {
      stop_.request(kExitSignalBase + static_cast<int>(info.ssi_signo),
                    fmt::format("stopped by signal {}", strsignal(static_cast<int>(info.ssi_signo))));
    }
  });
  loop_.add(stop_.eventfd(), EPOLLIN, [](uint32_t) {});

  Fd watchdog(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!watchdog) throw_errno("timerfd_create");
  itimerspec period{};
  period.it_interval.tv_nsec = std::chrono::nanoseconds(kWatchdogPeriod).count();
  period.it_value = period.it_interval;
  timerfd_settime(watchdog.get(), 0, &period, nullptr);
  loop_.add(watchdog.get(), EPOLLIN, [&](uint32_t) {
    uint64_t expirations;
    [[maybe_unused]] auto n = ::read(watchdog.get(), &expirations, sizeof expirations);
    watch_for_halted_vcpus();
  });
  platform_->attach_console(loop_);

  stop_.set_kicker([this] {
    for (auto& runner : runners_) runner->kick();
  });
  if (stats_file_) stats_file_->keep();
  startup_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - process_start()).count();
  start_vcpus();
  try {
    loop_.run([&] { return !stop_.requested(); });
  } catch (const std::exception& e) {
    stop_.request(kExitFatal, e.what());
  }
  for (auto& runner : runners_) runner->join();
  platform_->detach_console(loop_);

  int status = stop_.status();
  std::string reason = stop_.reason();
  if (status == kExitFatal || status == kExitTripleFault || status == kExitHaltedForever) {
    log::error("{}", reason);
  } else {
    log::info("{}", reason);
  }
  uint64_t unmapped = pio_.unmapped_reads() + pio_.unmapped_writes() + mmio_.unmapped_reads() + mmio_.unmapped_writes();
  if (unmapped > 0) {
    log::warn("the guest made {} accesses that reached no device (all-ones reads, dropped writes)", unmapped);
  }
  // Nothing reads the signalfd any more: SIGINT and SIGTERM end the process as they would any program's, so that a
  // statistics write blocked on a pipe nobody reads can still be stopped.
  sigset_t stops = stop_signals();
  pthread_sigmask(SIG_UNBLOCK, &stops, nullptr);
  if (auto failure = write_stats()) {
    // The results are part of what was asked for: losing them is a failure of the run, whatever the guest did.
    log::error("{}", *failure);
    return kExitFatal;
  }
  return status;
}

std::optional<std::string> Machine::write_stats() {
  if (!config_.print_stats && !stats_file_) return std::nullopt;
  std::lock_guard lock(markers_mutex_);
  StatsInput input{config_, startup_ms_, stop_.status(), stop_.reason(), pio_, mmio_, runners_, *vm_,
                   dispatch::probe_vmcall_carrier(system_), markers_};
  nlohmann::json stats = collect_stats(input);
  if (config_.print_stats) print_stats(stats);
  if (stats_file_) return write_stats_json(stats, *stats_file_);
  return std::nullopt;
}

}  // namespace iovmm
