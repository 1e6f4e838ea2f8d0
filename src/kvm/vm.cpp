#include "kvm/vm.h"

#include <cstring>
#include <vector>

#include <fmt/core.h>

#include "kvm/ioctl.h"

namespace iovmm::kvm {

Vm::Vm(const System& system) : system_(system), fd_(IOVMM_KVM_IOCTL(system.fd(), KVM_CREATE_VM, 0)) {}

void Vm::set_memory_region(uint32_t slot, uint64_t gpa, uint64_t size, void* host, uint32_t flags) {
  kvm_userspace_memory_region region{};
  region.slot = slot;
  region.flags = flags;
  region.guest_phys_addr = gpa;
  region.memory_size = size;
  region.userspace_addr = reinterpret_cast<uint64_t>(host);
  if (::ioctl(fd(), KVM_SET_USER_MEMORY_REGION, &region) != 0) {
    throw_errno(fmt::format("KVM_SET_USER_MEMORY_REGION slot {} at {:#x}+{:#x}", slot, gpa, size));
  }
}

void Vm::create_irqchip() { IOVMM_KVM_IOCTL(fd(), KVM_CREATE_IRQCHIP, 0); }

void Vm::create_pit() {
  kvm_pit_config config{};
  IOVMM_KVM_IOCTL(fd(), KVM_CREATE_PIT2, &config);
}

void Vm::set_tss_and_identity_map(uint64_t tss_addr, uint64_t identity_map_addr) {
  if (system_.check_extension(KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0) {
    IOVMM_KVM_IOCTL(fd(), KVM_SET_IDENTITY_MAP_ADDR, &identity_map_addr);
  }
  if (system_.check_extension(KVM_CAP_SET_TSS_ADDR) > 0) {
    IOVMM_KVM_IOCTL(fd(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(tss_addr));
  }
}

void Vm::set_irq_line(uint32_t gsi, bool level) {
  kvm_irq_level irq{};
  irq.irq = gsi;
  irq.level = level ? 1 : 0;
  if (::ioctl(fd(), KVM_IRQ_LINE, &irq) != 0) throw_errno(fmt::format("KVM_IRQ_LINE gsi {}", gsi));
}

void Vm::set_gsi_routing(std::span<const MsiRoute> msi_routes) {
  // The PIC covers GSIs 0-15 (two chips of 8 pins; KVM skips the cascade pin 2), the IOAPIC 0-23.
  std::vector<kvm_irq_routing_entry> entries;
  for (uint32_t gsi = 0; gsi < kIrqchipGsiCount; ++gsi) {
    if (gsi < 16 && gsi != 2) {
      kvm_irq_routing_entry pic{};
      pic.gsi = gsi;
      pic.type = KVM_IRQ_ROUTING_IRQCHIP;
      pic.u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
      pic.u.irqchip.pin = gsi % 8;
      entries.push_back(pic);
    }
    kvm_irq_routing_entry ioapic{};
    ioapic.gsi = gsi;
    ioapic.type = KVM_IRQ_ROUTING_IRQCHIP;
    ioapic.u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
    // KVM's default table wires ISA IRQ 0 to IOAPIC pin 2 (the PC's interrupt source override), as the MADT says.
    ioapic.u.irqchip.pin = gsi == 0 ? 2 : gsi;
    entries.push_back(ioapic);
  }
  for (const auto& route : msi_routes) {
    kvm_irq_routing_entry msi{};
    msi.gsi = route.gsi;
    msi.type = KVM_IRQ_ROUTING_MSI;
    msi.u.msi.address_lo = static_cast<uint32_t>(route.address);
    msi.u.msi.address_hi = static_cast<uint32_t>(route.address >> 32);
    msi.u.msi.data = route.data;
    entries.push_back(msi);
  }
  std::vector<uint8_t> buffer(sizeof(kvm_irq_routing) + entries.size() * sizeof(kvm_irq_routing_entry));
  auto* table = reinterpret_cast<kvm_irq_routing*>(buffer.data());
  table->nr = static_cast<uint32_t>(entries.size());
  std::memcpy(buffer.data() + sizeof(kvm_irq_routing), entries.data(), entries.size() * sizeof(kvm_irq_routing_entry));
  if (::ioctl(fd(), KVM_SET_GSI_ROUTING, table) != 0) {
    throw_errno(fmt::format("KVM_SET_GSI_ROUTING ({} routes)", entries.size()));
  }
}

namespace {
kvm_ioeventfd to_kvm(const IoeventfdSpec& spec, int eventfd, uint32_t extra_flags) {
  kvm_ioeventfd io{};
  io.addr = spec.addr;
  io.len = spec.len;
  io.fd = eventfd;
  io.datamatch = spec.data;
  io.flags = extra_flags | (spec.space == IoSpace::pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
             (spec.datamatch ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0);
  return io;
}
}  // namespace

void Vm::add_ioeventfd(const IoeventfdSpec& spec, int eventfd) {
  kvm_ioeventfd io = to_kvm(spec, eventfd, 0);
  if (::ioctl(fd(), KVM_IOEVENTFD, &io) != 0) {
    throw_errno(fmt::format("KVM_IOEVENTFD assign {} {:#x} len {}", spec.space == IoSpace::pio ? "pio" : "mmio",
                            spec.addr, spec.len));
  }
}

void Vm::remove_ioeventfd(const IoeventfdSpec& spec, int eventfd) {
  kvm_ioeventfd io = to_kvm(spec, eventfd, KVM_IOEVENTFD_FLAG_DEASSIGN);
  if (::ioctl(fd(), KVM_IOEVENTFD, &io) != 0) {
    throw_errno(fmt::format("KVM_IOEVENTFD deassign {:#x} len {}", spec.addr, spec.len));
  }
}

void Vm::add_irqfd(uint32_t gsi, int eventfd, int resample_eventfd) {
  kvm_irqfd irqfd{};
  irqfd.fd = static_cast<uint32_t>(eventfd);
  irqfd.gsi = gsi;
  if (resample_eventfd >= 0) {
    irqfd.flags = KVM_IRQFD_FLAG_RESAMPLE;
    irqfd.resamplefd = static_cast<uint32_t>(resample_eventfd);
  }
  if (::ioctl(fd(), KVM_IRQFD, &irqfd) != 0) throw_errno(fmt::format("KVM_IRQFD assign gsi {}", gsi));
}

void Vm::remove_irqfd(uint32_t gsi, int eventfd) {
  kvm_irqfd irqfd{};
  irqfd.fd = static_cast<uint32_t>(eventfd);
  irqfd.gsi = gsi;
  irqfd.flags = KVM_IRQFD_FLAG_DEASSIGN;
  if (::ioctl(fd(), KVM_IRQFD, &irqfd) != 0) throw_errno(fmt::format("KVM_IRQFD deassign gsi {}", gsi));
}

namespace {
kvm_coalesced_mmio_zone zone(IoSpace space, uint64_t addr, uint32_t size) {
  kvm_coalesced_mmio_zone z{};
  z.addr = addr;
  z.size = size;
  z.pio = space == IoSpace::pio ? 1 : 0;
  return z;
}
}  // namespace

void Vm::register_coalesced(IoSpace space, uint64_t addr, uint32_t size) {
  auto z = zone(space, addr, size);
  if (::ioctl(fd(), KVM_REGISTER_COALESCED_MMIO, &z) != 0) {
    throw_errno(fmt::format("KVM_REGISTER_COALESCED_MMIO {} {:#x}+{:#x}", space == IoSpace::pio ? "pio" : "mmio",
                            addr, size));
  }
}

void Vm::unregister_coalesced(IoSpace space, uint64_t addr, uint32_t size) {
  auto z = zone(space, addr, size);
  if (::ioctl(fd(), KVM_UNREGISTER_COALESCED_MMIO, &z) != 0) {
    throw_errno(fmt::format("KVM_UNREGISTER_COALESCED_MMIO {:#x}+{:#x}", addr, size));
  }
}

}  // namespace iovmm::kvm
