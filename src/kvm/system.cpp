#include "kvm/system.h"

#include <fcntl.h>

#include <fmt/core.h>
#include <memory>

#include "kvm/ioctl.h"

namespace iovmm::kvm {

System::System(const char* path) : fd_(::open(path, O_RDWR | O_CLOEXEC)) {
  if (!fd_) {
    throw_errno(fmt::format("open {} (is KVM available and are you allowed to use it?)", path));
  }
  int version = IOVMM_KVM_IOCTL(fd(), KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) {
    throw Error(fmt::format("KVM_GET_API_VERSION: {} is version {}, iovmm needs {}", path, version, KVM_API_VERSION));
  }
  vcpu_mmap_size_ = static_cast<size_t>(IOVMM_KVM_IOCTL(fd(), KVM_GET_VCPU_MMAP_SIZE, 0));
}

int System::check_extension(int capability) const {
  int result = ::ioctl(fd(), KVM_CHECK_EXTENSION, capability);
  return result < 0 ? 0 : result;
}

void System::require(int capability, std::string_view name, std::string_view why) const {
  if (check_extension(capability) <= 0) {
    throw Error(fmt::format("KVM lacks {}, which iovmm needs for {}", name, why));
  }
}

int System::max_vcpus() const {
  int max = check_extension(KVM_CAP_MAX_VCPUS);
  return max > 0 ? max : check_extension(KVM_CAP_NR_VCPUS);
}

std::vector<kvm_cpuid_entry2> System::supported_cpuid() const {
  // The kernel says E2BIG until the buffer is large enough.
  for (size_t capacity = 64; capacity <= 4096; capacity *= 2) {
    size_t bytes = sizeof(kvm_cpuid2) + capacity * sizeof(kvm_cpuid_entry2);
    auto buffer = std::make_unique<uint8_t[]>(bytes);
    auto* cpuid = new (buffer.get()) kvm_cpuid2{};
    cpuid->nent = static_cast<uint32_t>(capacity);
    if (::ioctl(fd(), KVM_GET_SUPPORTED_CPUID, cpuid) == 0) {
      return {cpuid->entries, cpuid->entries + cpuid->nent};
    }
    if (errno != E2BIG) throw_errno("KVM_GET_SUPPORTED_CPUID");
  }
  throw Error("KVM_GET_SUPPORTED_CPUID: more than 4096 entries");
}

}  // namespace iovmm::kvm
