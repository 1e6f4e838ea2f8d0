// PCI: configuration mechanism #1 on a port I/O bus in front of the host bridge and test functions, BAR sizing and
// decoding with windows kept on the buses by PciBarMapper, capabilities, and the SeaBIOS-compatible BAR layout.
#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <optional>
#include <vector>

#include <fmt/core.h>

#include "common/error.h"
#include "devices/pci/bar_allocation.h"
#include "devices/pci/pci_bar_mapper.h"
#include "devices/pci/pci_device.h"
#include "devices/pci/pci_host_bridge.h"
#include "devices/pci/pci_root.h"
#include "io/bus.h"

namespace iovmm::devices {
namespace {

using namespace pci_config;

constexpr uint32_t kEnable = 0x80000000u;

// A function whose BAR registers answer with a recognisable pattern, so a test can tell which BAR a window reaches.
class TestFunction : public PciDevice {
 public:
  TestFunction(std::string name, std::vector<BarSpec> bars, uint8_t pin = 1, uint32_t class_code = 0xFF0000)
      : PciDevice(std::move(name),
                  PciIdentity{.vendor_id = 0x1234,
                              .device_id = 0x5678,
                              .revision = 1,
                              .class_code = class_code,
                              .subsystem_vendor_id = 0x1af4,
                              .subsystem_id = 0x1100,
                              .interrupt_pin = pin,
                              .status = 0},
                  std::move(bars)) {}

  void raise_status(uint16_t bits) {
    std::lock_guard lock(mutex());
    config_bytes()[kStatus] |= static_cast<uint8_t>(bits);
    config_bytes()[kStatus + 1] |= static_cast<uint8_t>(bits >> 8);
  }

  uint64_t last_write = 0;

 protected:
  uint64_t bar_read(unsigned bar, uint64_t offset, unsigned) override { return 0xB000 | (bar << 8) | offset; }
  void bar_write(unsigned bar, uint64_t offset, unsigned, uint64_t value) override {
    last_write = (uint64_t{bar} << 56) | (offset << 32) | value;
  }
};

class DevPciTest : public ::testing::Test {
 protected:
  DevPciTest() {
    pio_.map(io::Window{.base = PciRoot::kIoBase, .size = PciRoot::kRegionSize, .device = root_, .region = 0,
                        .label = "pci-cfg"});
    root_->attach(0, 0, host_bridge_);
  }

  std::shared_ptr<TestFunction> add_function(unsigned slot, std::vector<BarSpec> bars, uint8_t pin = 1,
                                             uint32_t class_code = 0xFF0000) {
    auto fn = std::make_shared<TestFunction>(fmt::format("dev{}", slot), std::move(bars), pin, class_code);
    fn->set_bar_observer(mapper_.observer());
    root_->attach(slot, 0, fn);
    return fn;
  }
  static uint32_t address(unsigned bus, unsigned slot, unsigned fn, unsigned reg) {
    return kEnable | (bus << 16) | (slot << 11) | (fn << 8) | (reg & 0xFC);
  }
  void select(uint32_t addr) { ASSERT_EQ(pio_.write(0xCF8, 4, addr), io::AccessResult::ok); }
  uint64_t cfg_read(unsigned slot, unsigned reg, unsigned size, unsigned fn = 0, unsigned bus = 0) {
    select(address(bus, slot, fn, reg));
    uint64_t value = 0;
    (void)pio_.read(0xCFC + (reg & 3), size, value);
    return value;
  }
  void cfg_write(unsigned slot, unsigned reg, unsigned size, uint64_t value, unsigned fn = 0) {
    select(address(0, slot, fn, reg));
    (void)pio_.write(0xCFC + (reg & 3), size, value);
  }
  uint64_t mem_read(uint64_t addr, unsigned size = 4) {
    uint64_t value = 0;
    (void)mmio_.read(addr, size, value);
    return value;
  }
  uint64_t io_read(uint64_t addr, unsigned size = 1) {
    uint64_t value = 0;
    (void)pio_.read(addr, size, value);
    return value;
  }

  io::Bus pio_{io::Space::pio};
  io::Bus mmio_{io::Space::mmio};
  PciBarMapper mapper_{pio_, mmio_};
  std::shared_ptr<PciRoot> root_ = std::make_shared<PciRoot>();
  std::shared_ptr<PciHostBridge> host_bridge_ = std::make_shared<PciHostBridge>();
};

// ---- configuration mechanism #1 against an independent reference of the host bridge's header ----

struct ConfigReference {
  std::array<uint8_t, 256> bytes{};
  std::array<uint8_t, 256> writable{};
  std::array<uint8_t, 256> write_one_to_clear{};

