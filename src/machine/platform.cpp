#include "machine/platform.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fmt/core.h>

#include "boot/acpi/acpi.h"
#include "boot/layout.h"
#include "common/error.h"
#include "common/log.h"
#include "devices/factory.h"
#include "devices/pci/bar_allocation.h"
#include "devices/post_port.h"
#include "dispatch/binding.h"
#include "dispatch/device_options.h"
#include "machine/exit_status.h"

namespace iovmm {
namespace {

constexpr uint32_t kSciGsi = 9;
constexpr unsigned kHostBridgeSlot = 0;
// PCI INTA#-INTD# after the PIIX's PIRQ routing, as SeaBIOS programs it on QEMU's -M pc: PIRQA-D → 10, 10, 11, 11.
constexpr uint8_t kPirqGsi[4] = {10, 10, 11, 11};
// virtio-mmio windows where QEMU's microvm puts them; their interrupts on IOAPIC pins nothing else uses.
constexpr uint64_t kVirtioMmioBase = 0xFEB00000;
constexpr uint64_t kVirtioMmioStride = 0x200;
constexpr uint32_t kVirtioMmioFirstGsi = 16;
constexpr unsigned kVirtioMmioSlots = 8;

// Every name a device has on this machine so far: the platform's, and the user's devices before their windows exist
// (a PCI function has none until its BARs are assigned).
bool device_name_taken(std::string_view name, const io::Bus& pio, const io::Bus& mmio,
                       const std::vector<std::shared_ptr<devices::PciDevice>>& pci,
                       const std::vector<std::shared_ptr<io::Device>>& user) {
  auto same = [&](const auto& device) { return device->name() == name; };
  for (const io::Bus* bus : {&pio, &mmio}) {
    for (const auto& window : bus->windows()) {
      if (window.device->name() == name) return true;
    }
  }
  return std::any_of(pci.begin(), pci.end(), same) || std::any_of(user.begin(), user.end(), same);
}

// A fixed window the user asked for (two vga-window devices) that lands on another is the user's to fix: refused
// before the bus would find it, so that it is a usage error and not a failure of the machine.
void check_window_free(const io::Bus& bus, const devices::FixedWindow& place, const devices::DeviceSpec& spec) {
  for (const auto& window : bus.windows()) {
    if (place.base < window.base + window.size && window.base < place.base + place.size) {
      throw UsageError(fmt::format("--device {}: its {} window {:#x}+{:#x} overlaps {} at {:#x}+{:#x} (given twice?)",
                                   spec.text(), io::to_string(bus.space()), place.base, place.size, window.label,
                                   window.base, window.size));
    }
  }
}

void write_console(uint8_t byte) {
  // The guest's console is ours: a failed write (closed pipe) drops the byte rather than stopping the guest.
  [[maybe_unused]] auto written = ::write(STDOUT_FILENO, &byte, 1);
}

}  // namespace

Platform::Platform(PlatformContext context) : context_(context), kernel_cmdline_(context.config.cmdline) {
  create_devices();
  create_pci();
  fill_fw_cfg();
  write_acpi();
}

Platform::~Platform() {
  // The buses keep devices alive after the platform (and the dispatcher) are gone: detach them from the doorbell
  // host now, while it still exists.
  for (const auto& device : user_devices_) {
    if (auto* quiescent = dynamic_cast<io::Quiescent*>(device.get())) quiescent->quiesce();
  }
  if (saved_termios_) tcsetattr(STDIN_FILENO, TCSANOW, &*saved_termios_);
}

void Platform::map(io::Bus& bus, uint64_t base, uint64_t size, std::shared_ptr<io::Device> device, unsigned region) {
  context_.dispatch.bind(*device, region);
  io::Window window;
  window.region = region;
  window.base = base;
  window.size = size;
  window.device = std::move(device);
  bus.map(std::move(window));
}

void Platform::create_devices() {
  StopController& stop = context_.stop;
  uart_ = std::make_shared<devices::Uart16550>(
      "com1", context_.interrupts.line(devices::Uart16550::kCom1Irq), write_console);
  map(context_.pio, devices::Uart16550::kCom1Base, devices::Uart16550::kRegionSize, uart_);

  debug_exit_ = std::make_shared<devices::DebugExit>("debug-exit", [&stop](int status) {
    stop.request(status, fmt::format("guest wrote to isa-debug-exit: exit status {}", status));
  });
  map(context_.pio, devices::DebugExit::kDefaultBase, devices::DebugExit::kDefaultSize, debug_exit_);

  map(context_.pio, devices::PostPort::kPort, 1, std::make_shared<devices::PostPort>(context_.on_marker));

  fw_cfg_ = std::make_shared<devices::FwCfg>("fw_cfg");
  map(context_.pio, devices::FwCfg::kIoBase, devices::FwCfg::kRegionSize, fw_cfg_);

  acpi_pm_ = std::make_shared<devices::AcpiPm>(
      "acpi-pm", [&stop] { stop.request(kExitPoweredOff, "guest powered off (ACPI S5)"); },
      context_.interrupts.line(kSciGsi));
  map(context_.pio, devices::kPmIoBase, devices::kPmRegionSize, acpi_pm_);

}

void Platform::create_user_device(const std::string& text) {
  auto spec = devices::DeviceSpec::parse(text);
  dispatch::DeviceDispatchOptions dispatch_options = dispatch::parse_device_dispatch(text, spec.type(), spec.options());
  const dispatch::DispatchChoice choice = dispatch_options.choice;
  devices::DeviceContext device_context;
  device_context.host.ioeventfd_any_length =
      context_.vm.system().check_extension(KVM_CAP_IOEVENTFD_ANY_LENGTH) > 0;
  device_context.memory = &context_.memory;
  device_context.watcher = &context_.watcher;
  device_context.msi = &context_.interrupts;
  // A device carried by ioregionfd gets every access through its server, doorbells included: the same whether the
  // server is a thread or a process (which has no KVM to ask for an ioeventfd).
  if (!choice.whole_device_ioregionfd()) device_context.doorbells = &context_.dispatch;
  InterruptRouter& interrupts = context_.interrupts;
  device_context.isa_irq = [&interrupts](uint32_t gsi) { return interrupts.line(gsi); };
  // The dispatch options are not the device's: the device (here, or in a device process) sees a spec without them.
  std::string device_text = spec.type();
  for (const auto& [key, value] : spec.options()) {
    if (!dispatch::is_dispatch_option(key)) device_text += fmt::format(",{}={}", key, value);
  }
  // Names are what statistics and messages tell devices apart by: an id= already taken is refused; a second device
  // of a type without id= is numbered (pci-testdev, pci-testdev.1, ...).
  const bool named = std::any_of(spec.options().begin(), spec.options().end(),
                                 [](const auto& option) { return option.first == "id"; });
  auto taken = [&](std::string_view name) {
    return device_name_taken(name, context_.pio, context_.mmio, pci_devices_, user_devices_);
  };
  devices::DeviceSpec device_spec = devices::DeviceSpec::parse(device_text);
  if (!named && taken(devices::default_device_name(spec.type()))) {
    unsigned n = 1;
    while (taken(fmt::format("{}.{}", devices::default_device_name(spec.type()), n))) ++n;
    const std::string id = fmt::format("{}.{}", devices::default_device_name(spec.type()), n);
    device_spec.add("id", id);
    device_text += ",id=" + id;  // a device process builds the same device, with the same name
  }
  devices::BuiltDevice built = devices::make_device(device_spec, device_context);
  std::shared_ptr<io::Device> device = built.device;
  if (named && taken(device->name())) {
    throw UsageError(fmt::format("--device {}: id={} is taken by another device", text, device->name()));
  }
  for (const auto& place : built.fixed_windows) {
    check_window_free(place.space == io::Space::pio ? context_.pio : context_.mmio, place, spec);
  }
  auto bindings = dispatch::bind_registers(spec.type(), device->register_blocks(), choice);
  std::shared_ptr<io::Device> carrier;
  if (choice.whole_device_ioregionfd()) {
    StopController& stop = context_.stop;
    dispatch_options.ioregionfd.on_failure = [&stop](const std::string& line) { stop.request(kExitFatal, line); };
    auto channel = dispatch::start_device_server(std::move(dispatch_options), device, text, spec.type(), device_text,
                                                 !devices::needs_machine(spec.type()), context_.memory);
    carrier = channel->proxy();
    ioregionfd_channels_.push_back(std::move(channel));
  }

  std::vector<unsigned> regions;
  if (auto pci = std::dynamic_pointer_cast<devices::PciDevice>(device)) {
    attach_pci(spec, pci, built.pci_address);
    for (const auto& [address, companion] : built.companions) attach_pci(spec, companion, address);
    for (unsigned bar = 0; bar < 6; ++bar) {
      if (pci->bar_spec(bar)) regions.push_back(bar);
    }
  }
  for (const auto& place : built.fixed_windows) regions.push_back(place.region);
  if (built.connect_virtio_mmio_irq) regions.push_back(0);
  // Bound before the windows are mapped, so that KVM's side of each path is in place when the window appears.
  for (unsigned region : regions) {
    dispatch::WindowBinding binding;
    if (auto it = bindings.find(region); it != bindings.end()) binding = it->second;
    if (carrier) binding.whole = io::Path::ioregionfd;
    context_.dispatch.bind(*device, region, std::move(binding), carrier);
  }
  for (const auto& place : built.fixed_windows) {
    io::Window window{.base = place.base, .size = place.size, .device = device, .region = place.region};
    (place.space == io::Space::pio ? context_.pio : context_.mmio).map(std::move(window));
  }
  if (built.connect_virtio_mmio_irq) place_virtio_mmio(built);
  user_devices_.push_back(device);
}

void Platform::attach_pci(const devices::DeviceSpec& spec, std::shared_ptr<devices::PciDevice> pci,
                          std::optional<devices::PciAddress> address) {
  if (!address) {
    while (next_pci_slot_ < 32 && std::any_of(used_pci_addresses_.begin(), used_pci_addresses_.end(),
                                              [&](const auto& used) { return used.slot == next_pci_slot_; })) {
      ++next_pci_slot_;
    }
    if (next_pci_slot_ >= 32) throw UsageError(fmt::format("--device {}: no free PCI slot on bus 0", spec.text()));
    address = devices::PciAddress{next_pci_slot_++, 0};
  }
  for (const auto& used : used_pci_addresses_) {
    if (used.slot == address->slot && used.function == address->function) {
      throw UsageError(fmt::format("--device {}: PCI address 00:{:02x}.{} is taken (by an earlier --device of the "
                                   "same kind?)", spec.text(), address->slot, address->function));
    }
  }
  used_pci_addresses_.push_back(*address);
  pci->set_bar_observer(bar_mapper_->observer());
  pci_root_->attach(address->slot, address->function, pci);
  pci_devices_.push_back(pci);
  if (uint8_t pin = pci->interrupt_pin(); pin != 0) {
    uint8_t gsi = kPirqGsi[(address->slot + pin - 1) % 4];
    pci->connect_intx(context_.interrupts.line(gsi), gsi);
  }
}

void Platform::place_virtio_mmio(const devices::BuiltDevice& built) {
  auto index = static_cast<unsigned>(virtio_mmio_devices_.size());
  if (index >= kVirtioMmioSlots) {
    throw UsageError(fmt::format("{}: at most {} virtio-mmio devices", built.device->name(), kVirtioMmioSlots));
  }
  boot::acpi::MmioDeviceConfig acpi;
  acpi.hid = "LNRO0005";
  acpi.uid = index;
  acpi.mmio_base = kVirtioMmioBase + index * kVirtioMmioStride;
  acpi.mmio_size = kVirtioMmioStride;
  acpi.irq = kVirtioMmioFirstGsi + index;
  acpi.level_triggered = true;
  context_.mmio.map(io::Window{.base = acpi.mmio_base, .size = acpi.mmio_size, .device = built.device, .region = 0});
  built.connect_virtio_mmio_irq(context_.interrupts.line(acpi.irq));
  virtio_mmio_devices_.push_back(acpi);
  kernel_cmdline_ += fmt::format("{}virtio_mmio.device=512@{:#x}:{}", kernel_cmdline_.empty() ? "" : " ",
                                 acpi.mmio_base, acpi.irq);
}

void Platform::create_pci() {
  StopController& stop = context_.stop;
  pci_root_ = std::make_shared<devices::PciRoot>("pci-cfg", [&stop] {
    stop.request(kExitPoweredOff, "guest requested a reset through port 0xCF9; iovmm does not reboot");
  });
  map(context_.pio, devices::PciRoot::kIoBase, devices::PciRoot::kRegionSize, pci_root_);
  bar_mapper_ = std::make_shared<devices::PciBarMapper>(context_.pio, context_.mmio);

  auto host_bridge = std::make_shared<devices::PciHostBridge>();
  pci_devices_.push_back(host_bridge);
  for (auto& device : pci_devices_) device->set_bar_observer(bar_mapper_->observer());
  pci_root_->attach(kHostBridgeSlot, 0, host_bridge);
  for (const auto& text : context_.config.devices) create_user_device(text);

  devices::BarAllocationOptions options;
  for (const auto& region : context_.memory.regions()) {
    (region.gpa < boot::kHighRamStart ? options.ram_below_4g : options.ram_above_4g) += region.size;
  }
  for (const auto& assignment : devices::assign_bars_like_seabios(*pci_root_, options)) {
    log::info("pci {:02x}.{}: BAR{} at {:#x} ({:#x} bytes)", assignment.slot, assignment.function, assignment.bar,
              assignment.address, assignment.size);
  }
}

void Platform::fill_fw_cfg() {
  const MachineConfig& config = context_.config;
  fw_cfg_->add_u16(devices::fw_cfg_key::kNbCpus, static_cast<uint16_t>(config.cpus));
  fw_cfg_->add_u16(devices::fw_cfg_key::kMaxCpus, static_cast<uint16_t>(config.cpus));
  fw_cfg_->add_u64(devices::fw_cfg_key::kRamSize, config.memory_bytes);
  // As QEMU does for -kernel/-append: the size counts the terminating NUL.
  fw_cfg_->add_u32(devices::fw_cfg_key::kCmdlineSize, static_cast<uint32_t>(kernel_cmdline_.size() + 1));
  fw_cfg_->add_string(devices::fw_cfg_key::kCmdlineData, kernel_cmdline_);
}

void Platform::write_acpi() {
  boot::acpi::AcpiConfig acpi;
  acpi.cpu_count = context_.config.cpus;
  acpi.pm1a_evt_blk = devices::kPmIoBase + devices::kPm1EventBlockOffset;
  acpi.pm1a_cnt_blk = devices::kPmIoBase + devices::kPm1ControlBlockOffset;
  acpi.pm_tmr_blk = devices::kPmIoBase + devices::kPmTimerBlockOffset;
  acpi.sci_irq = kSciGsi;
  acpi.s5_sleep_type = devices::kS5SleepType;
  acpi.serial_ports = {{devices::Uart16550::kCom1Base, devices::Uart16550::kCom1Irq}};
  acpi.mmio_devices = virtio_mmio_devices_;
  rsdp_address_ = boot::acpi::write_acpi_tables(context_.memory, acpi);
}

void Platform::attach_console(EventLoop& loop) {
  if (!context_.config.console_input) return;
  if (::isatty(STDIN_FILENO)) {
    // Characters go to the guest as typed; Ctrl-C still stops the VMM (ISIG stays on).
    termios mode{};
    if (tcgetattr(STDIN_FILENO, &mode) == 0) {
      saved_termios_ = mode;
      mode.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
      mode.c_cc[VMIN] = 1;
      mode.c_cc[VTIME] = 0;
      tcsetattr(STDIN_FILENO, TCSANOW, &mode);
    }
  }
  int flags = ::fcntl(STDIN_FILENO, F_GETFL);
  if (flags < 0) return;  // no standard input at all
  ::fcntl(STDIN_FILENO, F_SETFL, flags | O_NONBLOCK);
  try {
    loop.add(STDIN_FILENO, EPOLLIN, [this, &loop](uint32_t) { read_console_input(loop); });
    console_attached_ = true;
  } catch (const Error&) {
    log::info("standard input cannot be polled (a regular file?); the guest gets no console input");
    return;
  }
  // While the UART's FIFO is full, stdin is left unread and this timer looks again a little later.
  console_retry_timer_ = Fd(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (console_retry_timer_) {
    loop.add(console_retry_timer_.get(), EPOLLIN, [this, &loop](uint32_t) {
      uint64_t expirations;
      [[maybe_unused]] auto n = ::read(console_retry_timer_.get(), &expirations, sizeof expirations);
      if (console_attached_ && uart_->rx_has_room()) loop.modify(STDIN_FILENO, EPOLLIN);
    });
  }
}

void Platform::read_console_input(EventLoop& loop) {
  if (!uart_->rx_has_room()) {
    loop.modify(STDIN_FILENO, 0);
    itimerspec later{};
    later.it_value.tv_nsec = 10'000'000;
    timerfd_settime(console_retry_timer_.get(), 0, &later, nullptr);
    return;
  }
  uint8_t buffer[devices::Uart16550::kFifoSize];
  ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
  if (n > 0) {
    // receive() takes what fits; bytes beyond the FIFO's room would be an overrun on real hardware, so only ask for
    // as much as there is room for: rx_has_room() was checked and the FIFO is at most kFifoSize deep.
    [[maybe_unused]] size_t accepted = uart_->receive({buffer, static_cast<size_t>(n)});
  } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
    loop.remove(STDIN_FILENO);  // end of input: the guest simply receives nothing more
    console_attached_ = false;
  }
}

void Platform::detach_console(EventLoop& loop) {
  if (console_attached_) loop.remove(STDIN_FILENO);
  if (console_retry_timer_) loop.remove(console_retry_timer_.get());
  console_attached_ = false;
  if (saved_termios_) {
    tcsetattr(STDIN_FILENO, TCSANOW, &*saved_termios_);
    saved_termios_.reset();
  }
}

}  // namespace iovmm
