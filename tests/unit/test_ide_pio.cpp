// The PIIX3 IDE channel and its ATA disk driven by PIO as a driver does: identify, READ/WRITE SECTORS and MULTIPLE,
// LBA48 with the HOB registers, CHS, 32-bit PIO, errors, interrupts, software reset and the absent devices.
#include <filesystem>
#include <numeric>

#include "test_ide_support.h"

namespace iovmm::devices::ide_test {
namespace {

class IdePio : public ::testing::Test {
 protected:
  IdeHarness h{::testing::UnitTest::GetInstance()->current_test_info()->name()};
};

std::string identify_string(const std::array<uint16_t, 256>& id, unsigned word, unsigned words) {
  std::string text;
  for (unsigned i = 0; i < words; ++i) {
    text += static_cast<char>(id[word + i] >> 8);
    text += static_cast<char>(id[word + i] & 0xFF);
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

TEST_F(IdePio, PowerOnShowsSignatureAndReady) {
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);
  EXPECT_EQ(h.inb(kCount), 1);
  EXPECT_EQ(h.inb(kLbaLow), 1);
  EXPECT_EQ(h.inb(kLbaMid), 0);
  EXPECT_EQ(h.inb(kLbaHigh), 0);
  EXPECT_EQ(h.inb(kError), 0x01);
  EXPECT_EQ(h.inb(kDevice), 0xA0);
}

TEST_F(IdePio, IdentifyBlockIsCompleteAndChecksummed) {
  auto id = h.identify();
  EXPECT_EQ(h.irq14().raised, 1u);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);  // drained: no DRQ, no interrupt after the only block
  EXPECT_EQ(h.irq14().raised, 1u);

  EXPECT_EQ(id[0], 0x0040);
  EXPECT_EQ(identify_string(id, 27, 20), "IOVMM HARDDISK");
  EXPECT_FALSE(identify_string(id, 10, 10).empty());
  EXPECT_FALSE(identify_string(id, 23, 4).empty());
  EXPECT_EQ(id[47], 0x8010);                  // READ/WRITE MULTIPLE up to 16 sectors
  EXPECT_EQ(id[59] & 0x0100, 0);              // multiple mode off at power-on
  EXPECT_EQ(id[49] & 0x0300, 0x0300);         // LBA and DMA
  EXPECT_EQ(id[60] | (id[61] << 16), 1024);   // 28-bit capacity
  EXPECT_EQ(id[83] & 0xC400, 0x4400);         // valid, LBA48
  EXPECT_EQ(id[86] & 0x0400, 0x0400);         // LBA48 enabled
  EXPECT_EQ(id[83] & 0x3000, 0x3000);         // FLUSH CACHE (EXT)
  EXPECT_EQ(id[85] & 0x0020, 0x0020);         // write cache on
  EXPECT_EQ(id[88] & 0x003F, 0x003F);         // UDMA 0-5
  EXPECT_EQ(id[53] & 0x0006, 0x0006);         // words 64-70 and 88 valid
  EXPECT_EQ(id[93] & 0xDF61, 0x4041);         // reset result: device 1 absent, as SeaBIOS reads it
  uint64_t capacity48 = 0;
  for (unsigned i = 0; i < 4; ++i) capacity48 |= uint64_t{id[100 + i]} << (16 * i);
  EXPECT_EQ(capacity48, 1024u);
  EXPECT_EQ(id[255] & 0xFF, 0xA5);
  unsigned sum = 0;
  for (uint16_t w : id) sum += (w & 0xFF) + (w >> 8);
  EXPECT_EQ(sum % 256, 0u);
}

TEST_F(IdePio, ReadSectorsFindsDrqAtTheFirstStatusReadOfEachSector) {
  h.lba28(5, 3);
  h.command(0x20);
  for (unsigned s = 0; s < 3; ++s) {
    EXPECT_TRUE(h.irq14().level) << "sector " << s;
    EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc | kDrq) << "sector " << s;  // no BSY polling: the data is there
    EXPECT_FALSE(h.irq14().level);
    EXPECT_EQ(h.read_pio(kSector), pattern_sectors(5 + s, 1)) << "sector " << s;
  }
  EXPECT_EQ(h.irq14().raised, 3u);  // one per block; none after the last block of a data-in command
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);
  EXPECT_EQ(h.inw(kData), 0);  // no DRQ: the data port reads 0
}

