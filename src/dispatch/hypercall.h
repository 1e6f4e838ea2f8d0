// The paravirtual MMIO/PIO hypercall (docs/HYPERCALL.md): the guest names address, size, direction and value in
// registers, so the VMM performs the access without decoding an instruction or faulting on the device's address.
// The port carrier is a device on the port bus whose route performs the call with the registers of the vCPU whose
// exit is being handled (ExitContext), so the vCPU loop knows nothing of it.
#pragma once

#include <cstdint>
#include <string>

#include "io/bus.h"
#include "kvm/system.h"

namespace iovmm::dispatch {

inline constexpr uint16_t kHypercallPort = 0x0FF0;
inline constexpr uint32_t kHypercallSignature = 0x31564f49;  // "IOV1", read from the port by a guest probing for us

inline constexpr uint64_t kHypercallSizeMask = 0xf;
inline constexpr uint64_t kHypercallWrite = 1u << 8;
inline constexpr uint64_t kHypercallPio = 1u << 9;

enum HypercallStatus : uint64_t { kHypercallDone = 0, kHypercallUnmapped = 1, kHypercallBadRequest = 2 };

struct HypercallRegisters {
  uint64_t rax;  // value in (writes), value out (reads)
  uint64_t rbx;  // address or port
  uint64_t rcx;  // flags in, status out
};

// Whether KVM can deliver a guest's `vmcall` to user space here, and if not, why: it needs KVM_CAP_EXIT_HYPERCALL
// to allow a hypercall number of ours (upstream allows only KVM_HC_MAP_GPA_RANGE) or Xen HVM hypercall interception.
[[nodiscard]] std::string probe_vmcall_carrier(const kvm::System& system);

// Performs the access on the bus it names, counted under the `hypercall` path; updates rax (reads) and rcx.
void execute_hypercall(HypercallRegisters& regs, io::Bus& pio, io::Bus& mmio);

// What the vCPU thread handling an exit lends the hypercall carrier. Installed once per vCPU thread.
class ExitContext {
 public:
  virtual ~ExitContext() = default;
  [[nodiscard]] virtual HypercallRegisters load_registers() = 0;
  virtual void store_registers(const HypercallRegisters& regs) = 0;
  // The guest has found the port: from now on have KVM hand over the registers on every exit (KVM_CAP_SYNC_REGS)
  // instead of two ioctls per call. A guest that never looks costs nothing.
  virtual void expect_hypercalls() = 0;
};
void set_thread_exit_context(ExitContext* context);

// Maps the port (kHypercallPort, 4 bytes) on `pio` with its route: reads at offset 0 return the signature, writes
// there perform the call. Without an exit context on the thread (no vCPU), writes are ignored.
void attach_hypercall_port(io::Bus& pio, io::Bus& mmio);

}  // namespace iovmm::dispatch
