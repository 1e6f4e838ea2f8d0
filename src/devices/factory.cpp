#include "devices/factory.h"

#include <fmt/core.h>

#include "common/error.h"
#include "devices/pci_testdev.h"
#include "devices/vga_window.h"

namespace iovmm::devices {

std::string known_device_types() { return "pci-testdev, vga-window"; }

BuiltDevice make_device(const DeviceSpec& spec, const DeviceContext& context) {
  BuiltDevice built;
  if (spec.type() == "pci-testdev") {
    PciTestdevOptions options;
    // As QEMU 7.2 does when KVM allows it, so that the same guest measures the same ioeventfd.
    options.any_length_mmio_wildcard = context.host.ioeventfd_any_length;
    built.device = std::make_shared<PciTestdev>(spec.take("id").value_or("pci-testdev"), options);
    spec.reject_unused("id, dispatch, dispatch.REGISTER");
  } else if (spec.type() == "vga-window") {
    built.device = std::make_shared<VgaWindow>(spec.take("id").value_or("vga"));
    built.fixed_windows.push_back({0, io::Space::mmio, VgaWindow::kBase, VgaWindow::kSize});
    spec.reject_unused("id, dispatch, dispatch.REGISTER");
  } else {
    throw UsageError(fmt::format("--device {}: unknown device type '{}' (known: {})", spec.text(), spec.type(),
                                 known_device_types()));
  }
  return built;
}

}  // namespace iovmm::devices
