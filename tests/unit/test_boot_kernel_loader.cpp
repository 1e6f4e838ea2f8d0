#include <gtest/gtest.h>

#include <filesystem>

#include "boot/kernel_loader.h"
#include "boot/image.h"
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

// /dev/zero would be read until memory runs out: anything but a regular file is refused before a byte is read.
TEST(BootKernelLoader, CharacterDeviceIsRefusedUnread) {
  GuestMemory memory(pc_ram_ranges(16 * kMiB));
  EXPECT_EQ(usage_error_of([&] { (void)load_kernel(memory, {"/dev/zero", "", {}, 0}); }),
            "kernel /dev/zero: a character device; expected a regular file");
  const auto link = test_dir("loader_symlink") / "vmlinux";
  std::filesystem::create_symlink("/dev/urandom", link);
  EXPECT_EQ(usage_error_of([&] { (void)load_kernel(memory, {link.string(), "", {}, 0}); }),
            "kernel " + link.string() + ": a character device; expected a regular file");
  const auto kernel = write_test_file(test_dir("loader_zero_initrd") / "vmlinux",
                                      ElfBuilder(true).segment({0x100000, {0xF4}}).note({"Xen", 18, {0, 0, 16, 0}})
                                          .build());
  EXPECT_EQ(usage_error_of([&] { (void)load_kernel(memory, {kernel, "", {"/dev/zero"}, 0}); }),
            "initrd /dev/zero: a character device; expected a regular file");
}

// A (sparse) file larger than RAM plus the slack for what an ELF does not load is refused from its size, unread.
TEST(BootKernelLoader, KernelLargerThanTheLimitIsRefusedUnread) {
  GuestMemory memory(pc_ram_ranges(16 * kMiB));
  const auto path = test_dir("loader_huge") / "vmlinux";
  write_test_file(path, {0x7f, 'E', 'L', 'F'});
  std::filesystem::resize_file(path, 16 * kMiB + kKernelFileSlack + 1);
  const auto message = usage_error_of([&] { (void)load_kernel(memory, {path.string(), "", {}, 0}); });
  EXPECT_EQ(message, "kernel " + path.string() + ": 1040.0 MiB is more than 1039.9 MiB, the most it can be: guest RAM "
                     "(15.9 MiB) plus 1 GiB for what an ELF does not load");
  std::filesystem::resize_file(path, 0);
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
