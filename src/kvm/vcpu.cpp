#include "kvm/vcpu.h"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <fmt/core.h>
#include <memory>

#include "kvm/ioctl.h"

namespace iovmm::kvm {

Vcpu::Vcpu(const Vm& vm, uint32_t id) : id_(id), fd_(IOVMM_KVM_IOCTL(vm.fd(), KVM_CREATE_VCPU, id)) {
  mmap_size_ = vm.system().vcpu_mmap_size();
  void* map = ::mmap(nullptr, mmap_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
  if (map == MAP_FAILED) throw_errno(fmt::format("mmap of vCPU {} kvm_run", id));
  run_ = static_cast<kvm_run*>(map);
  int ring_page = vm.system().check_extension(KVM_CAP_COALESCED_MMIO);
  long page_size = ::sysconf(_SC_PAGESIZE);
  if (ring_page > 0 && static_cast<size_t>(ring_page + 1) * static_cast<size_t>(page_size) <= mmap_size_) {
    ring_ = reinterpret_cast<kvm_coalesced_mmio_ring*>(static_cast<uint8_t*>(map) + ring_page * page_size);
    ring_entries_ = static_cast<uint32_t>((page_size - sizeof(kvm_coalesced_mmio_ring)) / sizeof(kvm_coalesced_mmio));
  }
}

Vcpu::~Vcpu() {
  if (run_) ::munmap(run_, mmap_size_);
}

int Vcpu::run() { return ::ioctl(fd_.get(), KVM_RUN, 0) == 0 ? 0 : errno; }

kvm_regs Vcpu::regs() const {
  kvm_regs regs{};
  IOVMM_KVM_IOCTL(fd_.get(), KVM_GET_REGS, &regs);
  return regs;
}
void Vcpu::set_regs(const kvm_regs& regs) { IOVMM_KVM_IOCTL(fd_.get(), KVM_SET_REGS, &regs); }

kvm_sregs Vcpu::sregs() const {
  kvm_sregs sregs{};
  IOVMM_KVM_IOCTL(fd_.get(), KVM_GET_SREGS, &sregs);
  return sregs;
}
void Vcpu::set_sregs(const kvm_sregs& sregs) { IOVMM_KVM_IOCTL(fd_.get(), KVM_SET_SREGS, &sregs); }

kvm_mp_state Vcpu::mp_state() const {
  kvm_mp_state state{};
  IOVMM_KVM_IOCTL(fd_.get(), KVM_GET_MP_STATE, &state);
  return state;
}

void Vcpu::set_cpuid(const std::vector<kvm_cpuid_entry2>& entries) {
  size_t bytes = sizeof(kvm_cpuid2) + entries.size() * sizeof(kvm_cpuid_entry2);
  auto buffer = std::make_unique<uint8_t[]>(bytes);
  auto* cpuid = new (buffer.get()) kvm_cpuid2{};
  cpuid->nent = static_cast<uint32_t>(entries.size());
  std::copy(entries.begin(), entries.end(), cpuid->entries);
  IOVMM_KVM_IOCTL(fd_.get(), KVM_SET_CPUID2, cpuid);
}

void Vcpu::set_msrs(const std::vector<kvm_msr_entry>& msrs) {
  size_t bytes = sizeof(kvm_msrs) + msrs.size() * sizeof(kvm_msr_entry);
  auto buffer = std::make_unique<uint8_t[]>(bytes);
  auto* list = new (buffer.get()) kvm_msrs{};
  list->nmsrs = static_cast<uint32_t>(msrs.size());
  std::copy(msrs.begin(), msrs.end(), list->entries);
  int written = IOVMM_KVM_IOCTL(fd_.get(), KVM_SET_MSRS, list);
  if (static_cast<size_t>(written) != msrs.size()) {
    throw Error(fmt::format("KVM_SET_MSRS: vCPU {} refused MSR {:#x}", id_, msrs[static_cast<size_t>(written)].index));
  }
}

}  // namespace iovmm::kvm