TEST_F(IdePio, ThirtyTwoBitDataAccessesMoveTwoWords) {
  h.lba28(9, 1);
  h.command(0x20);
  std::vector<uint8_t> data;
  for (unsigned i = 0; i < kSector / 4; ++i) {
    uint32_t v = h.inl(kData);
    for (unsigned b = 0; b < 4; ++b) data.push_back(static_cast<uint8_t>(v >> (8 * b)));
  }
  EXPECT_EQ(data, pattern_sectors(9, 1));
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);
}

TEST_F(IdePio, WriteSectorsRoundTripThroughTheImage) {
  auto data = fresh_data(2 * kSector, 1);
  h.lba28(100, 2);
  h.command(0x30);
  EXPECT_EQ(h.irq14().raised, 0u);  // data-out: the first block is asked for by DRQ alone
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc | kDrq);
  h.write_pio({data.begin(), data.begin() + kSector});
  EXPECT_EQ(h.irq14().raised, 1u);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc | kDrq);
  h.write_pio({data.begin() + kSector, data.end()});
  EXPECT_EQ(h.irq14().raised, 2u);  // the command's completion
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);

  auto file = h.file_bytes();
  EXPECT_TRUE(std::equal(data.begin(), data.end(), file.begin() + 100 * kSector));
  EXPECT_TRUE(std::equal(file.begin() + 102 * kSector, file.begin() + 103 * kSector, pattern_sectors(102, 1).begin()));

  h.lba28(100, 2);
  h.command(0x20);
  (void)h.inb(kStatus);
  auto first = h.read_pio(kSector);
  (void)h.inb(kStatus);
  auto second = h.read_pio(kSector);
  first.insert(first.end(), second.begin(), second.end());
  EXPECT_EQ(first, data);
}

TEST_F(IdePio, MultipleNeedsSetMultipleAndMovesWholeBlocks) {
  h.lba28(0, 4);
  h.command(0xC4);  // READ MULTIPLE with multiple mode off
  EXPECT_EQ(h.inb(kStatus), kDrdy | kErr);
  EXPECT_EQ(h.inb(kError), kAbrt);

  for (uint8_t bad : {3, 32, 17}) {
    h.outb(kCount, bad);
    h.command(0xC6);
    EXPECT_EQ(h.inb(kStatus) & kErr, kErr) << int{bad};
  }
  h.outb(kCount, 4);
  h.command(0xC6);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);
  EXPECT_EQ(h.identify()[59], 0x0104);

  unsigned before = h.irq14().raised;
  h.lba28(20, 10);
  h.command(0xC4);
  std::vector<uint8_t> data;
  for (unsigned block : {4u, 4u, 2u}) {
    EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc | kDrq);
    auto part = h.read_pio(block * kSector);
    data.insert(data.end(), part.begin(), part.end());
  }
  EXPECT_EQ(h.irq14().raised - before, 3u);
  EXPECT_EQ(data, pattern_sectors(20, 10));
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);

  auto fresh = fresh_data(6 * kSector, 2);
  h.lba28(300, 6);
  h.command(0xC5);  // WRITE MULTIPLE: blocks of 4 and 2
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc | kDrq);
  h.write_pio({fresh.begin(), fresh.begin() + 4 * kSector});
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc | kDrq);
  h.write_pio({fresh.begin() + 4 * kSector, fresh.end()});
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);
  auto file = h.file_bytes();
  EXPECT_TRUE(std::equal(fresh.begin(), fresh.end(), file.begin() + 300 * kSector));
}

TEST_F(IdePio, HobRegistersKeepThePreviousByte) {
  h.outb(kCount, 0xAB);
  h.outb(kCount, 0xCD);
  h.outb(kLbaLow, 0x11);
  h.outb(kLbaLow, 0x22);
  h.outb(kFeatures, 0x33);
  h.outb(kFeatures, 0x44);
  EXPECT_EQ(h.inb(kCount), 0xCD);
  EXPECT_EQ(h.inb(kLbaLow), 0x22);
  h.outb(kControl, kHob);
  EXPECT_EQ(h.inb(kCount), 0xAB);
  EXPECT_EQ(h.inb(kLbaLow), 0x11);
  EXPECT_EQ(h.inb(kError), 0x33);  // the previous features byte, as QEMU shows it
  h.outb(kLbaMid, 0x55);           // any command block write clears HOB
  EXPECT_EQ(h.inb(kCount), 0xCD);
}

