#include "devices/pci/pci_bar_mapper.h"

#include <fmt/core.h>

#include "common/error.h"
#include "common/log.h"

namespace iovmm::devices {

PciBarMapper::PciBarMapper(io::Bus& pio, io::Bus& mmio) : pio_(pio), mmio_(mmio) {}

PciDevice::BarObserver PciBarMapper::observer() {
  return [this](PciDevice& device, unsigned bar, std::optional<uint64_t>, std::optional<uint64_t> new_base) {
    // The old base the device reports is where it last decoded; what counts here is where a window really is
    // (a refused BAR has none), so only the new base is used.
    on_bar_change(device, bar, new_base);
  };
}

std::optional<uint64_t> PciBarMapper::mapped_base(const PciDevice& device, unsigned bar) const {
  std::lock_guard lock(mutex_);
  auto it = mapped_.find({&device, bar});
  if (it == mapped_.end()) return std::nullopt;
  return it->second;
}

void PciBarMapper::on_bar_change(PciDevice& device, unsigned bar, std::optional<uint64_t> new_base) {
  const BarSpec* spec = device.bar_spec(bar);
  if (!spec) return;
  io::Bus& bus = spec->kind == BarKind::io ? pio_ : mmio_;
  std::lock_guard lock(mutex_);
  auto key = std::make_pair(static_cast<const PciDevice*>(&device), bar);
  auto it = mapped_.find(key);

  if (it != mapped_.end()) {
    if (new_base && *new_base == it->second) return;
    if (new_base) {
      try {
        bus.move(device, bar, *new_base);
        it->second = *new_base;
        return;
      } catch (const Error& error) {
        // A BAR programmed over another window decodes nothing: take its old window down as well.
        bus.unmap(device, bar);
        mapped_.erase(it);
        IOVMM_LOG_RATELIMITED("{}: BAR {} moved to {:#x} overlaps another window ({}): left unmapped",
                              device.name(), bar, *new_base, error.what());
        return;
      }
    }
    bus.unmap(device, bar);
    mapped_.erase(it);
    return;
  }

  if (!new_base) return;
  std::shared_ptr<PciDevice> owner = device.weak_from_this().lock();
  if (!owner) {
    IOVMM_LOG_RATELIMITED("{}: BAR {} cannot be mapped: the device is not owned by a shared_ptr", device.name(), bar);
    return;
  }
  try {
    bus.map(io::Window{.base = *new_base,
                       .size = spec->size,
                       .device = std::move(owner),
                       .region = bar,
                       .label = fmt::format("{}.bar{}", device.name(), bar)});
    mapped_[key] = *new_base;
  } catch (const Error& error) {
    IOVMM_LOG_RATELIMITED("{}: BAR {} at {:#x} overlaps another window ({}): left unmapped", device.name(), bar,
                          *new_base, error.what());
  }
}

}  // namespace iovmm::devices
