#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>

#include "boot/kernel_loader.h"
#include "boot/layout.h"
#include "boot/pvh.h"
#include "test_boot_image_builder.h"

namespace iovmm::boot {
namespace {

using testing::ElfBuilder;
using testing::read;
using testing::read_string;
using testing::test_dir;
using testing::usage_error_of;
using testing::write_test_file;

constexpr uint64_t kKernelAddress = 16 * kMiB;
constexpr uint32_t kEntry = 0x1000040;

std::vector<uint8_t> pvh_kernel(uint64_t paddr = kKernelAddress, uint64_t memsz = 0x3000) {
  std::vector<uint8_t> code(0x100);
  for (size_t i = 0; i < code.size(); ++i) code[i] = static_cast<uint8_t>(i);
  return ElfBuilder(true)
      .entry(0xffffffff81000000)
      .segment({paddr, code, memsz, 0xffffffff81000000})
      .note({"Xen", kXenElfNotePhys32Entry, testing::bytes_of(kEntry)})
      .build();
}

TEST(BootPvh, LoadsKernelStartInfoMemoryMapCommandLineAndModule) {
  const auto dir = test_dir("pvh_full");
  const auto kernel = write_test_file(dir / "vmlinux", pvh_kernel());
  std::vector<uint8_t> initrd(5000, 0xAB);
  const auto initrd_path = write_test_file(dir / "initrd.img", initrd);

  GuestMemory memory(pc_ram_ranges(64 * kMiB));
  // Dirty the bss so the test sees the loader zero it.
  ASSERT_TRUE(memory.write_obj<uint32_t>(kKernelAddress + 0x2000, 0xDEADBEEF));
  const BootSetup setup =
      load_kernel(memory, {kernel, "console=ttyS0 panic=-1", {initrd_path + " rdinit=/init"}, 0xE0000});

  EXPECT_EQ(setup.protocol, "pvh");
  EXPECT_EQ(setup.entry_eip, kEntry);
  EXPECT_EQ(setup.ebx, kBootInfoAddress);
  EXPECT_EQ(setup.image_start, kKernelAddress);
  EXPECT_EQ(setup.image_end, kKernelAddress + 0x3000);
  EXPECT_EQ(setup.cpu.eip, kEntry);
  EXPECT_EQ(setup.cpu.cr0 & 0x80000001u, 1u);  // protected mode, paging off
  EXPECT_TRUE(setup.cpu.code.default_32bit);
  EXPECT_EQ(setup.cpu.code.limit, 0xFFFFFFFFu);
  EXPECT_EQ(setup.cpu.gdt_base, kBootGdtAddress);
  // The GDT in memory matches the code segment handed to the machine: flat 32-bit execute/read.
  EXPECT_EQ(read<uint64_t>(memory, kBootGdtAddress + setup.cpu.code.selector), 0x00CF9B000000FFFFull);
  EXPECT_EQ(read<uint64_t>(memory, kBootGdtAddress + setup.cpu.data.selector), 0x00CF93000000FFFFull);

  EXPECT_EQ(read<uint8_t>(memory, kKernelAddress + 0x42), 0x42);
  EXPECT_EQ(read<uint32_t>(memory, kKernelAddress + 0x2000), 0u);

  const auto info = read<HvmStartInfo>(memory, setup.ebx);
  EXPECT_EQ(info.magic, kHvmStartMagic);
  EXPECT_EQ(info.version, 1u);
  EXPECT_EQ(info.rsdp_paddr, 0xE0000u);
  EXPECT_EQ(read_string(memory, info.cmdline_paddr), "console=ttyS0 panic=-1");

  const auto map = e820_map(memory);
  ASSERT_EQ(info.memmap_entries, map.size());
  for (size_t i = 0; i < map.size(); ++i) {
    const auto entry = read<HvmMemmapTableEntry>(memory, info.memmap_paddr + i * sizeof(HvmMemmapTableEntry));
    EXPECT_EQ(entry.addr, map[i].addr);
    EXPECT_EQ(entry.size, map[i].size);
    EXPECT_EQ(entry.type, map[i].type);
    EXPECT_EQ(entry.reserved, 0u);
  }

  ASSERT_EQ(info.nr_modules, 1u);
  const auto module = read<HvmModlistEntry>(memory, info.modlist_paddr);
  EXPECT_EQ(module.size, initrd.size());
  EXPECT_EQ(module.paddr % kPageSize, 0u);
  EXPECT_GE(module.paddr, setup.image_end);
  EXPECT_LE(module.paddr + module.size, 64 * kMiB);
  EXPECT_EQ(read_string(memory, module.cmdline_paddr), "rdinit=/init");
  std::vector<uint8_t> loaded(initrd.size());
  ASSERT_TRUE(memory.read(module.paddr, loaded.data(), loaded.size()));
  EXPECT_EQ(loaded, initrd);
}

TEST(BootPvh, SegmentOutsideRam) {
  const auto dir = test_dir("pvh_outside");
  const auto kernel = write_test_file(dir / "vmlinux", pvh_kernel(3 * kGiB + 16 * kMiB));
  GuestMemory memory(pc_ram_ranges(64 * kMiB));
  const auto message = usage_error_of([&] { (void)load_kernel(memory, {kernel, "", {}, 0}); });
  EXPECT_CONTAINS(message, "vmlinux: segment 0 at 0xc1000000");
  EXPECT_CONTAINS(message, "lies outside guest RAM (63 MiB)");
}

TEST(BootPvh, SegmentOverflowing64Bits) {
  const auto dir = test_dir("pvh_overflow");
  const auto kernel = write_test_file(dir / "vmlinux", pvh_kernel(0xFFFFFFFFFFFFF000ull, 0x2000));
  GuestMemory memory(pc_ram_ranges(64 * kMiB));
  EXPECT_CONTAINS(usage_error_of([&] { (void)load_kernel(memory, {kernel, "", {}, 0}); }),
                  "overflows the 64-bit address space");
}

TEST(BootPvh, MemoryTooSmallForTheKernel) {
  const auto dir = test_dir("pvh_small");
  const auto kernel = write_test_file(dir / "vmlinux", pvh_kernel(kKernelAddress, 8 * kMiB));
  GuestMemory memory(pc_ram_ranges(8 * kMiB));
  EXPECT_CONTAINS(usage_error_of([&] { (void)load_kernel(memory, {kernel, "", {}, 0}); }), "lies outside guest RAM");
}

TEST(BootPvh, CommandLineTooLong) {
  const auto dir = test_dir("pvh_cmdline");
  const auto kernel = write_test_file(dir / "vmlinux", pvh_kernel());
  GuestMemory memory(pc_ram_ranges(64 * kMiB));
  const std::string longest(kCommandLineArea.size - 1, 'x');
  EXPECT_NO_THROW((void)load_kernel(memory, {kernel, longest, {}, 0}));
  const std::string too_long(kCommandLineArea.size, 'x');
  EXPECT_CONTAINS(usage_error_of([&] { (void)load_kernel(memory, {kernel, too_long, {}, 0}); }),
                  "kernel command line is 65536 bytes; the limit is 65535");
}

TEST(BootPvh, MissingInitrd) {
  const auto dir = test_dir("pvh_no_initrd");
  const auto kernel = write_test_file(dir / "vmlinux", pvh_kernel());
  GuestMemory memory(pc_ram_ranges(64 * kMiB));
  const std::string missing = (dir / "nope.img").string();
  EXPECT_CONTAINS(usage_error_of([&] { (void)load_kernel(memory, {kernel, "", {missing}, 0}); }),
                  "initrd " + missing + ": No such file or directory");
}

TEST(BootPvh, InitrdTooLargeForRam) {
  const auto dir = test_dir("pvh_big_initrd");
  const auto kernel = write_test_file(dir / "vmlinux", pvh_kernel());
  const auto initrd = write_test_file(dir / "big.img", std::vector<uint8_t>(8 * kMiB, 1));
  GuestMemory memory(pc_ram_ranges(20 * kMiB));
  EXPECT_CONTAINS(usage_error_of([&] { (void)load_kernel(memory, {kernel, "", {initrd}, 0}); }),
                  "does not fit in guest RAM");
}

TEST(BootPvh, InitrdLargerThanRamIsRefusedUnread) {
  const auto dir = test_dir("pvh_huge_initrd");
  const auto kernel = write_test_file(dir / "vmlinux", pvh_kernel());
  const auto initrd = dir / "huge.img";
  write_test_file(initrd, {1});
  std::filesystem::resize_file(initrd, 64 * kMiB + 1);  // sparse: nothing to read if it were read
  GuestMemory memory(pc_ram_ranges(64 * kMiB));
  EXPECT_CONTAINS(usage_error_of([&] { (void)load_kernel(memory, {kernel, "", {initrd.string()}, 0}); }),
                  "initrd " + initrd.string() + ": 64.0 MiB is more than 63.9 MiB, the most it can be: guest RAM (63.9 "
                  "MiB), where it is loaded whole");
}

// An entry point outside RAM below 4 GiB is refused as one above 4 GiB is: the guest could only fail to run there.
TEST(BootPvh, EntryOutsideRamIsRefused) {
  const auto dir = test_dir("pvh_entry_outside");
  const auto image = ElfBuilder(true)
                         .segment({kKernelAddress, std::vector<uint8_t>(0x100, 0xF4)})
                         .note({"Xen", kXenElfNotePhys32Entry, testing::bytes_of(uint32_t{0x8000000})})
                         .build();
  const auto kernel = write_test_file(dir / "vmlinux", image);
  GuestMemory memory(pc_ram_ranges(128 * kMiB));
  EXPECT_CONTAINS(usage_error_of([&] { (void)load_kernel(memory, {kernel, "", {}, 0}); }),
                  "vmlinux: PVH entry point 0x8000000 lies outside guest RAM (127 MiB)");
  GuestMemory more(pc_ram_ranges(256 * kMiB));
  EXPECT_NO_THROW((void)load_kernel(more, {kernel, "", {}, 0}));
}

TEST(BootPvh, NoteWithOddSizeIsRejected) {
  const auto dir = test_dir("pvh_bad_note");
  const auto image = ElfBuilder(true).segment({kKernelAddress, {1}}).note({"Xen", 18, {1, 2}}).build();
  const auto kernel = write_test_file(dir / "vmlinux", image);
  GuestMemory memory(pc_ram_ranges(64 * kMiB));
  EXPECT_CONTAINS(usage_error_of([&] { (void)load_kernel(memory, {kernel, "", {}, 0}); }),
                  "XEN_ELFNOTE_PHYS32_ENTRY note has 2 bytes");
}

TEST(BootPvh, SegmentOverTheBootInformationIsRejected) {
  const auto dir = test_dir("pvh_low");
  const auto kernel = write_test_file(dir / "vmlinux", pvh_kernel(0x6000, 0x100));
  GuestMemory memory(pc_ram_ranges(64 * kMiB));
  EXPECT_CONTAINS(usage_error_of([&] { (void)load_kernel(memory, {kernel, "", {}, 0}); }),
                  "overlaps the firmware area");
}

// Corrupting any bytes of the headers must end in a clean load or a UsageError: never a crash, never another error.
TEST(BootPvh, CorruptedHeadersOnlyEverRaiseUsageErrors) {
  const auto original = pvh_kernel();
  GuestMemory memory(pc_ram_ranges(64 * kMiB));
  std::mt19937 random(12345);
  const size_t header_bytes = sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr);
  size_t rejected = 0;
  for (int round = 0; round < 3000; ++round) {
    auto image = original;
    const int flips = 1 + static_cast<int>(random() % 4);
    for (int i = 0; i < flips; ++i) {
      // Mostly the headers, sometimes the note at the end.
      const size_t at = random() % 4 ? random() % header_bytes : image.size() - 1 - random() % 24;
      image[at] = static_cast<uint8_t>(random());
    }
    if (random() % 8 == 0) image.resize(random() % image.size());
    try {
      const ElfFile elf("fuzz.elf", image);
      if (const auto entry = pvh_entry_point(elf)) (void)load_pvh(memory, elf, *entry, {"fuzz.elf", "", {}, 0});
    } catch (const UsageError&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0u);
}

}  // namespace
}  // namespace iovmm::boot