TEST_F(IdePio, Lba48CommandsUseTheHighOrderBytes) {
  h.lba48(0x203, 3);
  h.command(0x24);  // READ SECTORS EXT
  std::vector<uint8_t> data;
  for (unsigned s = 0; s < 3; ++s) {
    EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc | kDrq);
    auto part = h.read_pio(kSector);
    data.insert(data.end(), part.begin(), part.end());
  }
  EXPECT_EQ(data, pattern_sectors(0x203, 3));

  h.lba48(uint64_t{1} << 24, 1);  // beyond the disk only through the HOB byte
  h.command(0x24);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kErr);
  EXPECT_EQ(h.inb(kError), kIdnf);
  h.outb(kControl, kHob);
  EXPECT_EQ(h.inb(kLbaLow), 1);  // the failing LBA, high-order bytes behind HOB
  h.outb(kControl, 0);

  auto fresh = fresh_data(kSector, 3);
  h.lba48(700, 1);
  h.command(0x34);  // WRITE SECTORS EXT
  h.write_pio(fresh);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);
  auto file = h.file_bytes();
  EXPECT_TRUE(std::equal(fresh.begin(), fresh.end(), file.begin() + 700 * kSector));
}

TEST_F(IdePio, ChsAddressingUsesTheTranslation) {
  // Cylinder 0, head 2, sector 3 with the default 16 heads x 63 sectors.
  h.outb(kCount, 1);
  h.outb(kLbaLow, 3);
  h.outb(kLbaMid, 0);
  h.outb(kLbaHigh, 0);
  h.outb(kDevice, 0xA2);
  h.command(0x20);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc | kDrq);
  EXPECT_EQ(h.read_pio(kSector), pattern_sectors(2 * 63 + 2, 1));

  h.outb(kLbaLow, 0);  // sector numbers start at 1
  h.outb(kDevice, 0xA0);
  h.command(0x20);
  EXPECT_EQ(h.inb(kStatus) & kErr, kErr);
  EXPECT_EQ(h.inb(kError), kIdnf);

  h.outb(kCount, 8);  // INITIALIZE DEVICE PARAMETERS: 4 heads, 8 sectors per track
  h.outb(kDevice, 0xA3);
  h.command(0x91);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);
  h.outb(kCount, 1);
  h.outb(kLbaLow, 2);
  h.outb(kLbaMid, 1);
  h.outb(kDevice, 0xA1);
  h.command(0x20);
  EXPECT_EQ(h.read_pio(kSector), pattern_sectors((1 * 4 + 1) * 8 + 1, 1));
}

TEST_F(IdePio, OutOfRangeEndsWithIdnfAndAnInterrupt) {
  h.lba28(1023, 2);  // the second sector is past the end
  h.command(0x20);
  EXPECT_TRUE(h.irq14().level);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kErr);
  EXPECT_EQ(h.inb(kError), kIdnf);
  EXPECT_EQ(h.inb(kLbaLow), 1023 & 0xFF);
  EXPECT_EQ(h.inb(kLbaMid), 1023 >> 8);

  h.lba28(5000, 1);
  h.command(0x30);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kErr);  // no DRQ: nothing to write
  EXPECT_EQ(h.inb(kError), kIdnf);
  h.lba28(2000, 1);
  h.command(0x40);  // READ VERIFY
  EXPECT_EQ(h.inb(kError), kIdnf);
  h.lba28(10, 0);  // count 0 = 256 sectors: fits
  h.command(0x40);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);
  h.lba28(900, 0);  // 256 sectors from 900 do not
  h.command(0x40);
  EXPECT_EQ(h.inb(kError), kIdnf);
}

TEST_F(IdePio, BackendFailuresBecomeErrorBits) {
  std::filesystem::resize_file(h.path, 10 * kSector);  // the image shrinks under the open disk
  h.lba28(20, 1);
  h.command(0x20);
  EXPECT_TRUE(h.irq14().level);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kErr);
  EXPECT_EQ(h.inb(kError), kUnc);
  EXPECT_EQ(h.inb(kLbaLow), 20);
  h.lba28(2, 1);  // still there
  h.command(0x20);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc | kDrq);
  EXPECT_EQ(h.read_pio(kSector), pattern_sectors(2, 1));
}

