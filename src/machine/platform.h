// The pc-like platform every guest gets, placed where QEMU's -M pc puts the same things so that a guest written
// for QEMU finds them: COM1 (0x3F8, IRQ 4), isa-debug-exit (0xF4), fw_cfg (0x510), the ACPI PM block (0x600) with
// its timer at 0x608, PCI configuration mechanism #1 (0xCF8) with an i440FX host bridge, and ACPI tables.
#pragma once

#include <termios.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/fd.h"
#include "boot/acpi/acpi.h"
#include "devices/acpi_pm.h"
#include "devices/debug_exit.h"
#include "devices/fw_cfg.h"
#include "devices/pci/pci_bar_mapper.h"
#include "devices/pci/pci_host_bridge.h"
#include "devices/pci/pci_root.h"
#include "devices/device_spec.h"
#include "devices/factory.h"
#include "devices/uart16550.h"
#include "dispatch/binding.h"
#include "dispatch/dispatcher.h"
#include "dispatch/ioregionfd/channel.h"
#include "devices/post_port.h"
#include "io/bus.h"
#include "kvm/vm.h"
#include "machine/config.h"
#include "machine/event_loop.h"
#include "machine/interrupts.h"
#include "machine/stop.h"
#include "memory/guest_memory.h"

namespace iovmm {

struct PlatformContext {
  kvm::Vm& vm;
  GuestMemory& memory;
  io::Bus& pio;
  io::Bus& mmio;
  StopController& stop;
  dispatch::Dispatcher& dispatch;
  io::FdWatcher& watcher;
  InterruptRouter& interrupts;
  const MachineConfig& config;
  devices::PostPort::Observer on_marker;  // benchmark markers written to port 0x80
};

class Platform {
 public:
  explicit Platform(PlatformContext context);
  ~Platform();

  [[nodiscard]] uint64_t rsdp_address() const { return rsdp_address_; }
  // --append plus what the platform tells the kernel itself: virtio-mmio devices as Linux's
  // virtio_mmio.device=512@BASE:IRQ, as QEMU's microvm does (auto-kernel-cmdline).
  [[nodiscard]] const std::string& kernel_cmdline() const { return kernel_cmdline_; }
  // Standard input feeds COM1 while the guest has room for it.
  void attach_console(EventLoop& loop);
  void detach_console(EventLoop& loop);

 private:
  // Maps a window with the default binding (every access by exit, counted under its register).
  void map(io::Bus& bus, uint64_t base, uint64_t size, std::shared_ptr<io::Device> device, unsigned region = 0);
  void create_devices();
  void create_pci();
  void create_user_device(const std::string& text);
  void attach_pci(const devices::DeviceSpec& spec, std::shared_ptr<devices::PciDevice> pci,
                  std::optional<devices::PciAddress> address);
  void place_virtio_mmio(const devices::BuiltDevice& built);
  void fill_fw_cfg();
  void write_acpi();
  void read_console_input(EventLoop& loop);

  PlatformContext context_;
  std::shared_ptr<devices::Uart16550> uart_;
  std::shared_ptr<devices::DebugExit> debug_exit_;
  std::shared_ptr<devices::FwCfg> fw_cfg_;
  std::shared_ptr<devices::AcpiPm> acpi_pm_;
  std::shared_ptr<devices::PciRoot> pci_root_;
  std::shared_ptr<devices::PciBarMapper> bar_mapper_;
  std::vector<std::shared_ptr<devices::PciDevice>> pci_devices_;
  std::vector<std::shared_ptr<io::Device>> user_devices_;
  std::vector<std::unique_ptr<dispatch::ioregionfd::Channel>> ioregionfd_channels_;
  unsigned next_pci_slot_ = 2;  // QEMU -M pc: 0 host bridge, 1 PIIX; -device functions start at 2
  std::vector<devices::PciAddress> used_pci_addresses_;
  std::vector<boot::acpi::MmioDeviceConfig> virtio_mmio_devices_;
  std::string kernel_cmdline_;
  uint64_t rsdp_address_ = 0;
  bool console_attached_ = false;
  Fd console_retry_timer_;
  std::optional<::termios> saved_termios_;
};

}  // namespace iovmm