  ConfigReference() {
    const uint8_t header[] = {0x86, 0x80, 0x37, 0x12,   // vendor 8086, device 1237
                              0x00, 0x00, 0x00, 0x00,   // command, status
                              0x02, 0x00, 0x00, 0x06};  // revision 02, class 06 00 00
    std::copy(std::begin(header), std::end(header), bytes.begin());
    bytes[0x2C] = 0xF4;  // subsystem 1af4:1100
    bytes[0x2D] = 0x1A;
    bytes[0x2E] = 0x00;
    bytes[0x2F] = 0x11;
    writable[0x04] = 0x47;  // I/O, memory, bus master, parity response
    writable[0x05] = 0x05;  // SERR, INTx disable
    writable[0x0C] = 0xFF;  // cache line size
    writable[0x3C] = 0xFF;  // interrupt line
    write_one_to_clear[0x07] = 0xF9;
  }
  uint64_t read(unsigned reg, unsigned size) const {
    uint64_t value = 0;
    for (unsigned i = 0; i < size; ++i) value |= uint64_t{bytes[reg + i]} << (8 * i);
    return value;
  }
  void write(unsigned reg, unsigned size, uint64_t value) {
    for (unsigned i = 0; i < size; ++i) {
      auto b = static_cast<uint8_t>(value >> (8 * i));
      unsigned o = reg + i;
      bytes[o] = static_cast<uint8_t>((bytes[o] & ~writable[o]) | (b & writable[o]));
      bytes[o] &= static_cast<uint8_t>(~(b & write_one_to_clear[o]));
    }
  }
};

TEST_F(DevPciTest, HostBridgeIdentityIsQemus) {
  EXPECT_EQ(cfg_read(0, kVendorId, 4), 0x12378086u);
  EXPECT_EQ(cfg_read(0, kRevision, 4), 0x06000002u);
  EXPECT_EQ(cfg_read(0, kHeaderType, 1), 0x00u);
  EXPECT_EQ(cfg_read(0, kSubsystemVendorId, 4), 0x11001af4u);
}

TEST_F(DevPciTest, HostBridgeEveryOffsetEveryWidth) {
  ConfigReference reference;
  auto check_all = [&](const char* when) {
    for (unsigned reg = 0; reg < 256; reg += 4) {
      ASSERT_EQ(cfg_read(0, reg, 4), reference.read(reg, 4)) << when << ": dword at " << reg;
    }
  };
  check_all("initially");
  for (unsigned size : {1u, 2u, 4u}) {
    for (unsigned reg = 0; reg < 256; ++reg) {
      if ((reg & 3) + size > 4) {
        // Runs past 0xCFF: the bus refuses it (all-ones, write dropped), as a PC would not decode it as config.
        select(address(0, 0, 0, reg));
        uint64_t value = 0;
        EXPECT_EQ(pio_.read(0xCFC + (reg & 3), size, value), io::AccessResult::crosses_end);
        EXPECT_EQ(value, io::size_mask(size));
        continue;
      }
      ASSERT_EQ(cfg_read(0, reg, size), reference.read(reg, size)) << "read size " << size << " at " << reg;
      for (uint64_t pattern : {0xFFFFFFFFull, 0x00000000ull, 0xA5C3961Eull ^ (reg * 0x01010101ull)}) {
        uint64_t value = pattern & io::size_mask(size);
        cfg_write(0, reg, size, value);
        reference.write(reg, size, value);
        ASSERT_EQ(cfg_read(0, reg, size), reference.read(reg, size))
            << "after writing " << value << " (size " << size << ") at " << reg;
      }
      if (reg % 32 == 0) check_all("after writes");
    }
  }
  check_all("finally");
}

TEST_F(DevPciTest, AbsentFunctionsAndOtherBusesReadAllOnes) {
  EXPECT_EQ(cfg_read(5, kVendorId, 2), 0xFFFFu);
  EXPECT_EQ(cfg_read(5, kVendorId, 4), 0xFFFFFFFFu);
  EXPECT_EQ(cfg_read(5, 0x3D, 1), 0xFFu);
  EXPECT_EQ(cfg_read(0, kVendorId, 2, /*fn=*/1), 0xFFFFu) << "function 1 of the host bridge";
  EXPECT_EQ(cfg_read(0, kVendorId, 4, 0, /*bus=*/1), 0xFFFFFFFFu);
  cfg_write(5, kCommand, 2, 0xFFFF);  // dropped, no crash
  EXPECT_EQ(cfg_read(5, kCommand, 2), 0xFFFFu);

  // Enable bit clear: no configuration cycle at all.
  select(0x00000000);
  uint64_t value = 0;
  ASSERT_EQ(pio_.read(0xCFC, 4, value), io::AccessResult::ok);
  EXPECT_EQ(value, 0xFFFFFFFFu);
  ASSERT_EQ(pio_.write(0xCFC + 4 - 4, 2, 0x0007), io::AccessResult::ok);
  EXPECT_EQ(cfg_read(0, kCommand, 2), 0x0000u) << "the write without the enable bit reached nothing";
}

TEST_F(DevPciTest, AddressLatchesOnlyOn32BitWrites) {
  select(address(0, 0, 0, 0x08));
  uint64_t value = 0;
  ASSERT_EQ(pio_.read(0xCF8, 4, value), io::AccessResult::ok);
  EXPECT_EQ(value, 0x80000008u);
  ASSERT_EQ(pio_.write(0xCF8, 1, 0x00), io::AccessResult::ok);
  ASSERT_EQ(pio_.write(0xCF8, 2, 0x0000), io::AccessResult::ok);
  ASSERT_EQ(pio_.write(0xCFA, 2, 0x0000), io::AccessResult::ok);
  ASSERT_EQ(pio_.read(0xCF8, 4, value), io::AccessResult::ok);
  EXPECT_EQ(value, 0x80000008u);
  ASSERT_EQ(pio_.read(0xCFB, 1, value), io::AccessResult::ok);
  EXPECT_EQ(value, 0x80u) << "narrow reads see their byte lane";
  ASSERT_EQ(pio_.read(0xCFC, 4, value), io::AccessResult::ok);
  EXPECT_EQ(value, 0x06000002u) << "still addressing the host bridge's class/revision dword";
}

// ---- CONFIG_ADDRESS's low bits and accesses past the end, as QEMU's pci_host.c computes them ----

// Device-specific space (0x40..0xFF) that reads back each byte's own offset and records what reached the function,
// so a test can tell the register and the width an access at 0xCFC..0xCFF arrived with.
class OffsetPatternFunction : public PciDevice {
 public:
  OffsetPatternFunction() : PciDevice("pattern", PciIdentity{.vendor_id = 0x1234, .device_id = 0x5678}, {}) {}

