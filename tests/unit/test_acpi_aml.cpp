#include <gtest/gtest.h>

#include "boot/acpi/aml.h"
#include "common/error.h"

namespace iovmm::boot::aml {
namespace {

using B = Bytes;

TEST(AcpiAml, PkgLengthBoundaries) {
  // The encoding counts its own bytes: a 62-byte body is 63 in all, the last one-byte length.
  EXPECT_EQ(pkg_length(0), (B{0x01}));
  EXPECT_EQ(pkg_length(62), (B{0x3F}));
  // 63 bytes of body + 2 = 65 = 0x41: lead byte 0x40 | 0x1, then 0x41 >> 4.
  EXPECT_EQ(pkg_length(63), (B{0x41, 0x04}));
  EXPECT_EQ(pkg_length(64), (B{0x42, 0x04}));
  // 4093 + 2 = 4095, the largest two-byte length; one more needs three bytes (4094 + 3 = 4097).
  EXPECT_EQ(pkg_length(4093), (B{0x4F, 0xFF}));
  EXPECT_EQ(pkg_length(4094), (B{0x81, 0x00, 0x01}));
  EXPECT_EQ(pkg_length(4095), (B{0x82, 0x00, 0x01}));
  // Three bytes hold up to 0xFFFFF; then four.
  EXPECT_EQ(pkg_length(0xFFFFF - 3), (B{0x8F, 0xFF, 0xFF}));
  EXPECT_EQ(pkg_length(0xFFFFF - 2), (B{0xC1, 0x00, 0x00, 0x01}));
  EXPECT_EQ(pkg_length(0xFFFFFFF - 4), (B{0xCF, 0xFF, 0xFF, 0xFF}));
  EXPECT_THROW((void)pkg_length(0xFFFFFFF), Error);
}

TEST(AcpiAml, IntegersUseTheSmallestEncoding) {
  EXPECT_EQ(integer(0), (B{0x00}));
  EXPECT_EQ(integer(1), (B{0x01}));
  EXPECT_EQ(integer(UINT64_MAX), (B{0xFF}));
  EXPECT_EQ(integer(2), (B{0x0A, 0x02}));
  EXPECT_EQ(integer(0xFF), (B{0x0A, 0xFF}));
  EXPECT_EQ(integer(0x100), (B{0x0B, 0x00, 0x01}));
  EXPECT_EQ(integer(0x10000), (B{0x0C, 0x00, 0x00, 0x01, 0x00}));
  EXPECT_EQ(integer(0x100000000), (B{0x0E, 0, 0, 0, 0, 1, 0, 0, 0}));
}

TEST(AcpiAml, NameStrings) {
  EXPECT_EQ(name_string("_S5"), (B{'_', 'S', '5', '_'}));
  EXPECT_EQ(name_string("\\_SB"), (B{'\\', '_', 'S', 'B', '_'}));
  EXPECT_EQ(name_string("\\_SB.PCI0"), (B{'\\', 0x2E, '_', 'S', 'B', '_', 'P', 'C', 'I', '0'}));
  EXPECT_EQ(name_string("^A.B.C"), (B{'^', 0x2F, 3, 'A', '_', '_', '_', 'B', '_', '_', '_', 'C', '_', '_', '_'}));
  EXPECT_THROW((void)name_string("\\_SB.toolong"), Error);
  EXPECT_THROW((void)name_string("1ABC"), Error);
}

TEST(AcpiAml, EisaIdAndStrings) {
  EXPECT_EQ(eisa_id("PNP0A03"), (B{0x0C, 0x41, 0xD0, 0x0A, 0x03}));
  EXPECT_EQ(eisa_id("PNP0501"), (B{0x0C, 0x41, 0xD0, 0x05, 0x01}));
  EXPECT_THROW((void)eisa_id("LNRO0005"), Error);
  EXPECT_EQ(string("AB"), (B{0x0D, 'A', 'B', 0x00}));
}

TEST(AcpiAml, NamedObjectsAndPackages) {
  EXPECT_EQ(name("_UID", integer(1)), (B{0x08, '_', 'U', 'I', 'D', 0x01}));
  EXPECT_EQ(package({integer(5), integer(0)}), (B{0x12, 0x05, 0x02, 0x0A, 0x05, 0x00}));
  EXPECT_EQ(scope("\\", {}), (B{0x10, 0x03, '\\', 0x00}));
  EXPECT_EQ(device("COM1", {}), (B{0x5B, 0x82, 0x05, 'C', 'O', 'M', '1'}));
  EXPECT_EQ(method("_STA", 0, false, {return_value(integer(0x0F))}),
            (B{0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xA4, 0x0A, 0x0F}));
  EXPECT_EQ(method("FOO", 2, true, {})[6], 0x0A);  // arg count 2, serialized bit 3
}

TEST(AcpiAml, LargeScopeUsesMultiBytePkgLength) {
  // A body of 63+ bytes moves to a two-byte PkgLength; the length still covers exactly what follows the opcode.
  std::vector<Bytes> names;
  for (int i = 0; i < 20; ++i) names.push_back(name("_UID", integer(0)));  // 6 bytes each
  const Bytes out = scope("\\_SB", names);
  ASSERT_EQ(out[0], 0x10);
  EXPECT_EQ(out[1] >> 6, 1);  // two-byte encoding
  const size_t length = (out[1] & 0x0F) | (size_t{out[2]} << 4);
  EXPECT_EQ(length, out.size() - 1);
}

TEST(AcpiAml, ResourceDescriptors) {
  EXPECT_EQ(resource::io(0x3F8, 0x3F8, 1, 8), (B{0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08}));
  EXPECT_EQ(resource::irq_no_flags(4), (B{0x22, 0x10, 0x00}));
  EXPECT_EQ(resource::memory32_fixed(0xD0000000, 0x200, true),
            (B{0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xD0, 0x00, 0x02, 0x00, 0x00}));
  EXPECT_EQ(resource::extended_interrupt(5, {}), (B{0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00}));
  EXPECT_EQ(resource::extended_interrupt(5, {.level_triggered = true, .active_low = true, .shared = true})[3], 0x0D);
  const Bytes bus = resource::word_bus_number(0, 0xFF);
  EXPECT_EQ(bus, (B{0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00, 0, 0, 0, 0, 0xFF, 0, 0, 0, 0x00, 0x01}));
  EXPECT_EQ(resource::word_io(0xD00, 0xFFFF)[5], 0x03);  // EntireRange
  const Bytes mem32 = resource::dword_memory(0xC0000000, 0xFEBFFFFF, false);
  EXPECT_EQ(mem32.size(), 26u);
  EXPECT_EQ(mem32[0], 0x87);
  EXPECT_EQ(mem32[5], 0x01);  // read/write, non-cacheable
  const Bytes mem64 = resource::qword_memory(0x100000000, 0x1FFFFFFFF, true);
  EXPECT_EQ(mem64.size(), 46u);
  EXPECT_EQ(mem64[0], 0x8A);
  EXPECT_EQ(mem64[5], 0x03);  // read/write, cacheable
  EXPECT_EQ(mem64[38], 0x00);  // length 0x100000000: byte 4 of the length field is 1
  EXPECT_EQ(mem64[42], 0x01);
}

TEST(AcpiAml, ResourceTemplateEndsWithAChecksummedEndTag) {
  const Bytes rt = resource_template({resource::irq_no_flags(4)});
  // Buffer, PkgLength, BufferSize (5), IRQ descriptor, EndTag, checksum.
  ASSERT_EQ(rt, (B{0x11, 0x08, 0x0A, 0x05, 0x22, 0x10, 0x00, 0x79, rt.back()}));
  uint8_t sum = 0;
  for (size_t i = 4; i < rt.size(); ++i) sum = static_cast<uint8_t>(sum + rt[i]);
  EXPECT_EQ(sum, 0);
}

}  // namespace
}  // namespace iovmm::boot::aml
