// Fuzz target: the platform's device registers, reached the way a guest reaches them. Each input builds the devices
// platform.cpp builds (COM1, isa-debug-exit, fw_cfg, ACPI PM with a fake clock, PCI mechanism #1 with the i440FX
// host bridge) plus a PCI test device with an I/O, a 32-bit and a 64-bit memory BAR, maps them on a port and a memory
// io::Bus, lets a PciBarMapper follow the BARs, and then replays records (platform_records.h) through Bus::read/write
// with the value transport of VcpuRunner::handle_pio/handle_mmio. Nothing here may crash or throw; after every
// access the harness checks what is cheap to check:
//   * the bus result matches an independent lookup in the window table (bad width, unmapped, crossing the end);
//   * refused reads return all-ones of the width, successful reads nothing above it, and refusals are counted;
//   * device callbacks (console output, IRQ lines, exit, power-off, reset) fire only for an access to that device;
//   * the test device is only called inside a window it owns, with a valid width;
//   * window tables stay sorted and disjoint, the fixed devices stay put, and each BAR window matches both the
//     mapper's record and the BAR's decode address.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "common/log.h"
#include "devices/acpi_pm.h"
#include "devices/debug_exit.h"
#include "devices/fw_cfg.h"
#include "devices/pci/bar_allocation.h"
#include "devices/pci/pci_bar_mapper.h"
#include "devices/pci/pci_host_bridge.h"
#include "devices/pci/pci_root.h"
#include "devices/uart16550.h"
#include "io/bus.h"
#include "platform_records.h"

