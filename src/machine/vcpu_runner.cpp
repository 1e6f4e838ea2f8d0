#include "machine/vcpu_runner.h"

#include <signal.h>

#include <cstring>
#include <fmt/core.h>

#include "common/log.h"
#include "machine/exit_status.h"

namespace iovmm {
namespace {
// SIGUSR1 is the kick. Its handler does nothing: its only job is to make KVM_RUN return EINTR.
constexpr int kKickSignal = SIGUSR1;
void ignore_kick(int) {}
constexpr uint64_t kRflagsIf = 1u << 9;
thread_local const VcpuRunner* current_runner = nullptr;
}  // namespace

const char* exit_reason_name(uint32_t reason) {
  switch (reason) {
    case KVM_EXIT_UNKNOWN: return "unknown";
    case KVM_EXIT_EXCEPTION: return "exception";
    case KVM_EXIT_IO: return "io";
    case KVM_EXIT_HYPERCALL: return "hypercall";
    case KVM_EXIT_DEBUG: return "debug";
    case KVM_EXIT_HLT: return "hlt";
    case KVM_EXIT_MMIO: return "mmio";
    case KVM_EXIT_IRQ_WINDOW_OPEN: return "irq_window_open";
    case KVM_EXIT_SHUTDOWN: return "shutdown";
    case KVM_EXIT_FAIL_ENTRY: return "fail_entry";
    case KVM_EXIT_INTR: return "intr";
    case KVM_EXIT_SET_TPR: return "set_tpr";
    case KVM_EXIT_INTERNAL_ERROR: return "internal_error";
    case KVM_EXIT_SYSTEM_EVENT: return "system_event";
    default: return "other";
  }
}

void VcpuRunner::install_kick_signal() {
  struct sigaction action {};
  action.sa_handler = ignore_kick;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
  sigaction(kKickSignal, &action, nullptr);
}

VcpuRunner::VcpuRunner(kvm::Vcpu& vcpu, io::Bus& pio, io::Bus& mmio, dispatch::Dispatcher& dispatcher,
                       StopController& stop)
    : vcpu_(vcpu),
      pio_(pio),
      mmio_(mmio),
      dispatcher_(dispatcher),
      ring_{vcpu.coalesced_ring(), vcpu.coalesced_ring_entries()},
      stop_(stop),
      stats_(vcpu.fd()) {
  blocking_stat_ = stats_.find("blocking");
}

const VcpuRunner* VcpuRunner::current() { return current_runner; }

uint64_t VcpuRunner::user_exits() const {
  uint64_t exits = 0;
  for (uint64_t count : exit_counts_) exits += count;
  return exits;
}

VcpuRunner::~VcpuRunner() { join(); }

void VcpuRunner::start(std::function<bool()> on_thread_start) {
  thread_ = std::thread([this, on_thread_start = std::move(on_thread_start)] {
    sigset_t kick_only;
    sigemptyset(&kick_only);
    sigaddset(&kick_only, kKickSignal);
    pthread_sigmask(SIG_UNBLOCK, &kick_only, nullptr);
    native_handle_.store(pthread_self(), std::memory_order_release);
    thread_ready_.store(true, std::memory_order_release);
    if (on_thread_start && !on_thread_start()) return;
    current_runner = this;
    dispatch::set_thread_exit_context(this);
    loop();
    dispatch::set_thread_exit_context(nullptr);
    current_runner = nullptr;
  });
}

void VcpuRunner::join() {
  if (thread_.joinable()) thread_.join();
}

void VcpuRunner::kick() {
  std::atomic_ref<uint8_t>(vcpu_.run_state()->immediate_exit).store(1, std::memory_order_release);
  if (thread_ready_.load(std::memory_order_acquire)) {
    pthread_kill(native_handle_.load(std::memory_order_acquire), kKickSignal);
  }
}

bool VcpuRunner::blocking_in_kernel() const { return blocking_stat_ >= 0 && stats_.read(blocking_stat_) != 0; }

void VcpuRunner::request_probe() {
  probe_requested_.store(true, std::memory_order_release);
  kick();
}

void VcpuRunner::answer_probe() {
  try {
    kvm_mp_state mp = vcpu_.mp_state();
    VcpuActivity activity = VcpuActivity::running;
    if (mp.mp_state == KVM_MP_STATE_UNINITIALIZED || mp.mp_state == KVM_MP_STATE_INIT_RECEIVED) {
      activity = VcpuActivity::waiting_for_sipi;
    } else if (mp.mp_state == KVM_MP_STATE_HALTED) {
      activity = (vcpu_.regs().rflags & kRflagsIf) ? VcpuActivity::halted_interrupts_on
                                                   : VcpuActivity::halted_interrupts_off;
    }
    activity_.store(activity, std::memory_order_release);
  } catch (const std::exception& e) {
    log::warn("vCPU {}: probing its state failed: {}", vcpu_.id(), e.what());
  }
  probes_answered_.fetch_add(1, std::memory_order_acq_rel);
}

void VcpuRunner::fail(std::string reason) { stop_.request(kExitFatal, fmt::format("vCPU {}: {}", vcpu_.id(), reason)); }

void VcpuRunner::loop() {
  while (!stop_.requested()) {
    int err = vcpu_.run();
    if (err == EINTR || err == EAGAIN) {
      std::atomic_ref<uint8_t>(vcpu_.run_state()->immediate_exit).store(0, std::memory_order_release);
      if (probe_requested_.exchange(false, std::memory_order_acq_rel)) answer_probe();
      continue;
    }
    if (err != 0) {
      fail(fmt::format("KVM_RUN: {}", std::strerror(err)));
      return;
    }
    activity_.store(VcpuActivity::running, std::memory_order_relaxed);
    dispatcher_.drain_coalesced(ring_);
    uint32_t reason = vcpu_.run_state()->exit_reason;
    ++exit_counts_[reason < kExitReasons ? reason : 0];
    try {
      if (!handle_exit()) return;
    } catch (const std::exception& e) {
      fail(e.what());
      return;
    }
  }
}

bool VcpuRunner::handle_exit() {
  kvm_run* run = vcpu_.run_state();
  switch (run->exit_reason) {
    case KVM_EXIT_IO:
      handle_pio();
      return true;
    case KVM_EXIT_MMIO:
      handle_mmio();
      return true;
    case KVM_EXIT_INTR:
    case KVM_EXIT_IRQ_WINDOW_OPEN:
      return true;
    case KVM_EXIT_HLT: {
      // Only without an in-kernel LAPIC; with one KVM halts the vCPU itself.
      if (!(vcpu_.regs().rflags & kRflagsIf)) {
        stop_.request(kExitHaltedForever, fmt::format("vCPU {}: halted with interrupts disabled", vcpu_.id()));
        return false;
      }
      return true;
    }
    case KVM_EXIT_SHUTDOWN: {
      auto regs = vcpu_.regs();
      stop_.request(kExitTripleFault, fmt::format("vCPU {}: guest triple-faulted (KVM_EXIT_SHUTDOWN) near rip {:#x}",
                                                  vcpu_.id(), regs.rip));
      return false;
    }
    case KVM_EXIT_SYSTEM_EVENT:
      if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN) {
        stop_.request(kExitPoweredOff, fmt::format("vCPU {}: guest requested shutdown", vcpu_.id()));
      } else {
        stop_.request(kExitFatal, fmt::format("vCPU {}: guest requested system event {} (reset is not supported)",
                                              vcpu_.id(), run->system_event.type));
      }
      return false;
    case KVM_EXIT_FAIL_ENTRY:
      fail(fmt::format("KVM_EXIT_FAIL_ENTRY, hardware reason {:#x}",
                       run->fail_entry.hardware_entry_failure_reason));
      return false;
    case KVM_EXIT_INTERNAL_ERROR: {
      std::string data;
      for (uint32_t i = 0; i < run->internal.ndata && i < 16; ++i) data += fmt::format(" {:#x}", run->internal.data[i]);
      auto regs = vcpu_.regs();
      fail(fmt::format("KVM_EXIT_INTERNAL_ERROR suberror {} near rip {:#x}{}", run->internal.suberror, regs.rip,
                       data.empty() ? "" : " data" + data));
      return false;
    }
    default:
      fail(fmt::format("unhandled exit reason {} ({})", run->exit_reason, exit_reason_name(run->exit_reason)));
      return false;
  }
}

