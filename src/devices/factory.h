// Device models that can be built from a --device spec alone, with no machine around them: what an iovmm-device
// process (ioregionfd, out of process) can run. The machine builds the same types through here, then attaches them
// (PCI slot, fixed window, interrupt lines) itself.
#pragma once

#include <memory>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "devices/device_context.h"
#include "devices/device_spec.h"
#include "devices/pci/pci_device.h"
#include "io/device.h"

namespace iovmm::devices {

// A window at a fixed place (legacy ports, the VGA window), not behind a PCI BAR.
struct FixedWindow {
  unsigned region;  // as in io::Device::read/write
  io::Space space;
  uint64_t base;
  uint64_t size;
};

struct PciAddress {
  unsigned slot;
  unsigned function;
};

struct BuiltDevice {
  std::shared_ptr<io::Device> device;
  std::vector<FixedWindow> fixed_windows;
  // A PCI function that must sit at a given address (IDE: 00:01.1, as on QEMU's -M pc); others take the next slot.
  std::optional<PciAddress> pci_address;
  // Functions that come with it at their own fixed addresses (the PIIX3 ISA bridge at 00:01.0, so that the IDE
  // function is found: a slot without function 0 is not scanned).
  std::vector<std::pair<PciAddress, std::shared_ptr<PciDevice>>> companions;
  // Set for a virtio-mmio device: the machine places its 512-byte window (0xFEB00000 + 0x200·n, as QEMU's microvm),
  // chooses its interrupt, lists it in the DSDT, then hands it the line through this.
  std::function<void(std::shared_ptr<io::IrqLine>)> connect_virtio_mmio_irq;
};

// Takes the spec's device options (the machine has already taken the dispatch ones); throws UsageError for an
// unknown type or option, an empty or malformed id=, or for a device that needs a service the context lacks.
// Whether an id is unique is the machine's to check: it knows the other devices.
[[nodiscard]] BuiltDevice make_device(const DeviceSpec& spec, const DeviceContext& context = {});

// Devices that need what only the VMM has (guest memory for DMA, interrupts, its event loop): they cannot be served
// by an iovmm-device process.
[[nodiscard]] bool needs_machine(std::string_view type);

// The name a device of `type` gets without id= ("vga" for vga-window, else the type itself).
[[nodiscard]] std::string default_device_name(std::string_view type);
// What id= accepts: a letter, then letters, digits, '-', '.' and '_' (QEMU's rule).
[[nodiscard]] bool valid_device_id(std::string_view id);

// "pci-testdev, vga-window": for error messages.
[[nodiscard]] std::string known_device_types();

}  // namespace iovmm::devices
