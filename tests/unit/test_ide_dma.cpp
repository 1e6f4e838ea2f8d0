// Bus-master DMA on the PIIX3 IDE function: PRD tables of several entries in guest memory, both orders of command
// and start bit, LBA48, and hostile tables (outside RAM, short, long, no end bit, crossing a 64 KiB boundary).
#include <filesystem>

#include "test_ide_support.h"

namespace iovmm::devices::ide_test {
namespace {

constexpr uint8_t kBmStart = 0x01, kBmToMemory = 0x08;
constexpr uint8_t kBmActive = 0x01, kBmError = 0x02, kBmInterrupt = 0x04;
constexpr uint32_t kTable = 0x1000;

struct Prd {
  uint32_t address;
  uint32_t length;  // 0x10000 is written as 0
  bool last;
};

class IdeDma : public ::testing::Test {
 protected:
  void write_table(uint32_t at, const std::vector<Prd>& entries) {
    for (size_t i = 0; i < entries.size(); ++i) {
      const auto& e = entries[i];
      std::array<uint32_t, 2> raw = {e.address, (e.length & 0xFFFF) | (e.last ? 0x80000000u : 0)};
      ASSERT_TRUE(h.memory().write_obj(at + 8 * i, raw));
    }
  }
  std::vector<uint8_t> guest(uint64_t gpa, size_t size) {
    std::vector<uint8_t> bytes(size);
    EXPECT_TRUE(h.memory().read(gpa, bytes.data(), size));
    return bytes;
  }
  void program(uint32_t table, bool to_memory) {
    h.bm_out(kBmPrd, table, 4);
    h.bm_out(kBmStatus, kBmError | kBmInterrupt);  // clear what the last transfer left
    h.bm_out(kBmCommand, to_memory ? kBmToMemory : 0);
  }
  void start(bool to_memory) { h.bm_out(kBmCommand, (to_memory ? kBmToMemory : 0) | kBmStart); }
  uint8_t bm_status() { return static_cast<uint8_t>(h.bm_in(kBmStatus)); }

  IdeHarness h{::testing::UnitTest::GetInstance()->current_test_info()->name()};
};

TEST_F(IdeDma, ReadScattersOverSeveralEntries) {
  write_table(kTable, {{0x20000, 512, false}, {0x30002, 1024, false}, {0x40000, 1536, true}});
  program(kTable, true);
  h.lba28(50, 6);
  h.command(0xC8);  // READ DMA: waits for the bus master
  EXPECT_EQ(h.inb(kAltStatus), kDrdy | kDsc | kDrq);
  EXPECT_FALSE(h.irq14().level);
  start(true);
  EXPECT_TRUE(h.irq14().level);
  EXPECT_EQ(bm_status(), kBmInterrupt);  // done, table used exactly: not active
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);
  auto expected = pattern_sectors(50, 6);
  EXPECT_EQ(guest(0x20000, 512), std::vector<uint8_t>(expected.begin(), expected.begin() + 512));
  EXPECT_EQ(guest(0x30002, 1024), std::vector<uint8_t>(expected.begin() + 512, expected.begin() + 1536));
  EXPECT_EQ(guest(0x40000, 1536), std::vector<uint8_t>(expected.begin() + 1536, expected.end()));
  h.bm_out(kBmCommand, kBmToMemory);  // stop, as drivers do
  h.bm_out(kBmStatus, kBmInterrupt);
  EXPECT_EQ(bm_status(), 0);
}

TEST_F(IdeDma, WriteGathersAndStartMayComeFirst) {
  auto data = fresh_data(4 * kSector, 7);
  ASSERT_TRUE(h.memory().write(0x50000, data.data(), 1000));
  ASSERT_TRUE(h.memory().write(0x60000, data.data() + 1000, data.size() - 1000));
  write_table(kTable, {{0x50000, 1000, false}, {0x60000, static_cast<uint32_t>(data.size() - 1000), true}});
  program(kTable, false);
  start(false);  // the bus master first: it waits for the device
  EXPECT_EQ(bm_status(), kBmActive);
  h.lba28(200, 4);
  h.command(0xCA);  // WRITE DMA runs at once
  EXPECT_TRUE(h.irq14().level);
  EXPECT_EQ(bm_status(), kBmInterrupt);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);
  auto file = h.file_bytes();
  EXPECT_TRUE(std::equal(data.begin(), data.end(), file.begin() + 200 * kSector));
}

