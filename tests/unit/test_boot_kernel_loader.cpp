#include <gtest/gtest.h>

#include "boot/kernel_loader.h"
#include "boot/layout.h"
#include "test_boot_image_builder.h"

namespace iovmm::boot {
namespace {

using testing::ElfBuilder;
using testing::test_dir;
using testing::usage_error_of;
using testing::write_test_file;

TEST(BootKernelLoader, MissingFile) {
  GuestMemory memory(pc_ram_ranges(16 * kMiB));
  const std::string path = (test_dir("loader_missing") / "vmlinux").string();
  EXPECT_EQ(usage_error_of([&] { (void)load_kernel(memory, {path, "", {}, 0}); }),
            "kernel " + path + ": No such file or directory");
}

TEST(BootKernelLoader, DirectoryIsNotAKernel) {
  GuestMemory memory(pc_ram_ranges(16 * kMiB));
  const std::string path = test_dir("loader_dir").string();
  EXPECT_CONTAINS(usage_error_of([&] { (void)load_kernel(memory, {path, "", {}, 0}); }), "Is a directory");
}

TEST(BootKernelLoader, EmptyFile) {
  GuestMemory memory(pc_ram_ranges(16 * kMiB));
  const auto path = write_test_file(test_dir("loader_empty") / "vmlinux", {});
  EXPECT_EQ(usage_error_of([&] { (void)load_kernel(memory, {path, "", {}, 0}); }),
            "kernel " + path + ": file is empty");
}

TEST(BootKernelLoader, NeitherElfNorMultiboot) {
  GuestMemory memory(pc_ram_ranges(16 * kMiB));
  const auto path = write_test_file(test_dir("loader_text") / "notes.txt", {'h', 'i', '\n'});
  EXPECT_EQ(usage_error_of([&] { (void)load_kernel(memory, {path, "", {}, 0}); }),
            path + ": not a PVH ELF (no XEN_ELFNOTE_PHYS32_ENTRY note) and no multiboot header");
}

TEST(BootKernelLoader, ElfWithoutPvhNoteOrMultibootHeader) {
  GuestMemory memory(pc_ram_ranges(16 * kMiB));
  const auto image = ElfBuilder(true).entry(0x100000).segment({0x100000, {1, 2, 3}}).build();
  const auto path = write_test_file(test_dir("loader_plain_elf") / "vmlinux", image);
  EXPECT_CONTAINS(usage_error_of([&] { (void)load_kernel(memory, {path, "", {}, 0}); }),
                  "not a PVH ELF (no XEN_ELFNOTE_PHYS32_ENTRY note) and no multiboot header");
}

TEST(BootKernelLoader, TruncatedElfNamesTheProblem) {
  GuestMemory memory(pc_ram_ranges(16 * kMiB));
  auto image = ElfBuilder(true).segment({0x100000, {1}}).note({"Xen", 18, {0, 0, 16, 0}}).build();
  image.resize(30);
  const auto path = write_test_file(test_dir("loader_truncated") / "vmlinux", image);
  EXPECT_EQ(usage_error_of([&] { (void)load_kernel(memory, {path, "", {}, 0}); }),
            path + ": truncated ELF header (30 bytes, a 64-bit header needs 64)");
}

TEST(BootKernelLoader, LinuxBzImageIsNotSupportedYet) {
  GuestMemory memory(pc_ram_ranges(16 * kMiB));
  std::vector<uint8_t> image(0x400, 0);
  std::copy_n("HdrS", 4, image.begin() + 0x202);
  const auto path = write_test_file(test_dir("loader_bzimage") / "bzImage", image);
  EXPECT_CONTAINS(usage_error_of([&] { (void)load_kernel(memory, {path, "", {}, 0}); }),
                  "Linux boot protocol (bzImage) not supported yet");
}

}  // namespace
}  // namespace iovmm::boot
