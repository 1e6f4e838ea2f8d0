// fw_cfg through its legacy ports on a port I/O bus, as a guest driver reads it.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "devices/fw_cfg.h"
#include "io/bus.h"

namespace iovmm::devices {
namespace {

constexpr uint64_t kSelector = FwCfg::kIoBase;
constexpr uint64_t kData = FwCfg::kIoBase + 1;

// The directory entry exactly as QEMU's docs/specs/fw_cfg spells it out.
struct FWCfgFile {
  uint32_t size;  // big-endian
  uint16_t select;  // big-endian
  uint16_t reserved;
  char name[56];
};
static_assert(sizeof(FWCfgFile) == 64);
static_assert(offsetof(FWCfgFile, select) == 4 && offsetof(FWCfgFile, name) == 8);

class DevFwCfgTest : public ::testing::Test {
 protected:
  DevFwCfgTest() {
    bus_.map(io::Window{
        .base = FwCfg::kIoBase, .size = FwCfg::kRegionSize, .device = fw_cfg_, .region = 0, .label = "fw_cfg"});
  }
  void select(uint16_t key) { ASSERT_EQ(bus_.write(kSelector, 2, key), io::AccessResult::ok); }
  std::vector<uint8_t> read(size_t n) {
    std::vector<uint8_t> bytes;
    for (size_t i = 0; i < n; ++i) {
      uint64_t value = 0;
      EXPECT_EQ(bus_.read(kData, 1, value), io::AccessResult::ok);
      bytes.push_back(static_cast<uint8_t>(value));
    }
    return bytes;
  }
  std::vector<uint8_t> read_item(uint16_t key, size_t n) {
    select(key);
    return read(n);
  }