TEST_F(IdeDma, Lba48AndSixtyFourKiBEntries) {
  write_table(kTable, {{0x80000, 0x10000, false}, {0x90000, 0x10000, true}});  // length 0 = 64 KiB
  program(kTable, true);
  h.lba48(600, 256);
  h.command(0x25);  // READ DMA EXT
  start(true);
  EXPECT_EQ(bm_status(), kBmInterrupt);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);
  EXPECT_EQ(guest(0x80000, 256 * kSector), pattern_sectors(600, 256));

  auto data = fresh_data(2 * kSector, 9);
  ASSERT_TRUE(h.memory().write(0x70000, data.data(), data.size()));
  write_table(kTable, {{0x70000, 2 * kSector, true}});
  program(kTable, false);
  h.lba48(1000, 2);
  h.command(0x35);  // WRITE DMA EXT
  start(false);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);
  auto file = h.file_bytes();
  EXPECT_TRUE(std::equal(data.begin(), data.end(), file.begin() + 1000 * kSector));
}

TEST_F(IdeDma, EntryOutsideRamIsABusMasterError) {
  write_table(kTable, {{0x20000, 512, false}, {0xFFFFF000, 512, true}});
  program(kTable, true);
  h.lba28(0, 2);
  h.command(0xC8);
  start(true);
  EXPECT_EQ(bm_status(), kBmError | kBmInterrupt);
  EXPECT_TRUE(h.irq14().level);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kErr);
  EXPECT_EQ(h.inb(kError), kAbrt);

  // The table itself outside RAM.
  program(0x00F00000, true);
  h.lba28(0, 1);
  h.command(0xC8);
  start(true);
  EXPECT_EQ(bm_status(), kBmError | kBmInterrupt);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kErr);

  // An entry that starts in RAM and runs past its end.
  write_table(kTable, {{static_cast<uint32_t>(IdeHarness::kRamSize - 256), 512, true}});
  program(kTable, true);
  h.lba28(0, 1);
  h.command(0xC8);
  start(true);
  EXPECT_EQ(bm_status(), kBmError | kBmInterrupt);
}

TEST_F(IdeDma, ShortTableStopsWithoutAnInterrupt) {
  write_table(kTable, {{0x20000, 512, true}});
  program(kTable, true);
  h.lba28(0, 2);  // 1 KiB wanted, 512 bytes described
  h.command(0xC8);
  start(true);
  EXPECT_EQ(bm_status(), 0);  // SFF-8038i: neither active nor interrupt = the table was too small
  EXPECT_FALSE(h.irq14().level);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);
  EXPECT_EQ(guest(0x20000, 512), std::vector<uint8_t>(512, 0));  // nothing moved
}

TEST_F(IdeDma, LongTableLeavesTheEngineActive) {
  write_table(kTable, {{0x20000, 4096, true}});
  program(kTable, true);
  h.lba28(3, 1);
  h.command(0xC8);
  start(true);
  EXPECT_EQ(bm_status(), kBmActive | kBmInterrupt);  // the device finished before the table did
  EXPECT_EQ(guest(0x20000, 512), pattern_sectors(3, 1));
  h.bm_out(kBmCommand, 0);
  EXPECT_EQ(bm_status(), kBmInterrupt);
}

TEST_F(IdeDma, TableWithoutEndBitIsBounded) {
  // 8192 two-byte entries and no end bit fill a 64 KiB table; the transfer wants far more.
  for (uint32_t i = 0; i < 8192; ++i) {
    std::array<uint32_t, 2> raw = {0x40000, 2};
    ASSERT_TRUE(h.memory().write_obj(0x10000 + 8 * i, raw));
  }
  program(0x10000, true);
  h.lba28(0, 0);  // 256 sectors
  h.command(0xC8);
  start(true);
  EXPECT_EQ(bm_status(), 0);
  EXPECT_FALSE(h.irq14().level);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);

  // Zero lengths mean 64 KiB: without an end bit the transfer is covered long before the bound.
  for (uint32_t i = 0; i < 4; ++i) {
    std::array<uint32_t, 2> raw = {0x40000, 0};
    ASSERT_TRUE(h.memory().write_obj(0x10000 + 8 * i, raw));
  }
  program(0x10000, true);
  h.lba28(0, 0);
  h.command(0xC8);
  start(true);
  EXPECT_EQ(bm_status(), kBmActive | kBmInterrupt);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);
  EXPECT_EQ(guest(0x40000, 512), pattern_sectors(128, 1));  // the last 64 KiB written there
}

