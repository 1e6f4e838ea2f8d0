// The VMM's exit statuses. Ours are even so that they never collide with isa-debug-exit's (v << 1) | 1.
#pragma once

namespace iovmm {

enum ExitStatus : int {
  kExitPoweredOff = 0,     // the guest powered off through ACPI (S5)
  kExitUsage = 2,          // bad options or kernel: nothing ran
  kExitFatal = 4,          // the VMM or KVM failed while running
  kExitTripleFault = 6,    // KVM_EXIT_SHUTDOWN
  kExitHaltedForever = 8,  // every vCPU halted with interrupts off, or waits for a SIPI nobody can send
  kExitSignalBase = 128,   // + signal number, as shells report it
};

}  // namespace iovmm
