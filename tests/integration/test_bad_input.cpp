// Bad command lines and bad kernels: iovmm must refuse each with exit status 2 and exactly one line on stderr that
// names the problem, before any guest code runs (so nothing on stdout).
#include <elf.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

#include "../support/kvm_required.h"
#include "support/run_vmm.h"

namespace iovmm::test {
namespace {

constexpr int kExitUsage = 2;
constexpr int kTimeoutS = 30;

std::string demo() { return guest_path("demo.elf"); }

void write_file(const std::string& path, const std::string& contents) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  ASSERT_TRUE(file.good()) << path;
}

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

std::string describe(const std::vector<std::string>& args, const RunResult& r) {
  std::string cmd = "iovmm";
  for (const auto& a : args) cmd += " " + (a.size() > 80 ? a.substr(0, 40) + "...(" + std::to_string(a.size()) + " bytes)" : a);
  return cmd + "\nstatus " + std::to_string(r.status) + (r.timed_out ? " (timed out)" : "") +
         "\n--- stdout ---\n" + r.out + "--- stderr ---\n" + r.err;
}

// Runs iovmm with `args` and checks: status 2, no output, one line on stderr containing every one of `mentions`.
void expect_usage_error(const std::vector<std::string>& args, const std::vector<std::string>& mentions) {
  auto r = run_vmm(args, kTimeoutS);
  ASSERT_FALSE(r.timed_out) << describe(args, r);
  EXPECT_EQ(r.status, kExitUsage) << describe(args, r);
  EXPECT_TRUE(r.out.empty()) << describe(args, r);
  EXPECT_FALSE(r.err.empty()) << describe(args, r);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << describe(args, r);
  EXPECT_EQ(r.err.back(), '\n') << describe(args, r);
  EXPECT_EQ(r.err.rfind("iovmm: ", 0), 0u) << describe(args, r);
  for (const auto& m : mentions) EXPECT_NE(r.err.find(m), std::string::npos) << "want '" << m << "'\n" << describe(args, r);
}

std::vector<std::string> run_kernel(const std::string& kernel, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"run", "--kernel", kernel};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// A minimal x86-64 ELF executable: one PT_LOAD of 16 bytes (hlt) at physical address `load_paddr` and a PT_NOTE
// holding a Xen note of type `note_type` (18 = XEN_ELFNOTE_PHYS32_ENTRY, the PVH entry) pointing at the load address.
// With `gnu_property_note`, a first PT_NOTE with 8-byte alignment holds a .note.gnu.property-like note (name "GNU",
// 16 bytes of data), as every binary from a CET-aware toolchain has (/bin/true here).
std::string synthesized_elf(uint64_t load_paddr, uint32_t note_type = 18, bool gnu_property_note = false) {
  struct XenNote {
    Elf64_Nhdr header;
    char name[4];
    uint32_t entry;
  };
  struct GnuPropertyNote {  // with 8-byte alignment: header (12) + name (4) = 16, then the 8-aligned descriptor
    Elf64_Nhdr header;
    char name[4];
    uint32_t desc[4];
  };
  static_assert(sizeof(GnuPropertyNote) == 32);
  const size_t phnum = gnu_property_note ? 3 : 2;
  const size_t phdr_offset = sizeof(Elf64_Ehdr);
  const size_t gnu_offset = phdr_offset + phnum * sizeof(Elf64_Phdr);  // 64 + n * 56: 8-aligned
  const size_t xen_offset = gnu_offset + (gnu_property_note ? sizeof(GnuPropertyNote) : 0);
  const size_t code_offset = xen_offset + sizeof(XenNote);
  std::string image(code_offset + 16, '\0');

  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_EXEC;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_entry = load_paddr;
  eh.e_phoff = phdr_offset;
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = static_cast<uint16_t>(phnum);
  std::memcpy(image.data(), &eh, sizeof eh);

  std::vector<Elf64_Phdr> phdrs;
  Elf64_Phdr load{};
  load.p_type = PT_LOAD;
  load.p_flags = PF_R | PF_X;
  load.p_offset = code_offset;
  load.p_vaddr = load_paddr;
  load.p_paddr = load_paddr;
  load.p_filesz = 16;
  load.p_memsz = 16;
  load.p_align = 16;
  phdrs.push_back(load);
  if (gnu_property_note) {
    Elf64_Phdr gnu{};
    gnu.p_type = PT_NOTE;
    gnu.p_flags = PF_R;
    gnu.p_offset = gnu_offset;
    gnu.p_filesz = sizeof(GnuPropertyNote);
    gnu.p_align = 8;
    phdrs.push_back(gnu);
    GnuPropertyNote n{{4, 16, 5 /* NT_GNU_PROPERTY_TYPE_0 */}, {'G', 'N', 'U', '\0'}, {0xc0008002, 4, 1, 0}};
    std::memcpy(image.data() + gnu_offset, &n, sizeof n);
  }
  Elf64_Phdr note{};
  note.p_type = PT_NOTE;
  note.p_flags = PF_R;
  note.p_offset = xen_offset;
  note.p_filesz = sizeof(XenNote);
  note.p_align = 4;
  phdrs.push_back(note);
  std::memcpy(image.data() + phdr_offset, phdrs.data(), phdrs.size() * sizeof(Elf64_Phdr));

  XenNote n{{4, 4, note_type}, {'X', 'e', 'n', '\0'}, static_cast<uint32_t>(load_paddr)};
  std::memcpy(image.data() + xen_offset, &n, sizeof n);
  std::memset(image.data() + code_offset, 0xF4, 16);  // hlt (IF=0 at PVH entry: halted forever, status 8)
  return image;
}

// ---- command line ---------------------------------------------------------------------------------------------

TEST(BadInput, NoSubcommand) {
  auto r = run_vmm({}, kTimeoutS);
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.status, kExitUsage) << describe({}, r);
  EXPECT_TRUE(r.out.empty()) << describe({}, r);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << describe({}, r);
  EXPECT_NE(r.err.find("subcommand"), std::string::npos) << describe({}, r);
}