TEST_F(IdeDma, TableWrapsInsideItsSixtyFourKiBSegment) {
  // The first entry is the last one of the segment; the next one is fetched from the segment's start.
  write_table(0x2FFF8, {{0x50000, 512, false}});
  write_table(0x20000, {{0x50200, 512, true}});
  write_table(0x30000, {{0x60000, 512, true}});  // where a counter that crossed the boundary would look
  program(0x2FFF8, true);
  h.lba28(77, 2);
  h.command(0xC8);
  start(true);
  EXPECT_EQ(bm_status(), kBmInterrupt);
  EXPECT_EQ(guest(0x50000, 1024), pattern_sectors(77, 2));
  EXPECT_EQ(guest(0x60000, 512), std::vector<uint8_t>(512, 0));
}

TEST_F(IdeDma, DirectionMismatchFollowsTheCommand) {
  write_table(kTable, {{0x20000, 512, true}});
  program(kTable, false);  // says "from memory" for a read
  h.lba28(12, 1);
  h.command(0xC8);
  start(false);
  EXPECT_EQ(bm_status(), kBmInterrupt);
  EXPECT_EQ(guest(0x20000, 512), pattern_sectors(12, 1));
}

TEST_F(IdeDma, BackendErrorEndsTheTransfer) {
  std::filesystem::resize_file(h.path, 100 * kSector);
  write_table(kTable, {{0x20000, 1024, true}});
  program(kTable, true);
  h.lba28(500, 2);
  h.command(0xC8);
  start(true);
  EXPECT_TRUE(h.irq14().level);
  EXPECT_EQ(bm_status(), kBmInterrupt);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kErr);
  EXPECT_EQ(h.inb(kError), kUnc);
}

TEST_F(IdeDma, OutOfRangeFailsBeforeTheBusMasterIsNeeded) {
  program(kTable, true);
  h.lba28(1020, 8);
  h.command(0xC8);
  EXPECT_TRUE(h.irq14().level);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kErr);
  EXPECT_EQ(h.inb(kError), kIdnf);
  EXPECT_EQ(bm_status(), kBmInterrupt);  // the interrupt line reaches the bus master status too
}

TEST_F(IdeDma, ResetCancelsAWaitingCommand) {
  program(kTable, true);
  write_table(kTable, {{0x20000, 512, true}});
  h.lba28(1, 1);
  h.command(0xC8);
  h.outb(kControl, kSrst);
  h.outb(kControl, 0);
  start(true);
  EXPECT_EQ(bm_status(), kBmActive);  // nothing to run
  EXPECT_EQ(guest(0x20000, 512), std::vector<uint8_t>(512, 0));
}

TEST_F(IdeDma, BusMasterRegisters) {
  h.bm_out(kBmCommand, 0xFF);
  EXPECT_EQ(h.bm_in(kBmCommand), kBmStart | kBmToMemory);
  EXPECT_EQ(bm_status(), kBmActive);
  h.bm_out(kBmStatus, 0xFF);  // drive-capable bits stick, active is read-only
  EXPECT_EQ(bm_status(), 0x60 | kBmActive);
  h.bm_out(kBmStatus, 0x00);
  EXPECT_EQ(bm_status(), kBmActive);
  h.bm_out(kBmCommand, 0);
  EXPECT_EQ(bm_status(), 0);
  h.bm_out(kBmPrd, 0x12345677, 4);
  EXPECT_EQ(h.bm_in(kBmPrd, 4), 0x12345674u);
  h.bm_out(kBmPrd + 1, 0xAB);
  EXPECT_EQ(h.bm_in(kBmPrd, 4), 0x1234AB74u);
  EXPECT_EQ(h.bm_in(1), 0u);
  EXPECT_EQ(h.bm_in(8 + kBmPrd, 4), 0u);  // the secondary's registers are separate
  h.bm_out(8 + kBmCommand, kBmStart);
  EXPECT_EQ(h.bm_in(8 + kBmStatus), kBmActive);
  EXPECT_EQ(bm_status(), 0);
  EXPECT_EQ(h.bm_in(8, 4), 0x00010001u);  // command, reserved, status, reserved in one dword
}

}  // namespace
}  // namespace iovmm::devices::ide_test
