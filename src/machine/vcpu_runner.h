// One vCPU's thread: KVM_RUN, then route the exit (port I/O and MMIO to the buses; shutdown, failures and halts to
// the stop controller). Nothing thrown escapes the loop: a failure becomes a stop request with the reason.
#pragma once

#include <pthread.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "io/bus.h"
#include "kvm/stats.h"
#include "kvm/vcpu.h"
#include "dispatch/dispatcher.h"
#include "dispatch/hypercall.h"
#include "machine/stop.h"

namespace iovmm {

// What a watchdog learns about a vCPU when it asks.
enum class VcpuActivity : uint8_t {
  running,
  halted_interrupts_off,  // hlt with RFLAGS.IF clear: only an NMI could wake it, and we send none
  waiting_for_sipi,       // an AP never started (or parked by INIT)
  halted_interrupts_on,
};

class VcpuRunner final : private dispatch::ExitContext {
 public:
  static constexpr size_t kExitReasons = 64;

  VcpuRunner(kvm::Vcpu& vcpu, io::Bus& pio, io::Bus& mmio, dispatch::Dispatcher& dispatcher, StopController& stop);
  ~VcpuRunner();

  // `on_thread_start` runs on the new thread before its first KVM_RUN (the vCPU's seccomp filter); false: it has
  // requested a stop, and the vCPU never runs.
  void start(std::function<bool()> on_thread_start = {});
  void join();
  // Gets the thread out of KVM_RUN soon (a signal plus kvm_run.immediate_exit). Safe from any thread.
  void kick();
  // True while the vCPU is blocked inside KVM (halted or waiting for a SIPI), per KVM's own statistics.
  [[nodiscard]] bool blocking_in_kernel() const;
  // Kicks the vCPU and has it report its state on its own thread; the answer arrives in last_activity().
  void request_probe();
  [[nodiscard]] VcpuActivity last_activity() const { return activity_.load(std::memory_order_acquire); }
  [[nodiscard]] uint64_t probes_answered() const { return probes_answered_.load(std::memory_order_acquire); }

  [[nodiscard]] uint32_t id() const { return vcpu_.id(); }
  // Valid after join().
  [[nodiscard]] const std::array<uint64_t, kExitReasons>& exit_counts() const { return exit_counts_; }
  [[nodiscard]] const kvm::Stats& kvm_stats() const { return stats_; }

  // This vCPU's user-space exits so far (its own thread's view: call it from code running on behalf of one of its
  // exits, such as a device write).
  [[nodiscard]] uint64_t user_exits() const;
  // The runner whose exit the calling thread is handling, or null off vCPU threads.
  [[nodiscard]] static const VcpuRunner* current();

  // Installs the no-op signal handler used for kicks; call once per process before any runner starts.
  static void install_kick_signal();

 private:
  void loop();
  [[nodiscard]] bool handle_exit();  // false: stop the loop
  void handle_pio();
  void handle_mmio();
  // dispatch::ExitContext, for the hypercall port.
  [[nodiscard]] dispatch::HypercallRegisters load_registers() override;
  void store_registers(const dispatch::HypercallRegisters& regs) override;
  void expect_hypercalls() override;
  void answer_probe();
  void fail(std::string reason);

  kvm::Vcpu& vcpu_;
  io::Bus& pio_;
  io::Bus& mmio_;
  io::Bus::Reader pio_reader_{pio_};
  io::Bus::Reader mmio_reader_{mmio_};
  dispatch::Dispatcher& dispatcher_;
  dispatch::CoalescedRing ring_;
  StopController& stop_;
  kvm::Stats stats_;
  int blocking_stat_ = -1;
  std::thread thread_;
  std::atomic<pthread_t> native_handle_{};
  std::atomic<bool> thread_ready_{false};
  std::atomic<bool> probe_requested_{false};
  std::atomic<uint64_t> probes_answered_{0};
  std::atomic<VcpuActivity> activity_{VcpuActivity::running};
  std::array<uint64_t, kExitReasons> exit_counts_{};
};

[[nodiscard]] const char* exit_reason_name(uint32_t reason);

}  // namespace iovmm