  io::Bus bus_{io::Space::pio};
  std::shared_ptr<FwCfg> fw_cfg_ = std::make_shared<FwCfg>();
};

std::vector<uint8_t> bytes_of(std::string_view text) { return {text.begin(), text.end()}; }

TEST_F(DevFwCfgTest, SignatureAndId) {
  EXPECT_EQ(read_item(fw_cfg_key::kSignature, 4), bytes_of("QEMU"));
  EXPECT_EQ(read_item(fw_cfg_key::kId, 4), (std::vector<uint8_t>{1, 0, 0, 0})) << "traditional interface, no DMA";
}

TEST_F(DevFwCfgTest, ReadsPastTheEndReturnZero) {
  EXPECT_EQ(read_item(fw_cfg_key::kSignature, 7), (std::vector<uint8_t>{'Q', 'E', 'M', 'U', 0, 0, 0}));
}

TEST_F(DevFwCfgTest, SelectingAgainRestartsTheItem) {
  EXPECT_EQ(read_item(fw_cfg_key::kSignature, 2), bytes_of("QE"));
  EXPECT_EQ(read_item(fw_cfg_key::kSignature, 4), bytes_of("QEMU"));
  select(fw_cfg_key::kSignature);
  EXPECT_EQ(read(3), bytes_of("QEM"));
  select(fw_cfg_key::kId);
  select(fw_cfg_key::kSignature);
  EXPECT_EQ(read(1), bytes_of("Q"));
}

TEST_F(DevFwCfgTest, UnknownSelectorReadsZero) {
  EXPECT_EQ(read_item(0x0123, 4), (std::vector<uint8_t>{0, 0, 0, 0}));
  EXPECT_EQ(read_item(0x3fff, 2), (std::vector<uint8_t>{0, 0}));
}

TEST_F(DevFwCfgTest, CpuCountsAndRamSizeAreLittleEndian) {
  fw_cfg_->add_u16(fw_cfg_key::kNbCpus, 4);
  fw_cfg_->add_u16(fw_cfg_key::kMaxCpus, 8);
  fw_cfg_->add_u64(fw_cfg_key::kRamSize, 0x1'2000'0000ull);
  EXPECT_EQ(read_item(fw_cfg_key::kNbCpus, 3), (std::vector<uint8_t>{4, 0, 0}));
  EXPECT_EQ(read_item(fw_cfg_key::kMaxCpus, 2), (std::vector<uint8_t>{8, 0}));
  EXPECT_EQ(read_item(fw_cfg_key::kRamSize, 8), (std::vector<uint8_t>{0, 0, 0, 0x20, 1, 0, 0, 0}));
}

TEST_F(DevFwCfgTest, KernelCommandLineSizeIncludesTheNul) {
  fw_cfg_->set_kernel_cmdline(0x20000, "console=ttyS0 quiet");
  EXPECT_EQ(read_item(fw_cfg_key::kCmdlineAddr, 4), (std::vector<uint8_t>{0x00, 0x00, 0x02, 0x00}));
  EXPECT_EQ(read_item(fw_cfg_key::kCmdlineSize, 4), (std::vector<uint8_t>{20, 0, 0, 0}));
  std::vector<uint8_t> expected = bytes_of("console=ttyS0 quiet");
  expected.push_back(0);
  expected.push_back(0);  // past the end
  EXPECT_EQ(read_item(fw_cfg_key::kCmdlineData, 21), expected);
}

TEST_F(DevFwCfgTest, DataWritesAreIgnored) {
  select(fw_cfg_key::kSignature);
  ASSERT_EQ(bus_.write(kData, 1, 0x55), io::AccessResult::ok);
  EXPECT_EQ(read(4), bytes_of("QEMU")) << "neither the item nor the offset changed";
}

TEST_F(DevFwCfgTest, AnyByteReadIsADataReadAsInQemu) {
  select(fw_cfg_key::kSignature);
  uint64_t value = 0;
  ASSERT_EQ(bus_.read(kSelector, 1, value), io::AccessResult::ok);
  EXPECT_EQ(value, 'Q');
  ASSERT_EQ(bus_.read(kSelector, 2, value), io::AccessResult::ok);
  EXPECT_EQ(value, 0xFFFFu) << "the selector is write-only";
  EXPECT_EQ(read(1), bytes_of("E"));
}

TEST_F(DevFwCfgTest, WriteChannelBitIsIgnoredOnSelection) {
  EXPECT_EQ(read_item(fw_cfg_key::kSignature | fw_cfg_key::kWriteChannel, 4), bytes_of("QEMU"));
}

TEST_F(DevFwCfgTest, FileDirectoryMatchesTheSpecLayout) {
  EXPECT_EQ(read_item(fw_cfg_key::kFileDir, 4), (std::vector<uint8_t>{0, 0, 0, 0})) << "empty directory: count 0";

  std::vector<uint8_t> tables(100);
  for (size_t i = 0; i < tables.size(); ++i) tables[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(fw_cfg_->add_file("etc/zzz", {1, 2, 3}), 0x20);
  EXPECT_EQ(fw_cfg_->add_file("bootorder", bytes_of("/rom@\n")), 0x21);
  EXPECT_EQ(fw_cfg_->add_file("etc/acpi/tables", tables), 0x22);

  std::vector<uint8_t> dir = read_item(fw_cfg_key::kFileDir, 4 + 3 * sizeof(FWCfgFile) + 4);
  uint32_t count_be = 0;
  std::memcpy(&count_be, dir.data(), 4);
  ASSERT_EQ(ntohl(count_be), 3u);
  struct Expected {
    const char* name;
    uint32_t size;
    uint16_t select;
  };
  // Listed in name order, as QEMU lists them.
  const Expected expected[] = {{"bootorder", 6, 0x21}, {"etc/acpi/tables", 100, 0x22}, {"etc/zzz", 3, 0x20}};
  for (size_t i = 0; i < 3; ++i) {
    FWCfgFile entry{};
    std::memcpy(&entry, dir.data() + 4 + i * sizeof(FWCfgFile), sizeof(entry));
    EXPECT_EQ(ntohl(entry.size), expected[i].size) << i;
    EXPECT_EQ(ntohs(entry.select), expected[i].select) << i;
    EXPECT_EQ(entry.reserved, 0) << i;
    EXPECT_STREQ(entry.name, expected[i].name) << i;
    for (size_t c = std::strlen(expected[i].name); c < sizeof(entry.name); ++c) EXPECT_EQ(entry.name[c], 0);
  }
  for (size_t i = dir.size() - 4; i < dir.size(); ++i) EXPECT_EQ(dir[i], 0) << "past the directory's end";

  EXPECT_EQ(read_item(0x22, 100), tables);
  EXPECT_EQ(read_item(0x21, 6), bytes_of("/rom@\n"));
}

TEST_F(DevFwCfgTest, BadFilesAreRefusedAtSetUp) {
  fw_cfg_->add_file("etc/a", {});
  EXPECT_THROW(fw_cfg_->add_file("etc/a", {1}), Error);
  EXPECT_THROW(fw_cfg_->add_file(std::string(56, 'x'), {1}), Error);
  EXPECT_NO_THROW(fw_cfg_->add_file(std::string(55, 'x'), {1}));
  EXPECT_THROW(fw_cfg_->add_file("", {1}), Error);
  EXPECT_THROW(fw_cfg_->add_bytes(fw_cfg_key::kFileDir, {1}), Error);
  EXPECT_THROW(fw_cfg_->add_bytes(0x0020, {1}), Error);
}

}  // namespace
}  // namespace iovmm::devices