TEST(BadInput, RunHelpListsTheOptions) {
  auto r = run_vmm({"run", "--help"}, kTimeoutS);
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.status, 0) << describe({"run", "--help"}, r);
  for (const char* option : {"--kernel", "--append", "--initrd", "--cpus", "--memory", "--device", "--stats",
                             "--stats-json"}) {
    EXPECT_NE(r.out.find(option), std::string::npos) << option << "\n" << describe({"run", "--help"}, r);
  }
}

TEST(BadInput, UnknownOption) { expect_usage_error(run_kernel(demo(), {"--frobnicate"}), {"--frobnicate"}); }

TEST(BadInput, KernelOptionMissing) { expect_usage_error({"run"}, {"--kernel"}); }

TEST(BadInput, MemoryNotASize) { expect_usage_error(run_kernel(demo(), {"--memory", "banana"}), {"--memory", "banana"}); }

TEST(BadInput, MemoryTooSmall) {
  IOVMM_REQUIRE_KVM();
  expect_usage_error(run_kernel(demo(), {"--memory", "1M"}), {"--memory", "too small"});
}

TEST(BadInput, ZeroCpus) {
  IOVMM_REQUIRE_KVM();
  expect_usage_error(run_kernel(demo(), {"--cpus", "0"}), {"--cpus 0"});
}

TEST(BadInput, TooManyCpus) {
  IOVMM_REQUIRE_KVM();
  expect_usage_error(run_kernel(demo(), {"--cpus", "100000"}), {"--cpus 100000"});
}

TEST(BadInput, NegativeCpus) { expect_usage_error(run_kernel(demo(), {"--cpus", "-1"}), {"--cpus"}); }

TEST(BadInput, UnknownDevice) {
  IOVMM_REQUIRE_KVM();
  expect_usage_error(run_kernel(demo(), {"--device", "nosuchdevice"}), {"nosuchdevice"});
}

// ---- kernels --------------------------------------------------------------------------------------------------

TEST(BadInput, MissingKernelFile) {
  IOVMM_REQUIRE_KVM();
  std::string path = temp_path("no-such-kernel.elf");
  std::remove(path.c_str());
  expect_usage_error(run_kernel(path), {path, "No such file"});
}

TEST(BadInput, KernelIsADirectory) {
  IOVMM_REQUIRE_KVM();
  std::string dir = temp_path("");
  expect_usage_error(run_kernel(dir), {"directory"});
}

TEST(BadInput, EmptyKernelFile) {
  IOVMM_REQUIRE_KVM();
  std::string path = temp_path("empty-kernel");
  write_file(path, "");
  expect_usage_error(run_kernel(path), {path, "empty"});
}

TEST(BadInput, TruncatedElf) {
  IOVMM_REQUIRE_KVM();
  std::string path = temp_path("truncated.elf");
  std::string elf = read_file(demo());
  ASSERT_GE(elf.size(), 30u);
  write_file(path, elf.substr(0, 30));
  expect_usage_error(run_kernel(path), {path, "truncated"});
}

