// Everything the command line decides about a machine, already validated for syntax; the machine checks the rest
// (against KVM's limits and the kernel file) before any vCPU runs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace iovmm {

struct MachineConfig {
  std::string kernel;
  std::string cmdline;
  std::vector<std::string> initrds;  // Multiboot modules may carry arguments: "file arg..."
  uint32_t cpus = 1;
  uint64_t memory_bytes = 128ull << 20;  // QEMU's default
  std::vector<std::string> devices;      // --device specs
  bool print_stats = false;
  std::string stats_json;  // path, or empty
  bool console_input = true;  // feed stdin to the UART
  uint32_t poll_us = 0;       // event loop: look for more work this long before sleeping (EventLoop::set_poll_budget)
  bool seccomp = true;        // the VMM's own allow-lists once the guest runs (machine/seccomp.h)
  // Tests only: "vcpu" or "main" makes that thread do a forbidden system call once its filter is in.
  std::string seccomp_test_violation;
};

}  // namespace iovmm
