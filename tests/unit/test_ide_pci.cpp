// The PIIX3 functions as PCI sees them (identity, BAR4, IDETIM, the ISA bridge), the legacy windows, and the IDE
// register table against the dispatch rules: coalescing binds exactly the latches.
#include <set>
#include <string>

#include "common/error.h"
#include "devices/ide/piix3_isa.h"
#include "dispatch/binding.h"
#include "test_ide_support.h"

namespace iovmm::devices::ide_test {
namespace {

TEST(IdePci, IdentityBarAndTimingRegisters) {
  IdeHarness h("pci_identity", 16);
  EXPECT_EQ(h.config_read(0x00, 4), 0x70108086u);
  EXPECT_EQ(h.config_read(0x08, 4) >> 8, 0x010180u);
  EXPECT_EQ(h.config_read(0x06, 2), 0x0280u);
  EXPECT_EQ(h.config_read(0x0E, 1), 0u);
  EXPECT_EQ(h.config_read(0x3D, 1), 0u);  // no INTx pin: legacy mode uses IRQ 14/15
  for (unsigned bar = 0; bar < 4; ++bar) {
    h.config_write(0x10 + 4 * bar, 4, 0xFFFFFFFF);
    EXPECT_EQ(h.config_read(0x10 + 4 * bar, 4), 0u) << bar;
  }
  h.config_write(0x20, 4, 0xFFFFFFFF);
  EXPECT_EQ(h.config_read(0x20, 4), 0xFFFFFFF1u);  // 16 bytes of I/O
  h.config_write(0x20, 4, 0xC040);
  EXPECT_EQ(h.config_read(0x20, 4), 0xC041u);

  EXPECT_EQ(h.config_read(0x40, 4), 0x80008000u);  // both channels decode, as firmware leaves them
  h.config_write(0x40, 2, 0xA307);
  h.config_write(0x44, 1, 0x0B);
  EXPECT_EQ(h.config_read(0x40, 2), 0xA307u);
  EXPECT_EQ(h.config_read(0x44, 1), 0x0Bu);
  h.config_write(0x48, 1, 0xFF);
  EXPECT_EQ(h.config_read(0x48, 1), 0u);
}

TEST(IdePci, IsaBridgeMakesSlotOneMultifunction) {
  auto bridge = make_piix3_isa_bridge();
  std::lock_guard lock(bridge->mutex());
  EXPECT_EQ(bridge->config_read(0x00, 4), 0x70008086u);
  EXPECT_EQ(bridge->config_read(0x08, 4) >> 8, 0x060100u);
  EXPECT_EQ(bridge->config_read(0x0E, 1), 0x80u);
  EXPECT_EQ(bridge->config_read(0x60, 4), 0x80808080u);
  bridge->config_write(0x60, 1, 0x0B);
  EXPECT_EQ(bridge->config_read(0x60, 1), 0x0Bu);
  EXPECT_EQ(bridge->config_read(0x69, 1), 0x02u);
  EXPECT_TRUE(bridge->bars().empty());
}

TEST(IdePci, LegacyWindows) {
  auto windows = IdeController::legacy_windows();
  ASSERT_EQ(windows.size(), 4u);
  std::set<std::tuple<unsigned, uint64_t, uint64_t>> got;
  for (const auto& w : windows) {
    EXPECT_EQ(w.space, io::Space::pio);
    got.insert({w.region, w.base, w.size});
  }
  EXPECT_EQ(got, (std::set<std::tuple<unsigned, uint64_t, uint64_t>>{
                     {6, 0x1F0, 8}, {7, 0x3F6, 1}, {8, 0x170, 8}, {9, 0x376, 1}}));
}

TEST(IdePci, MissingContextServicesAreRefused) {
  GuestMemory memory({RamRange{0, 1 << 20}});
  DeviceContext no_memory;
  no_memory.isa_irq = [](uint32_t) { return std::make_shared<FakeIrq>(); };
  EXPECT_THROW(IdeController("ide", nullptr, no_memory), UsageError);
  DeviceContext no_irq;
  no_irq.memory = &memory;
  EXPECT_THROW(IdeController("ide", nullptr, no_irq), UsageError);
}

TEST(IdePci, RegisterTableNamesEveryRegister) {
  IdeHarness h("pci_table", 16);
  std::map<std::string, std::pair<unsigned, std::set<std::string>>> blocks;
  for (const auto& block : h.ide->register_blocks()) {
    auto& [region, names] = blocks[std::string(block.name)];
    region = block.region;
    for (const auto& reg : block.registers) names.insert(std::string(reg.name));
  }
  const std::set<std::string> command_block = {"data",    "features", "sector_count", "lba_low",
                                               "lba_mid", "lba_high", "device",       "command"};
  EXPECT_EQ(blocks["primary"], std::make_pair(6u, command_block));
  EXPECT_EQ(blocks["secondary"], std::make_pair(8u, command_block));
  EXPECT_EQ(blocks["primary_control"], std::make_pair(7u, std::set<std::string>{"device_control"}));
  EXPECT_EQ(blocks["secondary_control"], std::make_pair(9u, std::set<std::string>{"device_control"}));
  EXPECT_EQ(blocks["bus_master"],
            std::make_pair(4u, std::set<std::string>{"bm_command", "bm_status", "bm_prd", "bm2_command",
                                                     "bm2_status", "bm2_prd"}));
  // The reset values are what the primary reads at power-on.
  for (const auto& block : h.ide->register_blocks()) {
    if (block.name != "primary") continue;
    for (const auto& reg : block.registers) {
      if (reg.name == "data") continue;
      EXPECT_EQ(h.in(static_cast<uint16_t>(0x1F0 + reg.offset), 1), reg.reset_value) << reg.name;
    }
  }
}

dispatch::DispatchChoice choice(const char* key, const char* value) {
  dispatch::DispatchChoice c;
  c.add("ide", key, value);
  return c;
}

std::set<std::string> bound(const std::map<unsigned, dispatch::WindowBinding>& bindings, io::Path path) {
  std::set<std::string> names;
  for (const auto& [region, binding] : bindings) {
    for (const auto& r : binding.registers) {
      if (r.path == path) names.insert(std::to_string(region) + "." + std::string(r.reg.name));
    }
  }
  return names;
}

TEST(IdePci, CoalescingTakesExactlyTheLatches) {
  IdeHarness h("pci_dispatch", 16);
  const std::set<std::string> latches = {
      "6.features", "6.sector_count", "6.lba_low", "6.lba_mid", "6.lba_high", "6.device",
      "8.features", "8.sector_count", "8.lba_low", "8.lba_mid", "8.lba_high", "8.device",
      "4.bm_prd",   "4.bm2_prd"};
  for (const char* path : {"coalesced", "partial"}) {
    auto bindings = dispatch::bind_registers("ide", h.ide->register_blocks(), choice("dispatch", path));
    EXPECT_EQ(bound(bindings, io::Path::coalesced), latches) << path;
    size_t total = 0;
    for (const auto& [region, binding] : bindings) total += binding.registers.size();
    EXPECT_EQ(total, latches.size()) << path;  // nothing else leaves the exit path
  }
  for (const char* name : {"dispatch.command", "dispatch.data", "dispatch.device_control", "dispatch.bm_command",
                           "dispatch.bm_status"}) {
    EXPECT_THROW((void)dispatch::bind_registers("ide", h.ide->register_blocks(), choice(name, "coalesced")),
                 UsageError)
        << name;
  }
  auto one = dispatch::bind_registers("ide", h.ide->register_blocks(), choice("dispatch.primary.lba_low", "coalesced"));
  EXPECT_EQ(bound(one, io::Path::coalesced), std::set<std::string>{"6.lba_low"});
}

// Coalesced replay delivers the latch writes in order before the command: the HOB shift comes out the same.
TEST(IdePci, LatchesReplayedInOrderGiveTheSameLba48Command) {
  IdeHarness h("pci_replay", 1024);
  struct Write {
    uint16_t port;
    uint8_t value;
  };
  std::vector<Write> ring = {{kCount, 0}, {kLbaLow, 0}, {kLbaMid, 0}, {kLbaHigh, 0}, {kCount, 1},
                             {kLbaLow, 0x10}, {kLbaMid, 0x02}, {kLbaHigh, 0}, {kDevice, 0x40}};
  for (const auto& w : ring) h.outb(w.port, w.value);  // what Dispatcher::drain_coalesced does before the exit
  h.command(0x24);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc | kDrq);
  EXPECT_EQ(h.read_pio(kSector), pattern_sectors(0x210, 1));
}

}  // namespace
}  // namespace iovmm::devices::ide_test
