// What the KVM-side paths ask of KVM: coalesced zones and ioeventfds, registered and removed as windows come and
// go. An interface so that the backends run unchanged against a fake in unit tests and fuzz targets.
#pragma once

#include <cstdint>

#include "kvm/vm.h"

namespace iovmm::dispatch {

class KvmRegistrar {
 public:
  virtual ~KvmRegistrar() = default;
  virtual void register_coalesced(kvm::IoSpace space, uint64_t addr, uint32_t size) = 0;
  virtual void unregister_coalesced(kvm::IoSpace space, uint64_t addr, uint32_t size) = 0;
  virtual void add_ioeventfd(const kvm::IoeventfdSpec& spec, int eventfd) = 0;
  virtual void remove_ioeventfd(const kvm::IoeventfdSpec& spec, int eventfd) = 0;
};

// The real one: a KVM VM.
class VmRegistrar final : public KvmRegistrar {
 public:
  explicit VmRegistrar(kvm::Vm& vm) : vm_(vm) {}
  void register_coalesced(kvm::IoSpace space, uint64_t addr, uint32_t size) override {
    vm_.register_coalesced(space, addr, size);
  }
  void unregister_coalesced(kvm::IoSpace space, uint64_t addr, uint32_t size) override {
    vm_.unregister_coalesced(space, addr, size);
  }
  void add_ioeventfd(const kvm::IoeventfdSpec& spec, int eventfd) override { vm_.add_ioeventfd(spec, eventfd); }
  void remove_ioeventfd(const kvm::IoeventfdSpec& spec, int eventfd) override { vm_.remove_ioeventfd(spec, eventfd); }

 private:
  kvm::Vm& vm_;
};

}  // namespace iovmm::dispatch
