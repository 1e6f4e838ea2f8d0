// Keeps the I/O and memory buses in step with the BARs of PCI devices: the BarObserver the machine installs on
// every PciDevice. A BAR that starts decoding gets a window "<device>.bar<N>" on the bus of its kind; one that moves
// is moved (its access counts kept); one that stops decoding is unmapped. A BAR programmed over another window is
// refused, as a chipset would route the cycle to one claimant only: the refusal is logged (rate-limited) and the
// BAR stays unmapped until the guest moves it somewhere free.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <utility>

#include "devices/pci/pci_device.h"
#include "io/bus.h"

namespace iovmm::devices {

class PciBarMapper {
 public:
  // Both buses must outlive the mapper, and the mapper must outlive every device it observes.
  PciBarMapper(io::Bus& pio, io::Bus& mmio);
  PciBarMapper(const PciBarMapper&) = delete;
  PciBarMapper& operator=(const PciBarMapper&) = delete;

  // The observer to install with PciDevice::set_bar_observer.
  [[nodiscard]] PciDevice::BarObserver observer();

  // Where (device, bar) is actually mapped now, if anywhere (a refused BAR has no window).
  [[nodiscard]] std::optional<uint64_t> mapped_base(const PciDevice& device, unsigned bar) const;

 private:
  void on_bar_change(PciDevice& device, unsigned bar, std::optional<uint64_t> new_base);

  io::Bus& pio_;
  io::Bus& mmio_;
  mutable std::mutex mutex_;
  std::map<std::pair<const PciDevice*, unsigned>, uint64_t> mapped_;
};

}  // namespace iovmm::devices