  struct Access {
    unsigned offset;
    unsigned size;
    uint32_t value;
    bool operator==(const Access&) const = default;
  };
  std::vector<Access> reads;
  std::vector<Access> writes;

 protected:
  uint32_t config_read_extra(unsigned offset, unsigned size) override {
    uint32_t value = 0;
    for (unsigned i = 0; i < size; ++i) value |= (offset + i) << (8 * i);
    reads.push_back({offset, size, value});
    return value;
  }
  void config_write_extra(unsigned offset, unsigned size, uint32_t value) override {
    writes.push_back({offset, size, value});
  }
};

TEST_F(DevPciTest, DataAccessUsesTheLowBitsOfConfigAddress) {
  // The shortcut test libraries take: the register's low bits in CONFIG_ADDRESS, the access at 0xCFC.
  select(kEnable | 0x02);
  uint64_t value = 0;
  ASSERT_EQ(pio_.read(0xCFC, 2, value), io::AccessResult::ok);
  EXPECT_EQ(value, 0x1237u) << "device ID, not the vendor ID at register 0";
  ASSERT_EQ(pio_.read(0xCFC, 1, value), io::AccessResult::ok);
  EXPECT_EQ(value, 0x37u);

  // The textbook form still works: aligned CONFIG_ADDRESS, the lane picks the register.
  select(kEnable | 0x00);
  ASSERT_EQ(pio_.read(0xCFE, 2, value), io::AccessResult::ok);
  EXPECT_EQ(value, 0x1237u);

  // The lane is ORed in, not added (config_reg | (port & 3)): 0x..02 with a word at 0xCFE is register 2 again.
  select(kEnable | 0x02);
  ASSERT_EQ(pio_.read(0xCFE, 2, value), io::AccessResult::ok);
  EXPECT_EQ(value, 0x1237u);

  // Writes take the same register: command (0x04) through CONFIG_ADDRESS 0x..05 and a byte at 0xCFC is byte 0x05.
  select(kEnable | 0x05);
  ASSERT_EQ(pio_.write(0xCFC, 1, 0x04), io::AccessResult::ok);  // bit 10 of the command register: INTx disable
  EXPECT_EQ(cfg_read(0, kCommand, 2), 0x0400u);
}

TEST_F(DevPciTest, DwordAtUnalignedRegisterRunsOnIntoTheNextOne) {
  cfg_write(0, kCommand, 2, 0x0003);
  // QEMU hands the function (register 2, 4 bytes): device ID, then the command register.
  select(kEnable | 0x02);
  uint64_t value = 0;
  ASSERT_EQ(pio_.read(0xCFC, 4, value), io::AccessResult::ok);
  EXPECT_EQ(value, 0x00031237u);
  ASSERT_EQ(pio_.write(0xCFC, 4, 0x0000FFFFu), io::AccessResult::ok);  // device ID is read-only; command cleared
  EXPECT_EQ(cfg_read(0, kCommand, 2), 0x0000u);
  EXPECT_EQ(cfg_read(0, kDeviceId, 2), 0x1237u);
}

TEST_F(DevPciTest, AccessPastTheEndOfConfigSpaceIsClamped) {
  auto fn = std::make_shared<OffsetPatternFunction>();
  root_->attach(4, 0, fn);
  const uint32_t slot4 = kEnable | (4u << 11);
  uint64_t value = 0;

  // A dword at 0xFE reaches the function as a word; the two bytes past the end read 0, as in QEMU.
  select(slot4 | 0xFE);
  ASSERT_EQ(pio_.read(0xCFC, 4, value), io::AccessResult::ok);
  EXPECT_EQ(value, 0x0000FFFEu);
  EXPECT_EQ(fn->reads.back(), (OffsetPatternFunction::Access{0xFE, 2, 0xFFFE}));

  // A dword at 0xFD has three bytes inside: the function is asked for a word and a byte.
  fn->reads.clear();
  select(slot4 | 0xFD);
  ASSERT_EQ(pio_.read(0xCFC, 4, value), io::AccessResult::ok);
  EXPECT_EQ(value, 0x00FFFEFDu);
  EXPECT_EQ(fn->reads, (std::vector<OffsetPatternFunction::Access>{{0xFD, 2, 0xFEFD}, {0xFF, 1, 0xFF}}));

  // 0xFF with a word: one byte.
  select(slot4 | 0xFF);
  ASSERT_EQ(pio_.read(0xCFC, 2, value), io::AccessResult::ok);
  EXPECT_EQ(value, 0x00FFu);

  // Writes are clamped the same way: only the bytes inside the space are written.
  select(slot4 | 0xFE);
  ASSERT_EQ(pio_.write(0xCFC, 4, 0xAABBCCDDu), io::AccessResult::ok);
  select(slot4 | 0xFD);
  ASSERT_EQ(pio_.write(0xCFC, 4, 0x11223344u), io::AccessResult::ok);
  EXPECT_EQ(fn->writes, (std::vector<OffsetPatternFunction::Access>{
                            {0xFE, 2, 0xCCDD}, {0xFD, 2, 0x3344}, {0xFF, 1, 0x22}}));

  // Aligned accesses inside the space are untouched by the clamp.
  fn->reads.clear();
  EXPECT_EQ(cfg_read(4, 0xFC, 4), 0xFFFEFDFCu);
  EXPECT_EQ(fn->reads, (std::vector<OffsetPatternFunction::Access>{{0xFC, 4, 0xFFFEFDFC}}));
}

TEST_F(DevPciTest, ResetControlRegisterAt0xCF9) {
  int resets = 0;
  auto root = std::make_shared<PciRoot>("pci-cfg", [&] { ++resets; });
  io::Bus pio(io::Space::pio);
  pio.map(io::Window{.base = 0xCF8, .size = 8, .device = root, .region = 0, .label = "pci-cfg"});
  ASSERT_EQ(pio.write(0xCF9, 1, 0x02), io::AccessResult::ok);  // SYS_RST alone selects the kind of reset
  EXPECT_EQ(resets, 0);
  uint64_t value = 0;
  ASSERT_EQ(pio.read(0xCF9, 1, value), io::AccessResult::ok);
  EXPECT_EQ(value, 0x02u);
  ASSERT_EQ(pio.write(0xCF9, 1, 0x06), io::AccessResult::ok);  // RST_CPU starts it
  EXPECT_EQ(resets, 1);
}

TEST_F(DevPciTest, AttachRefusesTakenSlotsAndMarksMultiFunction) {
  EXPECT_THROW(root_->attach(0, 0, std::make_shared<PciHostBridge>()), Error);
  EXPECT_THROW(root_->attach(32, 0, std::make_shared<PciHostBridge>()), Error);
  EXPECT_THROW(root_->attach(1, 8, std::make_shared<PciHostBridge>()), Error);
  auto fn1 = std::make_shared<TestFunction>("fn1", std::vector<BarSpec>{});
  root_->attach(0, 1, fn1);
  EXPECT_EQ(cfg_read(0, kHeaderType, 1), 0x80u) << "function 0 now says multi-function";
  EXPECT_EQ(cfg_read(0, kVendorId, 4, 1), 0x56781234u);
}

TEST_F(DevPciTest, CommandAndStatusRules) {
  auto fn = add_function(3, {});
  cfg_write(3, kCommand, 2, 0xFFFF);
  EXPECT_EQ(cfg_read(3, kCommand, 2), 0x0547u);
  fn->raise_status(0xF900 | 0x0200);  // every error bit plus DEVSEL medium (read-only)
  EXPECT_EQ(cfg_read(3, kStatus, 2), 0xFB00u);
  cfg_write(3, kStatus, 2, 0x0100);
  EXPECT_EQ(cfg_read(3, kStatus, 2), 0xFA00u);
  cfg_write(3, kStatus + 1, 1, 0x60);  // byte write: signalled system error + received master abort
  EXPECT_EQ(cfg_read(3, kStatus, 2), 0x9A00u);
  cfg_write(3, kCommand, 4, 0xFFFF0000);  // dword write: command 0, status all ones -> clears the rest
  EXPECT_EQ(cfg_read(3, kCommand, 4), 0x02000000u);
}

// ---- BARs ----

uint64_t bar_size(uint32_t readback, bool io) {
  uint32_t mask = io ? ~0x3u : ~0xFu;
  return (~(readback & mask) + 1) & 0xFFFFFFFFu;
}

TEST_F(DevPciTest, BarSizingByAllOnes) {
  add_function(2, {{.index = 0, .size = 0x1000, .kind = BarKind::mem32},
                   {.index = 1, .size = 0x100, .kind = BarKind::io},
                   {.index = 2, .size = 0x100000, .kind = BarKind::mem64, .prefetchable = true}});
  std::array<uint32_t, 6> sized{};
  for (unsigned bar = 0; bar < 6; ++bar) {
    unsigned reg = kBar0 + 4 * bar;
    uint32_t old = static_cast<uint32_t>(cfg_read(2, reg, 4));
    cfg_write(2, reg, 4, 0xFFFFFFFF);
    sized[bar] = static_cast<uint32_t>(cfg_read(2, reg, 4));
    cfg_write(2, reg, 4, old);
    EXPECT_EQ(cfg_read(2, reg, 4), old) << bar;
  }
  EXPECT_EQ(sized[0], 0xFFFFF000u);  // mem32, not prefetchable
  EXPECT_EQ(sized[1], 0xFFFFFF01u);  // I/O
  EXPECT_EQ(sized[2], 0xFFF0000Cu);  // mem64 (type 10b) + prefetchable
  EXPECT_EQ(sized[3], 0xFFFFFFFFu);  // upper half of the 64-bit BAR
  EXPECT_EQ(sized[4], 0u);           // unimplemented
  EXPECT_EQ(sized[5], 0u);
  EXPECT_EQ(bar_size(sized[0], false), 0x1000u);
  EXPECT_EQ(bar_size(sized[1], true), 0x100u);
  EXPECT_EQ(bar_size(sized[2], false), 0x100000u);

  // Byte-wide writes size the same way.
  for (unsigned i = 0; i < 4; ++i) cfg_write(2, kBar0 + i, 1, 0xFF);
  EXPECT_EQ(cfg_read(2, kBar0, 4), 0xFFFFF000u);
  EXPECT_EQ(cfg_read(2, kBar0 + 2, 2), 0xFFFFu);
  EXPECT_EQ(cfg_read(2, kBar0, 1), 0x00u);
}

TEST_F(DevPciTest, BarDecodeAndMovesKeepBusWindowsInStep) {
  auto fn = add_function(1, {{.index = 0, .size = 0x1000, .kind = BarKind::mem32},
                             {.index = 1, .size = 0x100, .kind = BarKind::io},
                             {.index = 2, .size = 0x4000, .kind = BarKind::mem64}});
  cfg_write(1, kBar0, 4, 0xFEBFF000);
  cfg_write(1, kBar0 + 4, 4, 0xC000);
  cfg_write(1, kBar0 + 8, 4, 0xFEBF8000);
  cfg_write(1, kBar0 + 12, 4, 0);
  EXPECT_TRUE(mmio_.windows().empty()) << "no decode yet";
  EXPECT_EQ(pio_.windows().size(), 1u) << "only the configuration ports";

  cfg_write(1, kCommand, 2, kCommandMemory);
  ASSERT_EQ(mmio_.windows().size(), 2u);
  EXPECT_EQ(mem_read(0xFEBFF010), 0xB010u);
  EXPECT_EQ(mem_read(0xFEBF8020), 0xB220u);
  EXPECT_EQ(io_read(0xC000), 0xFFu) << "I/O decode still off";

  cfg_write(1, kCommand, 2, kCommandMemory | kCommandIo);
  EXPECT_EQ(io_read(0xC005), 0x05u);
  ASSERT_EQ(pio_.write(0xC010, 1, 0x77), io::AccessResult::ok);
  EXPECT_EQ(fn->last_write, (uint64_t{1} << 56) | (uint64_t{0x10} << 32) | 0x77);
  bool labelled = false;
  for (const auto& w : pio_.windows()) labelled |= w.label == "dev1.bar1" && w.base == 0xC000 && w.size == 0x100;
  EXPECT_TRUE(labelled);

  // Move BAR0 with decode on: the window follows, keeping its counts.
  cfg_write(1, kBar0, 4, 0xE0000000);
  EXPECT_EQ(mem_read(0xFEBFF010), 0xFFFFFFFFu);
  EXPECT_EQ(mem_read(0xE0000010), 0xB010u);
  EXPECT_EQ(mapper_.mapped_base(*fn, 0), 0xE0000000u);

  // Move the 64-bit BAR above 4 GiB through its upper half.
  cfg_write(1, kBar0 + 12, 4, 0x1);
  EXPECT_EQ(mem_read(0xFEBF8020), 0xFFFFFFFFu);
  EXPECT_EQ(mem_read(0x1FEBF8020ull), 0xB220u);

  // Memory decode off: both memory windows go, I/O stays.
  cfg_write(1, kCommand, 2, kCommandIo);
  EXPECT_TRUE(mmio_.windows().empty());
  EXPECT_EQ(io_read(0xC001), 0x01u);
  cfg_write(1, kCommand, 2, 0);
  EXPECT_EQ(pio_.windows().size(), 1u);

  // Sizing a BAR while decode is on must not map the sizing pattern.
  cfg_write(1, kCommand, 2, kCommandMemory);
  cfg_write(1, kBar0, 4, 0xFFFFFFFF);
  EXPECT_EQ(mapper_.mapped_base(*fn, 0), std::nullopt);
  cfg_write(1, kBar0, 4, 0xFEBFF000);
  EXPECT_EQ(mapper_.mapped_base(*fn, 0), 0xFEBFF000u);
}

TEST_F(DevPciTest, BarOverlappingAnotherWindowIsLeftUnmapped) {
  auto other = std::make_shared<TestFunction>("other", std::vector<BarSpec>{});
  mmio_.map(io::Window{.base = 0xE0000000, .size = 0x1000, .device = other, .region = 7, .label = "other"});
  auto fn = add_function(1, {{.index = 0, .size = 0x1000, .kind = BarKind::mem32}});
  cfg_write(1, kBar0, 4, 0xE0000000);
  cfg_write(1, kCommand, 2, kCommandMemory);
  EXPECT_EQ(mapper_.mapped_base(*fn, 0), std::nullopt);
  EXPECT_EQ(mmio_.windows().size(), 1u);
  cfg_write(1, kBar0, 4, 0xE0001000);  // moved somewhere free: now it maps
  EXPECT_EQ(mapper_.mapped_base(*fn, 0), 0xE0001000u);
  EXPECT_EQ(mem_read(0xE0001004), 0xB004u);
  cfg_write(1, kBar0, 4, 0xE0000000);  // and back onto the other window: refused again, old window gone
  EXPECT_EQ(mapper_.mapped_base(*fn, 0), std::nullopt);
  EXPECT_EQ(mem_read(0xE0001004), 0xFFFFFFFFu);
  EXPECT_EQ(mmio_.windows().size(), 1u);
}

TEST_F(DevPciTest, InvalidBarDeclarationsAreRefused) {
  EXPECT_THROW(TestFunction("x", {{.index = 0, .size = 0x1800, .kind = BarKind::mem32}}), Error);
  EXPECT_THROW(TestFunction("x", {{.index = 0, .size = 2, .kind = BarKind::io}}), Error);
  EXPECT_THROW(TestFunction("x", {{.index = 5, .size = 0x1000, .kind = BarKind::mem64}}), Error);
  EXPECT_THROW(TestFunction("x", {{.index = 0, .size = 0x1000, .kind = BarKind::mem64},
                                  {.index = 1, .size = 0x1000, .kind = BarKind::mem32}}),
               Error);
  EXPECT_THROW(TestFunction("x", {{.index = 0, .size = 0x100, .kind = BarKind::io, .prefetchable = true}}), Error);
}

// ---- capabilities ----

TEST_F(DevPciTest, CapabilityListChains) {
  auto fn = add_function(4, {});
  EXPECT_EQ(cfg_read(4, kStatus, 2) & kStatusCapabilityList, 0u);
  EXPECT_EQ(cfg_read(4, kCapabilitiesPointer, 1), 0u);
  const uint8_t vendor_body[] = {5, 0xAA, 0xBB};  // vendor-specific: length, then data
  const uint8_t msi_body[] = {0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  const uint8_t msi_writable[] = {0x01, 0, 0xFC, 0xFF, 0xFF, 0xFF, 0, 0, 0xFF, 0xFF};
  EXPECT_EQ(fn->add_capability(0x09, vendor_body), 0x40);
  EXPECT_EQ(fn->add_capability(0x05, msi_body, msi_writable), 0x48);
  EXPECT_EQ(fn->add_capability(0x11, std::vector<uint8_t>(10, 0)), 0x54);
  EXPECT_NE(cfg_read(4, kStatus, 2) & kStatusCapabilityList, 0u);

  std::vector<std::pair<uint8_t, uint8_t>> walked;  // (offset, id)
  for (auto ptr = static_cast<uint8_t>(cfg_read(4, kCapabilitiesPointer, 1)); ptr != 0 && walked.size() < 48;
       ptr = static_cast<uint8_t>(cfg_read(4, ptr + 1, 1))) {
    walked.emplace_back(ptr, static_cast<uint8_t>(cfg_read(4, ptr, 1)));
  }
  EXPECT_EQ(walked, (std::vector<std::pair<uint8_t, uint8_t>>{{0x40, 0x09}, {0x48, 0x05}, {0x54, 0x11}}));
  EXPECT_EQ(cfg_read(4, 0x40, 4), 0xAA054809u) << "id, next, body";

  // Read-only body bytes ignore writes; writable ones take them, through their mask.
  cfg_write(4, 0x42, 2, 0xFFFF);
  EXPECT_EQ(cfg_read(4, 0x42, 2), 0xAA05u);
  cfg_write(4, 0x48, 4, 0xFFFFFFFF);
  EXPECT_EQ(cfg_read(4, 0x48, 4), 0x00815405u) << "id and next read-only, control bit 0 writable";
  cfg_write(4, 0x4C, 4, 0xFEE01003);
  EXPECT_EQ(cfg_read(4, 0x4C, 4), 0xFEE01000u);
}

TEST_F(DevPciTest, CapabilitiesThatDoNotFitAreRefused) {
  auto fn = add_function(4, {});
  EXPECT_THROW(fn->add_capability(0x09, std::vector<uint8_t>(0xC0 - 1, 0)), Error);
  EXPECT_EQ(fn->add_capability(0x09, std::vector<uint8_t>(0xC0 - 2, 0)), 0x40);
  EXPECT_THROW(fn->add_capability(0x09, {}), Error);
}

// ---- SeaBIOS-compatible allocation ----

TEST_F(DevPciTest, AllocationFirstDeviceGetsSeaBiosAddresses) {
  auto fn = add_function(1, {{.index = 0, .size = 0x1000, .kind = BarKind::mem32},
                             {.index = 1, .size = 0x100, .kind = BarKind::io}});
  auto assignments = assign_bars_like_seabios(*root_, {.ram_below_4g = 512ull << 20});
  ASSERT_EQ(assignments.size(), 2u);
  EXPECT_EQ(cfg_read(1, kBar0, 4), 0xFEBFF000u);
  EXPECT_EQ(cfg_read(1, kBar0 + 4, 4), 0xC001u);
  EXPECT_EQ(cfg_read(1, kCommand, 2), kCommandIo | kCommandMemory | kCommandSerr);
  EXPECT_EQ(cfg_read(0, kCommand, 2), kCommandIo | kCommandMemory | kCommandSerr) << "SeaBIOS enables all";
  EXPECT_EQ(cfg_read(1, kInterruptLine, 1), 10u) << "slot 1 INTA# -> PIIX IRQ 10";
  EXPECT_EQ(mem_read(0xFEBFF008), 0xB008u);
  EXPECT_EQ(io_read(0xC010), 0x10u);
  EXPECT_EQ(mapper_.mapped_base(*fn, 1), 0xC000u);
}

TEST_F(DevPciTest, AllocationPacksSeveralDevicesLargestFirst) {
  auto a = add_function(1, {{.index = 0, .size = 0x10, .kind = BarKind::mem32},  // takes SeaBIOS's 4 KiB minimum
                            {.index = 1, .size = 0x20, .kind = BarKind::io}});
  auto b = add_function(2,
                        {{.index = 0, .size = 0x10000, .kind = BarKind::mem32},
                         {.index = 1, .size = 0x2000, .kind = BarKind::mem32, .prefetchable = true},
                         {.index = 2, .size = 0x100, .kind = BarKind::io}},
                        /*pin=*/1);
  auto c = add_function(3, {{.index = 0, .size = 0x100000, .kind = BarKind::mem64}}, /*pin=*/2);
  auto d = add_function(4, {{.index = 0, .size = 0x1000, .kind = BarKind::mem32}}, /*pin=*/0);
  (void)assign_bars_like_seabios(*root_, {.ram_below_4g = 1ull << 30});
  // Memory: entries 1M (c), 64K (b), 4K (a), 4K (d) summing 0x112000; prefetchable 8K (b) goes on top.
  //   prefetchable base = 0xFEC00000 - 0x2000 = 0xFEBFE000
  //   memory base = align_down(0xFEBFE000 - 0x112000, 1 MiB) = 0xFEA00000
  EXPECT_EQ(cfg_read(3, kBar0, 4), 0xFEA00004u);  // 64-bit type bits
  EXPECT_EQ(cfg_read(3, kBar0 + 4, 4), 0u);
  EXPECT_EQ(cfg_read(2, kBar0, 4), 0xFEB00000u);
  EXPECT_EQ(cfg_read(1, kBar0, 4), 0xFEB10000u);
  EXPECT_EQ(cfg_read(4, kBar0, 4), 0xFEB11000u) << "equal sizes keep enumeration order";
  EXPECT_EQ(cfg_read(2, kBar0 + 4, 4), 0xFEBFE008u);
  // I/O: 256 (b) then 32 (a) from 0xC000.
  EXPECT_EQ(cfg_read(2, kBar0 + 8, 4), 0xC001u);
  EXPECT_EQ(cfg_read(1, kBar0 + 4, 4), 0xC101u);
  // Interrupt lines: PIIX swizzle {10,10,11,11}[(pin - 1 + slot - 1) & 3].
  EXPECT_EQ(cfg_read(1, kInterruptLine, 1), 10u);
  EXPECT_EQ(cfg_read(2, kInterruptLine, 1), 10u);
  EXPECT_EQ(cfg_read(3, kInterruptLine, 1), 11u);  // pin B, slot 3 -> index 3
  EXPECT_EQ(cfg_read(4, kInterruptLine, 1), 0u) << "no pin, no line";
  // All windows are live.
  EXPECT_EQ(mem_read(0xFEA00010), 0xB010u);
  EXPECT_EQ(mem_read(0xFEBFE000), 0xB100u);
  EXPECT_EQ(io_read(0xC101), 0x01u);
  EXPECT_EQ(mmio_.windows().size(), 5u);
}

TEST_F(DevPciTest, AllocationSwapsMemoryRegionsForAlignment) {
  add_function(1, {{.index = 0, .size = 0x1000, .kind = BarKind::mem32},
                   {.index = 1, .size = 0x200000, .kind = BarKind::mem32, .prefetchable = true}});
  (void)assign_bars_like_seabios(*root_, {.ram_below_4g = 1ull << 30});
  // Plain memory's largest BAR (4K) is smaller than prefetchable's (2M): plain memory goes on top.
  EXPECT_EQ(cfg_read(1, kBar0, 4), 0xFEBFF000u);
  EXPECT_EQ(cfg_read(1, kBar0 + 4, 4), 0xFE800008u);  // align_down(0xFEBFF000 - 2M, 2M)
}

TEST_F(DevPciTest, AllocationMoves64BitBarsAboveFourGigWhenTheHoleIsTooSmall) {
  add_function(1, {{.index = 0, .size = 1ull << 30, .kind = BarKind::mem64, .prefetchable = true},
                   {.index = 2, .size = 0x1000, .kind = BarKind::mem32}});
  // 3.5 GiB of low RAM leaves 0xE0000000..0xFEC00000 (492 MiB): the 1 GiB BAR cannot fit below 4 GiB.
  (void)assign_bars_like_seabios(*root_, {.ram_below_4g = 0xE0000000ull, .ram_above_4g = 0x20000000ull});
  // Base: 4 GiB + 512 MiB of high RAM, rounded up to the BAR's alignment and to 1 GiB: 5 GiB.
  EXPECT_EQ(cfg_read(1, kBar0, 4), 0x4000000Cu);
  EXPECT_EQ(cfg_read(1, kBar0 + 4, 4), 0x1u);
  EXPECT_EQ(cfg_read(1, kBar0 + 8, 4), 0xFEBFF000u);
}

TEST_F(DevPciTest, AllocationUsesLowIoWindowForLargeIoNeeds) {
  // 0x4000 bytes of I/O BARs no longer fit in 0xC000..0xFFFF: SeaBIOS starts them at 0x1000 instead.
  add_function(1, {{.index = 0, .size = 0x1000, .kind = BarKind::io},
                   {.index = 1, .size = 0x1000, .kind = BarKind::io},
                   {.index = 2, .size = 0x1000, .kind = BarKind::io},
                   {.index = 3, .size = 0x1000, .kind = BarKind::io}});
  (void)assign_bars_like_seabios(*root_, {.ram_below_4g = 1ull << 30});
  EXPECT_EQ(cfg_read(1, kBar0, 4), 0x1001u);
  EXPECT_EQ(cfg_read(1, kBar0 + 12, 4), 0x4001u);
  // 0x9000 or more cannot be placed at all (SeaBIOS panics; we refuse at set-up).
  add_function(2, {{.index = 0, .size = 0x4000, .kind = BarKind::io},
                   {.index = 1, .size = 0x1000, .kind = BarKind::io}});
  EXPECT_THROW((void)assign_bars_like_seabios(*root_, {.ram_below_4g = 1ull << 30}), Error);
}

}  // namespace
}  // namespace iovmm::devices
