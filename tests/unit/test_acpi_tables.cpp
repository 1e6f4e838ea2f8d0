#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "boot/acpi/acpi.h"
#include "boot/acpi/structs.h"
#include "boot/acpi/tables.h"
#include "test_boot_image_builder.h"

namespace iovmm::boot::acpi {
namespace {

using testing::usage_error_of;

AcpiConfig test_config(uint32_t cpus = 4) {
  AcpiConfig config;
  config.cpu_count = cpus;
  config.serial_ports = {{0x3F8, 4}, {0x2F8, 3}};
  config.mmio_devices = {{"LNRO0005", 0, 0xD0000000, 0x200, 5, false}, {"LNRO0005", 1, 0xD0000200, 0x200, 6, true}};
  return config;
}

uint8_t sum(std::span<const uint8_t> bytes) {
  uint8_t s = 0;
  for (uint8_t b : bytes) s = static_cast<uint8_t>(s + b);
  return s;
}

template <typename T>
T as(const std::vector<uint8_t>& bytes, size_t offset = 0) {
  T value;
  EXPECT_GE(bytes.size(), offset + sizeof(T));
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

const AcpiTable& find(const std::vector<AcpiTable>& tables, std::string_view signature) {
  for (const auto& t : tables) {
    if (t.signature == signature) return t;
  }
  throw std::runtime_error("no table " + std::string(signature));
}

TEST(AcpiTables, EveryTableHasAValidHeaderAndChecksum) {
  const auto tables = build_acpi_tables(test_config());
  ASSERT_EQ(tables.size(), 7u);
  for (const auto& t : tables) {
    SCOPED_TRACE(t.signature);
    EXPECT_EQ(t.address % 16, 0u);
    EXPECT_GE(t.address, kAcpiArea.start);
    EXPECT_LE(t.address + t.bytes.size(), kAcpiArea.end());
    if (t.signature == "RSDP" || t.signature == "FACS") continue;
    const auto header = as<TableHeader>(t.bytes);
    EXPECT_EQ(std::string_view(header.signature, 4), t.signature);
    EXPECT_EQ(header.length, t.bytes.size());
    EXPECT_EQ(sum(t.bytes), 0);
  }
  // No two tables overlap.
  for (size_t i = 0; i < tables.size(); ++i) {
    for (size_t j = i + 1; j < tables.size(); ++j) {
      const bool disjoint = tables[i].address + tables[i].bytes.size() <= tables[j].address ||
                            tables[j].address + tables[j].bytes.size() <= tables[i].address;
      EXPECT_TRUE(disjoint) << tables[i].signature << " / " << tables[j].signature;
    }
  }
}

TEST(AcpiTables, RsdpPointsAtRsdtAndXsdtWithBothChecksums) {
  const auto tables = build_acpi_tables(test_config());
  const auto& rsdp_table = find(tables, "RSDP");
  EXPECT_EQ(rsdp_table.address, kRsdpAddress);
  ASSERT_EQ(rsdp_table.bytes.size(), 36u);
  EXPECT_EQ(sum(std::span(rsdp_table.bytes).first(20)), 0);
  EXPECT_EQ(sum(rsdp_table.bytes), 0);
  const auto rsdp = as<Rsdp>(rsdp_table.bytes);
  EXPECT_EQ(std::string_view(rsdp.signature, 8), "RSD PTR ");
  EXPECT_EQ(rsdp.revision, 2);
  EXPECT_EQ(rsdp.length, 36u);
  EXPECT_EQ(rsdp.rsdt_address, find(tables, "RSDT").address);
  EXPECT_EQ(rsdp.xsdt_address, find(tables, "XSDT").address);

  const auto& xsdt = find(tables, "XSDT").bytes;
  ASSERT_EQ(xsdt.size(), 36u + 2 * 8);
  EXPECT_EQ(as<uint64_t>(xsdt, 36), find(tables, "FACP").address);
  EXPECT_EQ(as<uint64_t>(xsdt, 44), find(tables, "APIC").address);
  const auto& rsdt = find(tables, "RSDT").bytes;
  ASSERT_EQ(rsdt.size(), 36u + 2 * 4);
  EXPECT_EQ(as<uint32_t>(rsdt, 36), find(tables, "FACP").address);
}

TEST(AcpiTables, FadtDescribesThePmBlockAndPointsAtFacsAndDsdt) {
  const auto tables = build_acpi_tables(test_config());
  const auto fadt = as<Fadt>(find(tables, "FACP").bytes);
  EXPECT_GE(fadt.header.revision, 3);
  EXPECT_EQ(fadt.header.length, sizeof(Fadt));
  EXPECT_EQ(fadt.sci_int, 9);
  EXPECT_EQ(fadt.smi_cmd, 0u);
  EXPECT_EQ(fadt.pm1a_evt_blk, 0x600u);
  EXPECT_EQ(fadt.pm1a_cnt_blk, 0x604u);
  EXPECT_EQ(fadt.pm_tmr_blk, 0x608u);
  EXPECT_EQ(fadt.pm1_evt_len, 4);
  EXPECT_EQ(fadt.pm1_cnt_len, 2);
  EXPECT_EQ(fadt.pm_tmr_len, 4);
  EXPECT_EQ(fadt.x_pm_tmr_blk.address, 0x608u);
  EXPECT_EQ(fadt.x_pm_tmr_blk.space_id, 1);
  EXPECT_EQ(fadt.x_pm_tmr_blk.bit_width, 32);
  EXPECT_EQ(fadt.x_pm1a_cnt_blk.bit_width, 16);
  EXPECT_EQ(fadt.flags & kFadtHardwareReduced, 0u);
  EXPECT_NE(fadt.flags & kFadtWbinvd, 0u);
  EXPECT_NE(fadt.flags & kFadtProcC1, 0u);
  EXPECT_EQ(fadt.flags & kFadtPowerButton, 0u);  // fixed-feature power button in PM1
  EXPECT_EQ(fadt.firmware_ctrl, find(tables, "FACS").address);
  EXPECT_EQ(fadt.x_firmware_ctrl, find(tables, "FACS").address);
  EXPECT_EQ(fadt.dsdt, find(tables, "DSDT").address);
  EXPECT_EQ(fadt.x_dsdt, find(tables, "DSDT").address);
  EXPECT_EQ(find(tables, "FACS").address % 64, 0u);
  const auto facs = as<Facs>(find(tables, "FACS").bytes);
  EXPECT_EQ(std::string_view(facs.signature, 4), "FACS");
  EXPECT_EQ(facs.length, 64u);
}

TEST(AcpiTables, MadtHasOneEnabledLocalApicPerCpuTheIoapicAndOverrides) {
  for (uint32_t cpus : {1u, 3u, 64u}) {
    SCOPED_TRACE(cpus);
    AcpiConfig config = test_config(cpus);
    config.ioapic_id = 7;
    const auto madt = build_madt(config);
    EXPECT_EQ(as<uint32_t>(madt, 36), kLapicAddress);
    uint32_t lapics = 0;
    bool saw_ioapic = false;
    bool saw_timer_override = false;
    bool saw_sci_override = false;
    for (size_t offset = sizeof(MadtHeader); offset < madt.size();) {
      const uint8_t type = madt[offset];
      const uint8_t length = madt[offset + 1];
      ASSERT_GE(length, 2);
      if (type == 0) {
        const auto lapic = as<MadtLocalApic>(madt, offset);
        EXPECT_EQ(lapic.apic_id, lapics);
        EXPECT_EQ(lapic.processor_uid, lapics);
        EXPECT_EQ(lapic.flags & 1, 1u);
        ++lapics;
      } else if (type == 1) {
        const auto ioapic = as<MadtIoApic>(madt, offset);
        EXPECT_EQ(ioapic.address, kIoapicAddress);
        EXPECT_EQ(ioapic.ioapic_id, 7);
        EXPECT_EQ(ioapic.gsi_base, 0u);
        saw_ioapic = true;
      } else if (type == 2) {
        const auto iso = as<MadtInterruptOverride>(madt, offset);
        if (iso.source == 0 && iso.gsi == 2) saw_timer_override = true;
        if (iso.source == 9 && iso.gsi == 9 && iso.flags == 0xD) saw_sci_override = true;
      }
      offset += length;
    }
    EXPECT_EQ(lapics, cpus);
    EXPECT_TRUE(saw_ioapic);
    EXPECT_TRUE(saw_timer_override);
    EXPECT_TRUE(saw_sci_override);
  }
  EXPECT_CONTAINS(usage_error_of([] { (void)build_madt(test_config(256)); }), "256 CPUs");
}

TEST(AcpiTables, WriteToGuestMemoryReturnsTheRsdp) {
  GuestMemory memory(pc_ram_ranges(16 * kMiB));
  const uint64_t rsdp = write_acpi_tables(memory, test_config());
  EXPECT_EQ(rsdp, kRsdpAddress);
  char signature[8];
  ASSERT_TRUE(memory.read(rsdp, signature, sizeof(signature)));
  EXPECT_EQ(std::string_view(signature, 8), "RSD PTR ");
  for (const auto& t : build_acpi_tables(test_config())) {
    std::vector<uint8_t> in_guest(t.bytes.size());
    ASSERT_TRUE(memory.read(t.address, in_guest.data(), in_guest.size()));
    EXPECT_EQ(in_guest, t.bytes) << t.signature;
  }
}

TEST(AcpiTables, TablesThatDoNotFitFailClearly) {
  EXPECT_CONTAINS(usage_error_of([] { (void)build_acpi_tables(test_config(), {0xE0000, 0x200}); }),
                  "the ACPI area at 0xe0000 holds only 512");
  AcpiConfig high = test_config();
  high.mmio_devices.push_back({"LNRO0005", 2, 0x100000000, 0x200, 7, false});
  EXPECT_CONTAINS(usage_error_of([&] { (void)build_acpi_tables(high); }), "must lie below 4 GiB");
}

// iasl -d must disassemble every table cleanly; the disassembly is then checked for what the guest should see.
class AcpiIasl : public ::testing::Test {
 protected:
  static std::string disassemble(const AcpiTable& table, const std::filesystem::path& dir) {
    const std::string base = table.signature == "RSDP" ? "rsdp" : table.signature;
    testing::write_test_file(dir / (base + ".dat"), table.bytes);
    const std::string command =
        "cd '" + dir.string() + "' && iasl -d " + base + ".dat > " + base + ".log 2>&1";
    const int status = std::system(command.c_str());
    std::ifstream log(dir / (base + ".log"));
    std::stringstream log_text;
    log_text << log.rdbuf();
    EXPECT_EQ(status, 0) << table.signature << ": iasl -d failed:\n" << log_text.str();
    std::ifstream dsl(dir / (base + ".dsl"));
    std::stringstream text;
    text << dsl.rdbuf();
    EXPECT_FALSE(text.str().empty()) << table.signature;
    return text.str();
  }
};

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
  return n;
}

TEST_F(AcpiIasl, EveryTableDisassemblesCleanly) {
  if (std::system("iasl -v > /dev/null 2>&1") != 0) GTEST_SKIP() << "iasl (acpica-tools) is not installed";
  const auto dir = testing::test_dir("acpi_iasl");
  const auto tables = build_acpi_tables(test_config(3));
  for (const auto& table : tables) {
    // iasl (at least 20200925) does not take a binary RSDP: it reads "PTR " as the table length. The RSDP's fields
    // and both checksums are checked in AcpiTables.RsdpPointsAtRsdtAndXsdtWithBothChecksums instead.
    if (table.signature == "RSDP") continue;
    SCOPED_TRACE(table.signature);
    const std::string dsl = disassemble(table, dir);
    if (table.signature == "DSDT") {
      EXPECT_CONTAINS(dsl, "Device (PCI0)");
      EXPECT_CONTAINS(dsl, "EisaId (\"PNP0A03\")");
      EXPECT_CONTAINS(dsl, "EisaId (\"PNP0501\")");
      EXPECT_CONTAINS(dsl, "Name (\\_S5, Package (0x04)");
      EXPECT_CONTAINS(dsl, "WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode");
      EXPECT_CONTAINS(dsl, "0xFEBFFFFF");
      EXPECT_CONTAINS(dsl, "IO (Decode16,");
      EXPECT_CONTAINS(dsl, "IRQNoFlags ()");
      EXPECT_CONTAINS(dsl, "\"LNRO0005\"");
      EXPECT_CONTAINS(dsl, "Memory32Fixed (ReadWrite,");
      EXPECT_CONTAINS(dsl, "Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive, ,, )");
      EXPECT_CONTAINS(dsl, "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )");
      EXPECT_EQ(count(dsl, "\"ACPI0007\""), 3u);
      EXPECT_EQ(count(dsl, "Device (COM"), 2u);
    } else if (table.signature == "APIC") {
      EXPECT_EQ(count(dsl, "Subtable Type : 00 [Processor Local APIC]"), 3u);
      EXPECT_EQ(count(dsl, "Subtable Type : 01 [I/O APIC]"), 1u);
      EXPECT_EQ(count(dsl, "Subtable Type : 02 [Interrupt Source Override]"), 2u);
    } else if (table.signature == "FACP") {
      EXPECT_CONTAINS(dsl, "PM Timer Block Address : 00000608");
    }
    EXPECT_EQ(dsl.find("Invalid"), std::string::npos) << dsl;
    EXPECT_EQ(dsl.find("**** "), std::string::npos) << dsl;
  }
}

}  // namespace
}  // namespace iovmm::boot::acpi

