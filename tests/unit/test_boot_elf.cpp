#include <gtest/gtest.h>

#include "boot/elf.h"
#include "test_boot_image_builder.h"

namespace iovmm::boot {
namespace {

using testing::ElfBuilder;
using testing::put;
using testing::usage_error_of;

std::vector<uint8_t> two_segment_elf(bool is_64bit) {
  return ElfBuilder(is_64bit)
      .entry(0x100000)
      .segment({0x100000, {1, 2, 3, 4}, 0x2000})
      .segment({0x200000, {5, 6}})
      .note({"Xen", 18, {0x00, 0x00, 0x10, 0x00}})
      .note({"GNU", 3, {9, 9, 9}})
      .build();
}

TEST(BootElf, Parses64BitSegmentsAndNotes) {
  const auto image = two_segment_elf(true);
  const ElfFile elf("kernel.elf", image);
  EXPECT_TRUE(elf.is_64bit());
  EXPECT_EQ(elf.entry(), 0x100000u);
  ASSERT_EQ(elf.segments().size(), 3u);
  EXPECT_EQ(elf.segments()[0].type, uint32_t{PT_LOAD});
  EXPECT_EQ(elf.segments()[0].paddr, 0x100000u);
  EXPECT_EQ(elf.segments()[0].memsz, 0x2000u);
  EXPECT_EQ(elf.file_bytes(elf.segments()[1]).size(), 2u);
  const auto notes = elf.notes();
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_EQ(notes[1].name, "GNU");
  EXPECT_EQ(notes[1].desc.size(), 3u);
  const auto xen = elf.find_note("Xen", 18);
  ASSERT_TRUE(xen.has_value());
  EXPECT_EQ(xen->desc[2], 0x10);
  EXPECT_FALSE(elf.find_note("Xen", 17).has_value());
}

TEST(BootElf, Parses32Bit) {
  const auto image = two_segment_elf(false);
  const ElfFile elf("kernel.elf", image);
  EXPECT_FALSE(elf.is_64bit());
  EXPECT_EQ(elf.segments()[1].paddr, 0x200000u);
  EXPECT_TRUE(elf.find_note("Xen", 18).has_value());
}

TEST(BootElf, NotElf) {
  const std::vector<uint8_t> text = {'h', 'e', 'l', 'l', 'o'};
  EXPECT_CONTAINS(usage_error_of([&] { ElfFile("kernel.elf", text); }), "kernel.elf: not an ELF file");
}

TEST(BootElf, TruncatedHeader) {
  auto image = two_segment_elf(true);
  image.resize(40);
  EXPECT_CONTAINS(usage_error_of([&] { ElfFile("kernel.elf", image); }), "kernel.elf: truncated ELF header");
  image.resize(10);
  EXPECT_CONTAINS(usage_error_of([&] { ElfFile("kernel.elf", image); }), "truncated ELF header");
}

TEST(BootElf, ProgramHeaderTablePastTheEnd) {
  auto image = two_segment_elf(true);
  image.resize(sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr) + 10);  // third header cut short
  EXPECT_CONTAINS(usage_error_of([&] { ElfFile("kernel.elf", image); }),
                  "kernel.elf: program header 2 runs past the end of the file");
}

TEST(BootElf, ProgramHeaderOffsetOverflowIsCaught) {
  auto image = two_segment_elf(true);
  put<uint64_t>(image, offsetof(Elf64_Ehdr, e_phoff), UINT64_MAX - 8);
  EXPECT_CONTAINS(usage_error_of([&] { ElfFile("kernel.elf", image); }), "program header 0 runs past the end");
}

TEST(BootElf, SegmentDataPastTheEnd) {
  auto image = two_segment_elf(true);
  const size_t phdr1 = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr);
  put<uint64_t>(image, phdr1 + offsetof(Elf64_Phdr, p_filesz), 0x10000);
  EXPECT_CONTAINS(usage_error_of([&] { ElfFile("kernel.elf", image); }),
                  "program header 1: its data (offset");
  put<uint64_t>(image, phdr1 + offsetof(Elf64_Phdr, p_offset), UINT64_MAX);
  put<uint64_t>(image, phdr1 + offsetof(Elf64_Phdr, p_filesz), 2);
  EXPECT_CONTAINS(usage_error_of([&] { ElfFile("kernel.elf", image); }), "runs past the end of the file");
}

TEST(BootElf, FileSizeLargerThanMemorySize) {
  auto image = two_segment_elf(false);
  put<uint32_t>(image, sizeof(Elf32_Ehdr) + offsetof(Elf32_Phdr, p_memsz), 1);
  EXPECT_CONTAINS(usage_error_of([&] { ElfFile("kernel.elf", image); }), "file size 0x4 is larger than memory size");
}

TEST(BootElf, WrongMachineOrEndianness) {
  auto image = two_segment_elf(true);
  put<uint16_t>(image, offsetof(Elf64_Ehdr, e_machine), EM_AARCH64);
  EXPECT_CONTAINS(usage_error_of([&] { ElfFile("kernel.elf", image); }), "is not x86-64");
  image = two_segment_elf(true);
  image[EI_DATA] = ELFDATA2MSB;
  EXPECT_CONTAINS(usage_error_of([&] { ElfFile("kernel.elf", image); }), "not a little-endian");
}

TEST(BootElf, NoteRunningPastItsSegment) {
  const auto image = ElfBuilder(true).segment({0x100000, {1}}).note({"Xen", 18, {1, 2, 3, 4}}).build();
  auto corrupt = image;
  // The note segment's data is the last thing in the file; its first word is n_namesz.
  const size_t note_offset = corrupt.size() - 20;  // 12-byte header, "Xen\0", 4 bytes of desc
  put<uint32_t>(corrupt, note_offset, 0x7FFFFFFF);
  const ElfFile elf("kernel.elf", corrupt);
  EXPECT_CONTAINS(usage_error_of([&] { (void)elf.notes(); }), "program header 1: note at offset 0x0 runs past");
}

}  // namespace
}  // namespace iovmm::boot
