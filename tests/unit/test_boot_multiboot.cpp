#include <gtest/gtest.h>

#include <string>

#include "boot/kernel_loader.h"
#include "boot/layout.h"
#include "boot/multiboot.h"
#include "test_boot_image_builder.h"

namespace iovmm::boot {
namespace {

using testing::ElfBuilder;
using testing::read;
using testing::read_string;
using testing::put;
using testing::test_dir;
using testing::usage_error_of;
using testing::write_test_file;

constexpr uint64_t kKernelAddress = 1 * kMiB;

std::vector<uint8_t> multiboot_header(uint32_t flags) {
  std::vector<uint8_t> header;
  put<uint32_t>(header, 0, kMultibootHeaderMagic);
  put<uint32_t>(header, 4, flags);
  put<uint32_t>(header, 8, static_cast<uint32_t>(-(kMultibootHeaderMagic + flags)));
  return header;
}

std::vector<uint8_t> multiboot_elf(bool is_64bit, uint32_t flags = 0x3) {
  auto code = multiboot_header(flags);
  code.resize(0x200, 0x90);
  return ElfBuilder(is_64bit)
      .entry(0xC0100010)  // a higher-half virtual entry, mapped to 1 MiB + 0x10 by the segment
      .segment({kKernelAddress, code, 0x5000, 0xC0100000})
      .build();
}

TEST(BootMultiboot, FindsHeaderOnlyWhenMagicAndChecksumAgree) {
  auto file = std::vector<uint8_t>(64, 0);
  auto header = multiboot_header(0);
  std::copy(header.begin(), header.end(), file.begin() + 8);
  auto found = find_multiboot_header(file);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->offset, 8u);
  file[16] ^= 1;  // checksum broken
  EXPECT_FALSE(find_multiboot_header(file).has_value());
  // Past the first 8 KiB the header does not count.
  std::vector<uint8_t> late(9000, 0);
  std::copy(header.begin(), header.end(), late.begin() + 8192);
  EXPECT_FALSE(find_multiboot_header(late).has_value());
}

TEST(BootMultiboot, LoadsElfAndFillsInfo) {
  const auto dir = test_dir("multiboot_full");
  const auto kernel = write_test_file(dir / "kernel.elf", multiboot_elf(false));
  const std::vector<uint8_t> module_a(3000, 0x11);
  const std::vector<uint8_t> module_b(10, 0x22);
  const auto path_a = write_test_file(dir / "a.bin", module_a);
  const auto path_b = write_test_file(dir / "b.bin", module_b);

  GuestMemory memory(pc_ram_ranges(128 * kMiB));
  const BootSetup setup = load_kernel(memory, {kernel, "debug quiet", {path_a + " arg1 arg2", path_b}, 0});

  EXPECT_EQ(setup.protocol, "multiboot");
  EXPECT_EQ(setup.eax, kMultibootBootloaderMagic);
  EXPECT_EQ(setup.ebx, kBootInfoAddress);
  EXPECT_EQ(setup.entry_eip, kKernelAddress + 0x10);
  EXPECT_EQ(setup.cpu.eax, kMultibootBootloaderMagic);
  EXPECT_EQ(setup.image_start, kKernelAddress);
  EXPECT_EQ(setup.image_end, kKernelAddress + 0x5000);

  const auto info = read<MultibootInfo>(memory, setup.ebx);
  const uint32_t expected_flags = kMultibootInfoMemory | kMultibootInfoCmdline | kMultibootInfoModules |
                                  kMultibootInfoMemoryMap | kMultibootInfoBootLoaderName;
  EXPECT_EQ(info.flags, expected_flags);
  EXPECT_EQ(info.mem_lower, 639u);
  EXPECT_EQ(info.mem_upper, (128 * kMiB - 1 * kMiB) / kKiB);
  // The first token is the kernel's own name, as QEMU passes it.
  EXPECT_EQ(read_string(memory, info.cmdline), kernel + " debug quiet");
  EXPECT_EQ(read_string(memory, info.boot_loader_name), "iovmm");

  ASSERT_EQ(info.mods_count, 2u);
  const auto mod_a = read<MultibootModule>(memory, info.mods_addr);
  const auto mod_b = read<MultibootModule>(memory, info.mods_addr + sizeof(MultibootModule));
  EXPECT_EQ(mod_a.mod_start, kKernelAddress + 0x5000);  // page-aligned, right after the kernel
  EXPECT_EQ(mod_a.mod_end - mod_a.mod_start, module_a.size());
  EXPECT_EQ(mod_b.mod_start, kKernelAddress + 0x6000);
  EXPECT_EQ(mod_b.mod_end - mod_b.mod_start, module_b.size());
  EXPECT_EQ(read_string(memory, mod_a.string), path_a + " arg1 arg2");
  EXPECT_EQ(read_string(memory, mod_b.string), path_b);
  std::vector<uint8_t> loaded(module_a.size());
  ASSERT_TRUE(memory.read(mod_a.mod_start, loaded.data(), loaded.size()));
  EXPECT_EQ(loaded, module_a);

  // mmap_addr points at the first entry's size field; entries follow at size + 4.
  const auto map = e820_map(memory);
  ASSERT_EQ(info.mmap_length, map.size() * sizeof(MultibootMmapEntry));
  uint64_t cursor = info.mmap_addr;
  for (const auto& expected : map) {
    const auto entry = read<MultibootMmapEntry>(memory, cursor);
    EXPECT_EQ(entry.size, 20u);
    EXPECT_EQ(entry.base_addr, expected.addr);
    EXPECT_EQ(entry.length, expected.size);
    EXPECT_EQ(entry.type, expected.type);
    cursor += entry.size + 4;
  }
  EXPECT_EQ(cursor, info.mmap_addr + info.mmap_length);
}

TEST(BootMultiboot, EmptyAppendGivesJustTheKernelName) {
  const auto dir = test_dir("multiboot_noappend");
  const auto kernel = write_test_file(dir / "kernel.elf", multiboot_elf(false));
  GuestMemory memory(pc_ram_ranges(16 * kMiB));
  const BootSetup setup = load_kernel(memory, {kernel, "", {}, 0});
  const auto info = read<MultibootInfo>(memory, setup.ebx);
  EXPECT_EQ(read_string(memory, info.cmdline), kernel);
  EXPECT_EQ(info.mods_count, 0u);
}

TEST(BootMultiboot, VideoModeRequestIsIgnoredAsQemuDoes) {
  const auto dir = test_dir("multiboot_video");
  const auto kernel = write_test_file(dir / "kernel.elf", multiboot_elf(false, 0x7));
  GuestMemory memory(pc_ram_ranges(16 * kMiB));
  EXPECT_EQ(load_kernel(memory, {kernel, "", {}, 0}).protocol, "multiboot");
}

TEST(BootMultiboot, UnknownRequiredFlagIsRefused) {
  const auto dir = test_dir("multiboot_flags");
  const auto kernel = write_test_file(dir / "kernel.elf", multiboot_elf(false, 0x3 | 0x40));
  GuestMemory memory(pc_ram_ranges(16 * kMiB));
  EXPECT_CONTAINS(usage_error_of([&] { (void)load_kernel(memory, {kernel, "", {}, 0}); }),
                  "requires features this loader does not know (flags 0x40)");
}

TEST(BootMultiboot, SixtyFourBitElfIsRefused) {
  const auto dir = test_dir("multiboot_64");
  const auto kernel = write_test_file(dir / "kernel64.elf", multiboot_elf(true));
  GuestMemory memory(pc_ram_ranges(16 * kMiB));
  EXPECT_CONTAINS(usage_error_of([&] { (void)load_kernel(memory, {kernel, "", {}, 0}); }),
                  "kernel64.elf: Cannot load x86-64 image, give a 32bit one.");
}

TEST(BootMultiboot, AddressFieldsLoadAFlatImage) {
  // A flat binary: header at offset 0x10 with flag 16; the file maps to 2 MiB, bss up to 2 MiB + 0x3000.
  std::vector<uint8_t> image(0x1000, 0xCC);
  const uint32_t flags = kMultibootAddressFields;
  const uint32_t load = 2 * kMiB;
  const uint32_t header[8] = {kMultibootHeaderMagic, flags, static_cast<uint32_t>(-(kMultibootHeaderMagic + flags)),
                              load + 0x10, load, 0, load + 0x3000, load + 0x40};
  put(image, 0x10, header);
  const auto dir = test_dir("multiboot_aout");
  const auto kernel = write_test_file(dir / "kernel.bin", image);
  GuestMemory memory(pc_ram_ranges(16 * kMiB));
  ASSERT_TRUE(memory.write_obj<uint32_t>(load + 0x2000, 0xFFFFFFFF));
  const BootSetup setup = load_kernel(memory, {kernel, "", {}, 0});
  EXPECT_EQ(setup.entry_eip, load + 0x40);
  EXPECT_EQ(setup.image_start, load);
  EXPECT_EQ(setup.image_end, load + 0x3000);
  EXPECT_EQ(read<uint8_t>(memory, load + 0xFFF), 0xCC);
  EXPECT_EQ(read<uint32_t>(memory, load + 0x2000), 0u);

  // header_addr below load_addr cannot be right.
  const uint32_t bad[8] = {kMultibootHeaderMagic, flags, static_cast<uint32_t>(-(kMultibootHeaderMagic + flags)),
                           load - 0x10, load, 0, 0, load};
  put(image, 0x10, bad);
  const auto bad_kernel = write_test_file(dir / "bad.bin", image);
  EXPECT_CONTAINS(usage_error_of([&] { (void)load_kernel(memory, {bad_kernel, "", {}, 0}); }),
                  "invalid load_addr address");

  // Found by fuzz_kernel_loader: load_end_addr and bss_end_addr equal to load_addr load nothing at all (and the RAM
  // checks would have had nothing to check, even with load_addr outside RAM).
  const uint32_t empty[8] = {kMultibootHeaderMagic, flags, static_cast<uint32_t>(-(kMultibootHeaderMagic + flags)),
                             load + 0x10, load, load, load, load};
  put(image, 0x10, empty);
  const auto empty_kernel = write_test_file(dir / "empty.bin", image);
  EXPECT_CONTAINS(usage_error_of([&] { (void)load_kernel(memory, {empty_kernel, "", {}, 0}); }), "empty image");
}

TEST(BootMultiboot, EntryOutsideRamIsRefused) {
  std::vector<uint8_t> image(0x1000, 0xF4);
  const uint32_t flags = kMultibootAddressFields;
  const uint32_t load = 2 * kMiB;
  const uint32_t entry = 0x8000000;  // 128 MiB: just past RAM
  const uint32_t header[8] = {kMultibootHeaderMagic, flags, static_cast<uint32_t>(-(kMultibootHeaderMagic + flags)),
                              load + 0x10, load, 0, 0, entry};
  put(image, 0x10, header);
  const auto kernel = write_test_file(test_dir("multiboot_entry_outside") / "kernel.bin", image);
  GuestMemory memory(pc_ram_ranges(128 * kMiB));
  EXPECT_CONTAINS(usage_error_of([&] { (void)load_kernel(memory, {kernel, "", {}, 0}); }),
                  "kernel.bin: multiboot entry point 0x8000000 lies outside guest RAM");
}

TEST(BootMultiboot, HeaderWithoutAddressFieldsInANonElfFile) {
  auto image = multiboot_header(0);
  image.resize(0x100);
  const auto dir = test_dir("multiboot_notelf");
  const auto kernel = write_test_file(dir / "kernel.bin", image);
  GuestMemory memory(pc_ram_ranges(16 * kMiB));
  EXPECT_CONTAINS(usage_error_of([&] { (void)load_kernel(memory, {kernel, "", {}, 0}); }), "the file is not ELF");
}

}  // namespace
}  // namespace iovmm::boot
