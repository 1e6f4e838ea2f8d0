// /dev/kvm: API version, capabilities, the vCPU mmap size and the host's supported CPUID.
#pragma once

#include "kvm/uapi.h"

#include <string_view>
#include <vector>

#include "common/fd.h"

namespace iovmm::kvm {

class System {
 public:
  // Throws Error with a hint when /dev/kvm is missing or not accessible.
  explicit System(const char* path = "/dev/kvm");

  [[nodiscard]] int fd() const { return fd_.get(); }
  [[nodiscard]] int check_extension(int capability) const;
  // Throws Error("KVM lacks <name>, which iovmm needs for <why>") when the capability is absent.
  void require(int capability, std::string_view name, std::string_view why) const;
  [[nodiscard]] size_t vcpu_mmap_size() const { return vcpu_mmap_size_; }
  [[nodiscard]] int max_vcpus() const;
  [[nodiscard]] std::vector<kvm_cpuid_entry2> supported_cpuid() const;

 private:
  Fd fd_;
  size_t vcpu_mmap_size_ = 0;
};

}  // namespace iovmm::kvm