TEST(BadInput, ElfWithProgramHeadersPastTheEnd) {
  IOVMM_REQUIRE_KVM();
  std::string path = temp_path("truncated-phdrs.elf");
  std::string elf = read_file(demo());
  write_file(path, elf.substr(0, sizeof(Elf64_Ehdr) + 10));
  expect_usage_error(run_kernel(path), {path, "program header"});
}

TEST(BadInput, NotAnElf) {
  IOVMM_REQUIRE_KVM();
  std::string path = temp_path("kernel.txt");
  write_file(path, "this is not a kernel\njust some text\n");
  expect_usage_error(run_kernel(path), {path});
}

TEST(BadInput, ElfWithoutPvhNoteOrMultibootHeader) {
  IOVMM_REQUIRE_KVM();
  expect_usage_error(run_kernel("/bin/true"), {"/bin/true", "PVH", "multiboot"});
}

TEST(BadInput, ElfWithANoteButNoPvhNote) {
  IOVMM_REQUIRE_KVM();
  std::string path = temp_path("no-pvh-note.elf");
  write_file(path, synthesized_elf(0x100000, /*note_type=*/17));
  expect_usage_error(run_kernel(path), {path, "PVH", "multiboot"});
}

// Not bad input: a PVH ELF that also carries an 8-byte-aligned GNU property note (as binaries from current
// toolchains do) must boot. Its hlt with IF=0 ends the run with status 8.
TEST(BadInput, PvhElfWithEightByteAlignedNoteBoots) {
  IOVMM_REQUIRE_KVM();
  std::string path = temp_path("gnu-property-note.elf");
  write_file(path, synthesized_elf(0x100000, 18, /*gnu_property_note=*/true));
  auto args = run_kernel(path, {"--memory", "16M"});
  auto r = run_vmm(args, kTimeoutS);
  ASSERT_FALSE(r.timed_out) << describe(args, r);
  EXPECT_EQ(r.status, 8) << describe(args, r);
}

TEST(BadInput, SegmentAbove4GiBOutsideGuestRam) {
  IOVMM_REQUIRE_KVM();
  std::string path = temp_path("load-above-4g.elf");
  write_file(path, synthesized_elf(0x100000000ull));
  expect_usage_error(run_kernel(path, {"--memory", "16M"}), {path, "outside guest RAM"});
}

TEST(BadInput, SegmentPastTheEndOfGuestRam) {
  IOVMM_REQUIRE_KVM();
  std::string path = temp_path("load-at-32m.elf");
  write_file(path, synthesized_elf(32ull << 20));
  expect_usage_error(run_kernel(path, {"--memory", "16M"}), {path, "outside guest RAM"});
}

TEST(BadInput, SynthesizedElfLoadsWhenItFits) {
  // Control for the two tests above: the same file at 1 MiB boots (hlt with IF=0 -> halted forever, status 8).
  IOVMM_REQUIRE_KVM();
  std::string path = temp_path("load-at-1m.elf");
  write_file(path, synthesized_elf(0x100000));
  auto args = run_kernel(path, {"--memory", "16M"});
  auto r = run_vmm(args, kTimeoutS);
  ASSERT_FALSE(r.timed_out) << describe(args, r);
  EXPECT_EQ(r.status, 8) << describe(args, r);
}

TEST(BadInput, MissingInitrd) {
  IOVMM_REQUIRE_KVM();
  std::string path = temp_path("no-such-initrd");
  std::remove(path.c_str());
  expect_usage_error(run_kernel(demo(), {"--initrd", path}), {"initrd", path});
}

TEST(BadInput, CommandLineTooLong) {
  IOVMM_REQUIRE_KVM();
  // The command line area is 64 KiB including the terminating NUL (src/boot/layout.h kCommandLineArea).
  expect_usage_error(run_kernel(demo(), {"--append", std::string(64 * 1024, 'x')}), {"65536", "65535"});
}

TEST(BadInput, CommandLineAtTheLimitBoots) {
  IOVMM_REQUIRE_KVM();
  // misbehave.elf rather than demo.elf: the demo would print all 64 KiB through the (slow, emulated) serial port.
  std::string append = "mode=crossing ";
  append += std::string(64 * 1024 - 1 - append.size(), 'x');
  std::vector<std::string> args = run_kernel(guest_path("misbehave.elf"), {"--append", append});
  auto r = run_vmm(args, kTimeoutS);
  ASSERT_FALSE(r.timed_out) << describe(args, r);
  EXPECT_EQ(r.status, 1) << describe(args, r);
  EXPECT_NE(r.out.find("misbehave: crossing reads all-ones ok"), std::string::npos) << describe(args, r);
}

}  // namespace
}  // namespace iovmm::test