namespace iovmm::fuzz {
namespace {

[[noreturn]] void fail(const char* what, const Record& r) {
  std::fprintf(stderr, "fuzz_platform_registers: %s (target %u, op %#x, offset %d, value %#llx)\n", what,
               r.target % kTargetCount, r.op, r.offset, static_cast<unsigned long long>(r.value));
  std::abort();
}

// Set around every access and host event: which device the access was routed to by the reference lookup, so that
// callbacks can check they come from that device. A plain global: the fuzzer is single-threaded.
const io::Device* g_current = nullptr;
const Record* g_record = nullptr;

void expect_current(const io::Device* device, const char* what) {
  if (g_current != device) fail(what, *g_record);
}

// An interrupt line that checks who raises it.
class CheckedIrq final : public io::IrqLine {
 public:
  void set_level(bool) override { expect_current(owner, "an IRQ line changed outside an access to its device"); }
  const io::Device* owner = nullptr;
};

// A PCI function with a small register file behind each BAR; asserts the bus contract on every call.
class TestPciDevice final : public devices::PciDevice {
 public:
  static std::vector<devices::BarSpec> bar_specs() {
    return {{.index = 0, .size = 32, .kind = devices::BarKind::io},
            {.index = 1, .size = 4096, .kind = devices::BarKind::mem32},
            {.index = 2, .size = 0x4000, .kind = devices::BarKind::mem64, .prefetchable = true},
            {.index = 4, .size = 16, .kind = devices::BarKind::mem32}};
  }
  TestPciDevice()
      : PciDevice("fuzz-dev",
                  devices::PciIdentity{.vendor_id = 0x1b36, .device_id = 0x0005, .class_code = 0xff0000,
                                       .interrupt_pin = 1},
                  bar_specs()) {
    // An MSI-like capability with writable bytes, so configuration writes above 0x40 reach a writable mask.
    const std::array<uint8_t, 10> body{};
    const std::array<uint8_t, 10> writable{0x01, 0x00, 0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    (void)add_capability(0x05, body, writable);
  }

 protected:
  uint64_t bar_read(unsigned bar, uint64_t offset, unsigned size) override {
    check(bar, offset, size);
    uint64_t value = 0;
    const size_t at = offset % kRegisterBytes;  // the register file repeats across larger BARs
    std::memcpy(&value, &registers_[bar][at], std::min<size_t>(size, kRegisterBytes - at));
    return value;
  }
  void bar_write(unsigned bar, uint64_t offset, unsigned size, uint64_t value) override {
    check(bar, offset, size);
    const size_t at = offset % kRegisterBytes;
    std::memcpy(&registers_[bar][at], &value, std::min<size_t>(size, kRegisterBytes - at));
  }

 private:
  static constexpr size_t kRegisterBytes = 64;
  void check(unsigned bar, uint64_t offset, unsigned size) {
    expect_current(this, "the test device was called for another device's access");
    const devices::BarSpec* spec = bar_spec(bar);
    if (!spec) fail("the test device was called for a BAR it does not have", *g_record);
    if (!io::valid_access_size(size) || offset >= spec->size || size > spec->size - offset) {
      fail("the test device was called outside its BAR or with a bad width", *g_record);
    }
  }
  std::array<std::array<uint8_t, kRegisterBytes>, 6> registers_{};
};

class Harness {
 public:
  Harness() {
    uart_irq_ = std::make_shared<CheckedIrq>();
    uart_ = std::make_shared<devices::Uart16550>("com1", uart_irq_, [this](uint8_t) {
      expect_current(uart_.get(), "console output outside a COM1 access");
    });
    uart_irq_->owner = uart_.get();
    map(pio_, devices::Uart16550::kCom1Base, devices::Uart16550::kRegionSize, uart_);

    debug_exit_ = std::make_shared<devices::DebugExit>("debug-exit", [this](int) {
      expect_current(debug_exit_.get(), "exit requested outside a debug-exit access");
    });
    map(pio_, devices::DebugExit::kDefaultBase, devices::DebugExit::kDefaultSize, debug_exit_);

    fw_cfg_ = std::make_shared<devices::FwCfg>("fw_cfg");
    fw_cfg_->add_u16(devices::fw_cfg_key::kNbCpus, 2);
    fw_cfg_->add_u64(devices::fw_cfg_key::kRamSize, 16 << 20);
    fw_cfg_->set_kernel_cmdline(0x20000, "console=ttyS0 fuzz");
    (void)fw_cfg_->add_file("etc/fuzz/small", {1, 2, 3});
    (void)fw_cfg_->add_file("etc/fuzz/large", std::vector<uint8_t>(300, 0x5a));
    map(pio_, devices::FwCfg::kIoBase, devices::FwCfg::kRegionSize, fw_cfg_);

    sci_ = std::make_shared<CheckedIrq>();
    acpi_pm_ = std::make_shared<devices::AcpiPm>(
        "acpi-pm", [this] { expect_current(acpi_pm_.get(), "power-off outside an ACPI PM access"); }, sci_,
        [this] { return now_ns_; });
    sci_->owner = acpi_pm_.get();
    map(pio_, devices::kPmIoBase, devices::kPmRegionSize, acpi_pm_);

    pci_root_ = std::make_shared<devices::PciRoot>(
        "pci-cfg", [this] { expect_current(pci_root_.get(), "reset requested outside a 0xCF9 access"); });
    map(pio_, devices::PciRoot::kIoBase, devices::PciRoot::kRegionSize, pci_root_);
    host_bridge_ = std::make_shared<devices::PciHostBridge>();
    test_device_ = std::make_shared<TestPciDevice>();
    host_bridge_->set_bar_observer(mapper_.observer());
    test_device_->set_bar_observer(mapper_.observer());
    pci_root_->attach(0, 0, host_bridge_);
    pci_root_->attach(kTestDeviceSlot, 0, test_device_);
    // As the platform does: BARs where SeaBIOS puts them for 16 MiB of RAM, decode enabled (so mapped).
    (void)devices::assign_bars_like_seabios(*pci_root_, {.ram_below_4g = 16 << 20});
    fixed_ = {{&pio_, uart_.get()}, {&pio_, debug_exit_.get()}, {&pio_, fw_cfg_.get()}, {&pio_, acpi_pm_.get()},
              {&pio_, pci_root_.get()}};
    refresh_tables();
    for (const auto& [bus, device] : fixed_) fixed_bases_.push_back(window_of(table(*bus), *device, 0)->base);
  }