namespace iovmm::boot::acpi {
namespace {

// Enough devices that \_SB's PkgLength needs three bytes (a body over 4 KiB); iasl must still walk it.
TEST_F(AcpiIasl, LargeDsdtWithMultiBytePkgLengthsDisassembles) {
  if (std::system("iasl -v > /dev/null 2>&1") != 0) GTEST_SKIP() << "iasl (acpica-tools) is not installed";
  AcpiConfig config = test_config(8);
  config.mmio_devices.clear();
  for (uint32_t i = 0; i < 100; ++i) {
    config.mmio_devices.push_back({"LNRO0005", i, 0xD0000000 + i * 0x200, 0x200, 5 + i % 16, false});
  }
  const auto dsdt = build_dsdt(config);
  ASSERT_GT(dsdt.size(), 4096u);
  // Scope opcode right after the header, then a PkgLength whose top bits say three bytes.
  ASSERT_EQ(dsdt[sizeof(TableHeader)], 0x10);
  EXPECT_EQ(dsdt[sizeof(TableHeader) + 1] >> 6, 2);
  const std::string dsl = disassemble({"DSDT", 0, dsdt}, testing::test_dir("acpi_iasl_large"));
  EXPECT_EQ(count(dsl, "\"LNRO0005\""), 100u);
  EXPECT_EQ(count(dsl, "\"ACPI0007\""), 8u);
  EXPECT_CONTAINS(dsl, "Name (\\_S5, Package (0x04)");
}

}  // namespace
}  // namespace iovmm::boot::acpi