// The hypercall port's view of this vCPU's registers: from kvm_run once the guest has found the port (KVM copies
// them on every exit from then on), otherwise through the ioctls. Either way KVM completes the `out` on re-entry
// without executing it again (tests/kvm: SyncRegsWrittenOnAPortExitReachTheGuestOnce).
dispatch::HypercallRegisters VcpuRunner::load_registers() {
  kvm_run* run = vcpu_.run_state();
  const kvm_regs regs = (run->kvm_valid_regs & KVM_SYNC_X86_REGS) ? run->s.regs.regs : vcpu_.regs();
  return {regs.rax, regs.rbx, regs.rcx};
}

void VcpuRunner::store_registers(const dispatch::HypercallRegisters& call) {
  kvm_run* run = vcpu_.run_state();
  if (run->kvm_valid_regs & KVM_SYNC_X86_REGS) {
    run->s.regs.regs.rax = call.rax;
    run->s.regs.regs.rcx = call.rcx;
    run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
    return;
  }
  kvm_regs regs = vcpu_.regs();
  regs.rax = call.rax;
  regs.rcx = call.rcx;
  vcpu_.set_regs(regs);
}

void VcpuRunner::expect_hypercalls() { vcpu_.set_sync_regs(KVM_SYNC_X86_REGS); }

void VcpuRunner::handle_pio() {
  kvm_run* run = vcpu_.run_state();
  const auto& io = run->io;
  uint8_t* data = reinterpret_cast<uint8_t*>(run) + io.data_offset;
  auto direction = io.direction == KVM_EXIT_IO_OUT ? io::Direction::write : io::Direction::read;
  if (io.count > 1) {
    // rep ins/outs: KVM hands over a whole chunk (up to a page) per exit.
    (void)pio_.transfer_string(pio_reader_, direction, io.port, io.size, io.count, data);
    return;
  }
  uint64_t value = 0;
  if (direction == io::Direction::write) {
    std::memcpy(&value, data, io.size);
    (void)pio_.write(pio_reader_, io.port, io.size, value);
  } else {
    (void)pio_.read(pio_reader_, io.port, io.size, value);
    std::memcpy(data, &value, io.size);
  }
}

void VcpuRunner::handle_mmio() {
  auto& mmio = vcpu_.run_state()->mmio;
  unsigned size = mmio.len <= 8 ? mmio.len : 8;
  uint64_t value = 0;
  if (mmio.is_write) {
    std::memcpy(&value, mmio.data, size);
    (void)mmio_.write(mmio_reader_, mmio.phys_addr, mmio.len, value);
  } else {
    (void)mmio_.read(mmio_reader_, mmio.phys_addr, mmio.len, value);
    std::memcpy(mmio.data, &value, size);
  }
}

}  // namespace iovmm