TEST(IdePioReadonly, WritesToAReadonlyImageAbort) {
  IdeHarness h("readonly", 64, true);
  h.lba28(3, 1);
  h.command(0x30);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc | kDrq);
  h.write_pio(fresh_data(kSector, 4));
  EXPECT_TRUE(h.irq14().level);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kErr);
  EXPECT_EQ(h.inb(kError), kAbrt);
  EXPECT_EQ(h.inb(kLbaLow), 3);
  EXPECT_EQ(h.file_bytes(), [] {
    std::vector<uint8_t> all;
    for (uint64_t s = 0; s < 64; ++s) {
      auto one = pattern_sectors(s, 1);
      all.insert(all.end(), one.begin(), one.end());
    }
    return all;
  }());
}

TEST_F(IdePio, InterruptIsClearedByStatusNotAltStatusAndMaskedByNien) {
  h.command(0xE7);  // FLUSH CACHE
  EXPECT_TRUE(h.irq14().level);
  EXPECT_EQ(h.inb(kAltStatus), kDrdy | kDsc);
  EXPECT_TRUE(h.irq14().level);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);
  EXPECT_FALSE(h.irq14().level);

  h.outb(kControl, kNien);
  h.command(0xE5);  // CHECK POWER MODE
  EXPECT_FALSE(h.irq14().level);
  EXPECT_EQ(h.inb(kCount), 0xFF);
  h.outb(kControl, 0);  // still pending: the line follows nIEN
  EXPECT_TRUE(h.irq14().level);
  h.outb(kControl, kNien);
  EXPECT_FALSE(h.irq14().level);
  (void)h.inb(kStatus);
  h.outb(kControl, 0);
  EXPECT_FALSE(h.irq14().level);
  EXPECT_FALSE(h.irq15().level);

  h.command(0xE7);
  EXPECT_TRUE(h.irq14().level);
  h.command(0xE3);  // a new command clears the previous interrupt, then raises its own
  EXPECT_EQ(h.irq14().raised, 4u);
}

TEST_F(IdePio, SoftwareResetAbandonsTheCommandAndLeavesTheSignature) {
  h.lba28(40, 2);
  h.command(0x20);
  EXPECT_EQ(h.inb(kAltStatus), kDrdy | kDsc | kDrq);
  h.outb(kControl, kSrst);
  EXPECT_EQ(h.inb(kAltStatus), kBsy);
  EXPECT_FALSE(h.irq14().level);
  h.outb(kControl, 0);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);
  EXPECT_EQ(h.inb(kCount), 1);
  EXPECT_EQ(h.inb(kLbaLow), 1);
  EXPECT_EQ(h.inb(kLbaMid), 0);
  EXPECT_EQ(h.inb(kLbaHigh), 0);
  EXPECT_EQ(h.inb(kError), 0x01);
  EXPECT_EQ(h.inb(kDevice) & 0x10, 0);
  EXPECT_EQ(h.inw(kData), 0);  // the transfer is gone
  EXPECT_FALSE(h.irq14().level);
  h.lba28(40, 1);  // and the disk works again
  h.command(0x20);
  EXPECT_EQ(h.read_pio(kSector), pattern_sectors(40, 1));
}

TEST_F(IdePio, TaskFileWritesAreIgnoredWhileDrq) {
  h.lba28(7, 2);
  h.command(0x20);
  h.outb(kLbaLow, 0x99);
  h.outb(kDevice, 0xB0);
  h.command(0xEC);  // ignored too: the read goes on
  EXPECT_EQ(h.inb(kLbaLow), 7);
  EXPECT_EQ(h.inb(kDevice), kLbaMode);
  EXPECT_EQ(h.read_pio(kSector), pattern_sectors(7, 1));
  EXPECT_EQ(h.read_pio(kSector), pattern_sectors(8, 1));
  h.outb(kLbaLow, 0x99);  // accepted once the command is over
  EXPECT_EQ(h.inb(kLbaLow), 0x99);
}

TEST_F(IdePio, AbsentDevicesReadAsOnRealHardware) {
  // Device 1 on the primary: device 0 answers the task file, status reads 0, commands are ignored.
  h.outb(kDevice, 0xB0);
  h.outb(kCount, 0x55);
  EXPECT_EQ(h.inb(kCount), 0x55);
  EXPECT_EQ(h.inb(kDevice), 0xB0);
  EXPECT_EQ(h.inb(kStatus), 0);
  EXPECT_EQ(h.inb(kAltStatus), 0);
  h.command(0xEC);
  EXPECT_EQ(h.inb(kStatus), 0);
  EXPECT_FALSE(h.irq14().level);
  h.outb(kDevice, 0xA0);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);

  // The secondary channel has no device at all: everything reads 0, nothing latches, no interrupt.
  h.outb(0x172, 0x55);
  h.outb(0x173, 0xAA);
  for (uint16_t port = 0x171; port <= 0x177; ++port) EXPECT_EQ(h.inb(port), 0) << port;
  EXPECT_EQ(h.inb(0x376), 0);
  h.outb(0x177, 0xEC);
  h.outb(0x376, kSrst);
  h.outb(0x376, 0);
  EXPECT_EQ(h.inb(kSecondaryStatus), 0);
  EXPECT_EQ(h.inw(0x170), 0);
  EXPECT_EQ(h.irq15().raised, 0u);
}

