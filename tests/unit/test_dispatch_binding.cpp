// Which path each register may take, from its effect class, and the one-line refusals for illegal choices.
#include <gtest/gtest.h>

#include <array>
#include <set>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "dispatch/binding.h"

namespace iovmm::dispatch {
namespace {

using io::Access;
using io::Effect;
using io::Path;

// An IDE-like task file: latches, a synchronous command register, a read-sensitive status, a doorbell and a
// constant — every effect class once.
constexpr std::array<io::Register, 6> kTaskFile = {{
    {"data", 0, 2, Access::rw, Effect::synchronous},
    {"sector_count", 2, 1, Access::rw, Effect::latch},
    {"lba_low", 3, 1, Access::rw, Effect::latch},
    {"status", 7, 1, Access::ro, Effect::read_sensitive},
    {"notify", 8, 2, Access::wo, Effect::doorbell},
    {"id", 12, 4, Access::ro, Effect::constant, 0x1234},
}};
constexpr std::array<io::Register, 2> kControl = {{
    {"command", 0, 1, Access::wo, Effect::synchronous},
    {"counter", 4, 4, Access::ro, Effect::synchronous, 0, true},
}};
const std::array<io::RegisterBlock, 2> kBlocks = {{{0, "task", kTaskFile}, {1, "ctl", kControl}}};

DispatchChoice choice(std::initializer_list<std::pair<const char*, const char*>> options) {
  DispatchChoice c;
  for (auto [key, value] : options) c.add("ide", key, value);
  return c;
}

std::string refusal(const DispatchChoice& c) {
  try {
    (void)bind_registers("ide", kBlocks, c);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(DispatchBinding, DefaultIsExitEverywhere) {
  auto bindings = bind_registers("ide", kBlocks, DispatchChoice{});
  ASSERT_EQ(bindings.size(), 2u);
  for (const auto& [region, binding] : bindings) {
    EXPECT_EQ(binding.whole, Path::exit);
    EXPECT_TRUE(binding.registers.empty());
  }
}

TEST(DispatchBinding, DeviceWidePathAppliesWhereLegal) {
  auto bindings = bind_registers("ide", kBlocks, choice({{"dispatch", "coalesced"}}));
  const auto& task = bindings.at(0);
  ASSERT_EQ(task.registers.size(), 2u);  // the two latches, nothing else
  EXPECT_EQ(task.registers[0].reg.name, "sector_count");
  EXPECT_EQ(task.registers[1].reg.name, "lba_low");
  EXPECT_TRUE(bindings.at(1).registers.empty());
  EXPECT_EQ(task.find(3, 1)->path, Path::coalesced);
  EXPECT_EQ(task.find(7, 1), nullptr);
}

TEST(DispatchBinding, IllegalOverridesNameDeviceRegisterAndReason) {
  EXPECT_EQ(refusal(choice({{"dispatch.command", "coalesced"}})),
            "ide: register ctl+0x0 (command) is synchronous; it cannot be coalesced");
  EXPECT_EQ(refusal(choice({{"dispatch.status", "fastpath"}})),
            "ide: register task+0x7 (status) is read-sensitive; its reads must take the device lock");
  EXPECT_EQ(refusal(choice({{"dispatch.lba_low", "ioeventfd"}})),
            "ide: register task+0x3 (lba_low) is a latch; only a doorbell can be an ioeventfd");
  EXPECT_NE(refusal(choice({{"dispatch.notify", "fastpath"}})).find("write-only"), std::string::npos);
  EXPECT_NE(refusal(choice({{"dispatch.status", "coalesced"}})).find("read-only"), std::string::npos);
}

TEST(DispatchBinding, LegalOverridesBind) {
  auto bindings = bind_registers(
      "ide", kBlocks,
      choice({{"dispatch.notify", "ioeventfd"}, {"dispatch.id", "fastpath"}, {"dispatch.ctl.counter", "fastpath"}}));
  EXPECT_EQ(bindings.at(0).find(8, 2)->path, Path::ioeventfd);
  EXPECT_EQ(bindings.at(0).find(12, 4)->path, Path::fastpath);
  EXPECT_EQ(bindings.at(1).find(4, 4)->path, Path::fastpath);
}

TEST(DispatchBinding, UnknownNamesAndPathsAreRefused) {
  EXPECT_NE(refusal(choice({{"dispatch.nonesuch", "exit"}})).find("no such register"), std::string::npos);
  EXPECT_THROW(choice({{"dispatch", "teleport"}}), UsageError);
  EXPECT_THROW(choice({{"dispatch", "hypercall"}}), UsageError);
  EXPECT_NE(refusal(choice({{"dispatch.data", "ioregionfd"}})).find("whole devices"), std::string::npos);
}

TEST(DispatchBinding, DeviceWidePathNoRegisterCanTakeIsRefused) {
  constexpr std::array<io::Register, 1> only_sync = {{{"go", 0, 4, Access::wo, Effect::synchronous}}};
  const std::array<io::RegisterBlock, 1> blocks = {{{0, "bar0", only_sync}}};
  DispatchChoice c;
  c.add("dev", "dispatch", "coalesced");
  EXPECT_THROW((void)bind_registers("dev", blocks, c), UsageError);
}

TEST(DispatchBinding, WholeDeviceIoregionfd) {
  auto bindings = bind_registers("ide", kBlocks, choice({{"dispatch", "ioregionfd"}}));
  for (const auto& [region, binding] : bindings) EXPECT_EQ(binding.whole, Path::ioregionfd);
  EXPECT_NE(refusal(choice({{"dispatch", "ioregionfd"}, {"dispatch.id", "fastpath"}})).find("device server"),
            std::string::npos);
}

TEST(DispatchBinding, BlockNameCoversItsRegisters) {
  auto bindings = bind_registers("ide", kBlocks, choice({{"dispatch.ctl", "exit"}}));
  EXPECT_TRUE(bindings.at(1).registers.empty());
  EXPECT_NE(refusal(choice({{"dispatch.ctl", "fastpath"}})).find("command"), std::string::npos);
}

}  // namespace
}  // namespace iovmm::dispatch

// Every device's table is well-formed: registers inside their window, sane widths, names unique per block.
#include "devices/acpi_pm.h"
#include "devices/debug_exit.h"
#include "devices/fw_cfg.h"
#include "devices/pci/pci_root.h"
#include "devices/pci_testdev.h"
#include "devices/uart16550.h"
#include "devices/vga_window.h"

namespace iovmm::dispatch {
namespace {

void expect_well_formed(const io::Device& device, uint64_t window_size) {
  for (const auto& block : device.register_blocks()) {
    std::set<std::string_view> names;
    for (const auto& reg : block.registers) {
      EXPECT_GT(reg.width, 0u) << device.name() << " " << reg.name;
      EXPECT_LE(reg.offset + reg.width, block.region == 1 ? 256u : window_size) << device.name() << " " << reg.name;
      EXPECT_TRUE(names.insert(reg.name).second) << device.name() << ": " << reg.name << " twice";
    }
  }
}

TEST(DeviceRegisterTables, AreWellFormed) {
  expect_well_formed(devices::Uart16550("com1", nullptr, [](uint8_t) {}), devices::Uart16550::kRegionSize);
  expect_well_formed(devices::DebugExit("debug-exit", [](int) {}), devices::DebugExit::kDefaultSize);
  expect_well_formed(devices::FwCfg("fw_cfg"), devices::FwCfg::kRegionSize);
  expect_well_formed(devices::AcpiPm("acpi-pm", [] {}), devices::kPmRegionSize);
  expect_well_formed(devices::PciRoot("pci-cfg"), devices::PciRoot::kRegionSize);
  expect_well_formed(devices::VgaWindow("vga"), devices::VgaWindow::kSize);
  auto testdev = std::make_shared<devices::PciTestdev>();
  expect_well_formed(*testdev, 0x1000);
}

TEST(DeviceRegisterTables, PlatformLatchesAreTheOnlyCoalescableRegisters) {
  devices::Uart16550 uart("com1", nullptr, [](uint8_t) {});
  auto bindings = bind_registers("com1", uart.register_blocks(), [] {
    DispatchChoice c;
    c.add("com1", "dispatch", "coalesced");
    return c;
  }());
  std::vector<std::string_view> coalesced;
  for (const auto& bound : bindings.at(0).registers) coalesced.push_back(bound.reg.name);
  EXPECT_EQ(coalesced, (std::vector<std::string_view>{"lcr", "scr"}));
  DispatchChoice lsr;
  lsr.add("com1", "dispatch.lsr", "coalesced");
  EXPECT_THROW((void)bind_registers("com1", uart.register_blocks(), lsr), UsageError);
}

}  // namespace
}  // namespace iovmm::dispatch
