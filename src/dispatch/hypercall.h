// The paravirtual MMIO/PIO hypercall (docs/HYPERCALL.md): the guest names address, size, direction and value in
// registers, so the VMM performs the access without decoding an instruction or faulting on the device's address.
// This part is carrier-independent; the vCPU runner reads the registers (KVM_CAP_SYNC_REGS) and writes results back.
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

}  // namespace iovmm::dispatch