TEST_F(IdePio, SetFeaturesAndTheOtherNonDataCommands) {
  auto set_features = [&](uint8_t subcommand, uint8_t count) {
    h.outb(kFeatures, subcommand);
    h.outb(kCount, count);
    h.command(0xEF);
    return h.inb(kStatus);
  };
  EXPECT_EQ(set_features(0x03, 0x22), kDrdy | kDsc);  // multiword DMA 2
  auto id = h.identify();
  EXPECT_EQ(id[63], 0x0407);
  EXPECT_EQ(id[88], 0x003F);
  EXPECT_EQ(set_features(0x03, 0x42), kDrdy | kDsc);  // UDMA 2
  id = h.identify();
  EXPECT_EQ(id[63], 0x0007);
  EXPECT_EQ(id[88], 0x043F);
  EXPECT_EQ(set_features(0x03, 0x0C), kDrdy | kDsc);  // PIO 4
  EXPECT_EQ(set_features(0x03, 0x46), kDrdy | kErr);  // UDMA 6: not supported
  EXPECT_EQ(set_features(0x03, 0x10), kDrdy | kErr);
  EXPECT_EQ(set_features(0x82, 0), kDrdy | kDsc);     // write cache off
  EXPECT_EQ(h.identify()[85] & 0x20, 0);
  EXPECT_EQ(set_features(0x02, 0), kDrdy | kDsc);
  EXPECT_EQ(h.identify()[85] & 0x20, 0x20);
  EXPECT_EQ(set_features(0x55, 0), kDrdy | kDsc);     // read look-ahead off
  EXPECT_EQ(set_features(0x77, 0), kDrdy | kErr);     // unknown
  EXPECT_EQ(h.inb(kError), kAbrt);

  for (uint8_t command : {0xE0, 0xE1, 0xE2, 0xE3, 0xE7, 0xEA}) {
    h.command(command);
    EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc) << int{command};
  }
  for (uint8_t command : {0x00, 0xA1, 0xF8, 0xB0, 0x08}) {  // NOP, IDENTIFY PACKET, READ NATIVE MAX, SMART, RESET
    h.command(command);
    EXPECT_EQ(h.inb(kStatus), kDrdy | kErr) << int{command};
    EXPECT_EQ(h.inb(kError), kAbrt);
  }
  h.outb(kLbaMid, 0x12);
  h.command(0x90);  // EXECUTE DEVICE DIAGNOSTIC: signature and code 01h, no ERR
  EXPECT_TRUE(h.irq14().level);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);
  EXPECT_EQ(h.inb(kError), 0x01);
  EXPECT_EQ(h.inb(kLbaMid), 0);
  EXPECT_EQ(h.inb(kCount), 1);
}

TEST_F(IdePio, WriteCacheOffFlushesEveryWrite) {
  h.outb(kFeatures, 0x82);
  h.command(0xEF);
  auto fresh = fresh_data(kSector, 5);
  h.lba28(11, 1);
  h.command(0x30);
  h.write_pio(fresh);
  EXPECT_EQ(h.inb(kStatus), kDrdy | kDsc);
  auto file = h.file_bytes();
  EXPECT_TRUE(std::equal(fresh.begin(), fresh.end(), file.begin() + 11 * kSector));
}

TEST_F(IdePio, ByteAndWideAccessesToTheCommandBlock) {
  EXPECT_EQ(h.inb(kData), 0xFF);  // a byte read of the data port
  h.out(kCount, 2, 0x0304);       // a word to 1F2: count 04h, LBA low 03h
  EXPECT_EQ(h.inb(kCount), 0x04);
  EXPECT_EQ(h.inb(kLbaLow), 0x03);
  EXPECT_EQ(h.in(kCount, 2), 0x0304u);
}

}  // namespace
}  // namespace iovmm::devices::ide_test
