// One KVM vCPU: its fd, the shared kvm_run page, register access, CPUID/MSRs, and the coalesced MMIO/PIO ring that
// KVM maps alongside kvm_run.
#pragma once

#include "kvm/uapi.h"

#include <cstdint>
#include <functional>
#include <vector>

#include "common/fd.h"
#include "kvm/vm.h"

namespace iovmm::kvm {

class Vcpu {
 public:
  Vcpu(const Vm& vm, uint32_t id);
  Vcpu(const Vcpu&) = delete;
  Vcpu& operator=(const Vcpu&) = delete;
  ~Vcpu();

  [[nodiscard]] uint32_t id() const { return id_; }
  [[nodiscard]] int fd() const { return fd_.get(); }
  [[nodiscard]] kvm_run* run_state() { return run_; }

  // KVM_RUN. Never throws: returns 0, or the errno (EINTR when kicked, anything else is fatal for the caller).
  [[nodiscard]] int run();
  // Makes the next (or current) KVM_RUN return EINTR at once; the kick itself is a signal sent by the caller.
  void set_immediate_exit(bool on) { run_->immediate_exit = on ? 1 : 0; }

  [[nodiscard]] kvm_regs regs() const;
  void set_regs(const kvm_regs& regs);
  [[nodiscard]] kvm_sregs sregs() const;
  void set_sregs(const kvm_sregs& sregs);
  [[nodiscard]] kvm_mp_state mp_state() const;
  void set_cpuid(const std::vector<kvm_cpuid_entry2>& entries);
  void set_msrs(const std::vector<kvm_msr_entry>& msrs);
  // Registers KVM copies into kvm_run on every exit (KVM_CAP_SYNC_REGS), saving a KVM_GET_REGS on the exit path.
  void set_sync_regs(uint64_t kvm_valid_regs) { run_->kvm_valid_regs = kvm_valid_regs; }

  // Coalesced MMIO/PIO ring KVM maps after kvm_run (null when KVM has none), and how many entries it holds. The ring
  // is shared by all vCPUs of a VM; the dispatch layer drains it.
  [[nodiscard]] kvm_coalesced_mmio_ring* coalesced_ring() const { return ring_; }
  [[nodiscard]] uint32_t coalesced_ring_entries() const { return ring_entries_; }

 private:
  uint32_t id_;
  Fd fd_;
  kvm_run* run_ = nullptr;
  size_t mmap_size_ = 0;
  kvm_coalesced_mmio_ring* ring_ = nullptr;
  uint32_t ring_entries_ = 0;
};

}  // namespace iovmm::kvm
