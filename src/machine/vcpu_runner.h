// One vCPU's thread: KVM_RUN, then route the exit (port I/O and MMIO to the buses; shutdown, failures and halts to
// the stop controller). Nothing thrown escapes the loop: a failure becomes a stop request with the reason.
#pragma once

#include <pthread.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <functional>
#include <thread>

#include "io/bus.h"
#include "kvm/stats.h"
#include "kvm/vcpu.h"
#include "machine/dispatcher.h"
#include "machine/stop.h"

namespace iovmm {

// What a watchdog learns about a vCPU when it asks.
enum class VcpuActivity : uint8_t {
  running,
  halted_interrupts_off,  // hlt with RFLAGS.IF clear: only an NMI could wake it, and we send none
  waiting_for_sipi,       // an AP never started (or parked by INIT)
  halted_interrupts_on,
};

class VcpuRunner {
 public:
  static constexpr size_t kExitReasons = 64;

  VcpuRunner(kvm::Vcpu& vcpu, io::Bus& pio, io::Bus& mmio, Dispatcher& dispatcher, StopController& stop);
  ~VcpuRunner();

  void start();
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

  // Benchmark markers: a guest writes 0xB0 to port 0x80 before a measured loop and 0xE0 after it (the same
  // markers QEMU's kvm_pio trace shows). The handler learns the value and this vCPU's user-space exits so far,
  // on this vCPU's thread, before the write goes on to the bus. Set before start().
  static constexpr uint16_t kMarkerPort = 0x80;
  static constexpr uint8_t kMarkerBegin = 0xB0;
  static constexpr uint8_t kMarkerEnd = 0xE0;
  using MarkerHandler = std::function<void(uint32_t vcpu, uint8_t value, uint64_t user_exits)>;
  void set_marker_handler(MarkerHandler handler) { marker_handler_ = std::move(handler); }

  // Installs the no-op signal handler used for kicks; call once per process before any runner starts.
  static void install_kick_signal();

 private:
  void loop();
  [[nodiscard]] bool handle_exit();  // false: stop the loop
  void handle_pio();
  void handle_mmio();
  void handle_hypercall_port();
  void answer_probe();
  void fail(std::string reason);

  kvm::Vcpu& vcpu_;
  io::Bus& pio_;
  io::Bus& mmio_;
  Dispatcher& dispatcher_;
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
  MarkerHandler marker_handler_;
};

[[nodiscard]] const char* exit_reason_name(uint32_t reason);

}  // namespace iovmm