  void run(const Record& r) {
    g_record = &r;
    now_ns_ += r.tick * kTickNs;
    switch (r.target % kTargetCount) {
      case kUart: return access(pio_, devices::Uart16550::kCom1Base, r);
      case kDebugExit: return access(pio_, devices::DebugExit::kDefaultBase, r);
      case kFwCfg: return access(pio_, devices::FwCfg::kIoBase, r);
      case kAcpiPm: return access(pio_, devices::kPmIoBase, r);
      case kPciConfig: return access(pio_, devices::PciRoot::kIoBase, r);
      case kBarIo: return access(pio_, bar_base(0), r);
      case kBarMem32: return access(mmio_, bar_base(1), r);
      case kBarMem64: return access(mmio_, bar_base(2), r);
      case kBarSmall: return access(mmio_, bar_base(4), r);
      case kRawPio: return access(pio_, 0, r);
      case kRawMmio: return access(mmio_, uint64_t{r.high} << 32, r);
      case kHostUartInput: {
        g_current = uart_.get();
        uint8_t bytes[8];
        std::memcpy(bytes, &r.value, sizeof bytes);
        (void)uart_->rx_has_room();
        (void)uart_->receive({bytes, op_repeat(r.op)});
        g_current = nullptr;
        return;
      }
      case kHostPowerButton:
        g_current = acpi_pm_.get();
        acpi_pm_->press_power_button();
        g_current = nullptr;
        return;
    }
  }

 private:
  static void map(io::Bus& bus, uint64_t base, uint64_t size, std::shared_ptr<io::Device> device) {
    bus.map(io::Window{.base = base, .size = size, .device = std::move(device)});
  }

  // Copies of both window tables for the reference lookups: Bus::windows() copies every window (labels, counters),
  // which costs more than the access itself, so it is refreshed only after port writes, the only accesses that can
  // move windows here (PCI BAR programming through 0xCF8/0xCFC).
  void refresh_tables() {
    pio_table_ = pio_.windows();
    mmio_table_ = mmio_.windows();
  }
  const std::vector<io::Window>& table(const io::Bus& bus) const { return &bus == &pio_ ? pio_table_ : mmio_table_; }

  static const io::Window* window_of(const std::vector<io::Window>& windows, const io::Device& device,
                                     unsigned region) {
    for (const auto& w : windows) {
      if (w.device.get() == &device && w.region == region) return &w;
    }
    return nullptr;
  }

  // Where a record aimed at a BAR goes: its window if mapped, else where the guest programmed it (an unmapped place).
  uint64_t bar_base(unsigned bar) {
    if (auto mapped = mapper_.mapped_base(*test_device_, bar)) return *mapped;
    std::lock_guard lock(test_device_->mutex());
    return test_device_->bar_address(bar);
  }

  // The bus's answer for (addr, size), worked out from the window table by a linear scan; also names the device.
  static io::AccessResult expected_result(const std::vector<io::Window>& windows, uint64_t addr, unsigned size,
                                          const io::Device*& device) {
    device = nullptr;
    if (!io::valid_access_size(size)) return io::AccessResult::bad_size;
    for (const auto& w : windows) {
      if (addr < w.base || addr - w.base >= w.size) continue;
      if (size > w.size - (addr - w.base)) return io::AccessResult::crosses_end;
      device = w.device.get();
      return io::AccessResult::ok;
    }
    return io::AccessResult::unmapped;
  }

  // One record: `repeat` accesses to base + offset, as KVM_EXIT_IO with count > 1 (string I/O) arrives.
  void access(io::Bus& bus, uint64_t base, const Record& r) {
    const uint64_t addr = base + static_cast<uint64_t>(static_cast<int64_t>(r.offset));
    const unsigned size = op_width(r.op);
    const uint64_t mask = io::valid_access_size(size) ? io::size_mask(size) : ~0ull;
    for (unsigned i = 0; i < op_repeat(r.op); ++i) {
      const io::Device* device = nullptr;
      const io::AccessResult expected = expected_result(table(bus), addr, size, device);
      g_current = device;
      if (op_is_write(r.op)) {
        // VcpuRunner copies the access's bytes (at most 8) out of kvm_run into a zeroed value.
        uint64_t value = 0;
        std::memcpy(&value, &r.value, std::min(size, 8u));
        const uint64_t refused_before = bus.unmapped_writes();
        const io::AccessResult result = bus.write(addr, size, value);
        if (result != expected) fail("write result differs from the window table", r);
        if ((bus.unmapped_writes() - refused_before) != (result == io::AccessResult::ok ? 0u : 1u)) {
          fail("refused write not counted once", r);
        }
      } else {
        uint64_t value = 0x1234;
        const uint64_t refused_before = bus.unmapped_reads();
        const io::AccessResult result = bus.read(addr, size, value);
        if (result != expected) fail("read result differs from the window table", r);
        if (result != io::AccessResult::ok && value != mask) fail("refused read is not all-ones of its width", r);
        if (value & ~mask) fail("read returned bits above its width", r);
        if ((bus.unmapped_reads() - refused_before) != (result == io::AccessResult::ok ? 0u : 1u)) {
          fail("refused read not counted once", r);
        }
      }
      g_current = nullptr;
      if (op_is_write(r.op) && &bus == &pio_) {  // BARs move only through 0xCF8/0xCFC (there is no ECAM window)
        refresh_tables();
        check_windows(r);
      }
    }
  }

  void check_windows(const Record& r) {
    const std::vector<io::Window>& pio = pio_table_;
    const std::vector<io::Window>& mmio = mmio_table_;
    for (const auto* table : {&pio, &mmio}) {
      const auto& windows = *table;
      for (size_t i = 0; i < windows.size(); ++i) {
        const auto& w = windows[i];
        if (w.size == 0 || w.base + w.size < w.base) fail("empty or wrapping window", r);
        if (i + 1 < windows.size() && w.base + w.size > windows[i + 1].base) fail("windows overlap or unsorted", r);
      }
    }
    for (size_t i = 0; i < fixed_.size(); ++i) {
      const io::Window* w = window_of(fixed_[i].first == &pio_ ? pio : mmio, *fixed_[i].second, 0);
      if (!w || w->base != fixed_bases_[i]) fail("a fixed device window moved or vanished", r);
    }
    for (const auto& spec : test_device_->bars()) {
      const auto mapped = mapper_.mapped_base(*test_device_, spec.index);
      const io::Window* window = window_of(spec.kind == devices::BarKind::io ? pio : mmio, *test_device_, spec.index);
      if (mapped.has_value() != (window != nullptr) || (mapped && *mapped != window->base)) {
        fail("BAR window and mapper disagree", r);
      }
      if (window && window->size != spec.size) fail("BAR window has the wrong size", r);
      std::lock_guard lock(test_device_->mutex());
      if (mapped && test_device_->bar_decode_base(spec.index) != mapped) fail("BAR mapped where it does not decode", r);
    }
  }

  uint64_t now_ns_ = 1'000'000'000;
  io::Bus pio_{io::Space::pio};
  io::Bus mmio_{io::Space::mmio};
  devices::PciBarMapper mapper_{pio_, mmio_};  // after the buses it uses, before the devices it observes
  std::shared_ptr<CheckedIrq> uart_irq_, sci_;
  std::shared_ptr<devices::Uart16550> uart_;
  std::shared_ptr<devices::DebugExit> debug_exit_;
  std::shared_ptr<devices::FwCfg> fw_cfg_;
  std::shared_ptr<devices::AcpiPm> acpi_pm_;
  std::shared_ptr<devices::PciRoot> pci_root_;
  std::shared_ptr<devices::PciHostBridge> host_bridge_;
  std::shared_ptr<TestPciDevice> test_device_;
  std::vector<io::Window> pio_table_, mmio_table_;
  std::vector<std::pair<io::Bus*, const io::Device*>> fixed_;
  std::vector<uint64_t> fixed_bases_;
};

}  // namespace
}  // namespace iovmm::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Guest mistakes are logged as warnings (rate-limited); the fuzzer makes them by the million.
  iovmm::log::set_level(iovmm::log::Level::error);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using iovmm::fuzz::Record;
  iovmm::fuzz::Harness harness;  // fresh devices per input: a run depends on its input alone
  for (size_t offset = 0; offset + sizeof(Record) <= size; offset += sizeof(Record)) {
    Record record;
    std::memcpy(&record, data + offset, sizeof(record));
    harness.run(record);
  }
  return 0;
}
