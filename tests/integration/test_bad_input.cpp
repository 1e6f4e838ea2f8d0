// Bad command lines and bad kernels: iovmm must refuse each with exit status 2 and exactly one line on stderr that
// names the problem, before any guest code runs (so nothing on stdout).
#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
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
// holding a Xen note of type `note_type` (18 = XEN_ELFNOTE_PHYS32_ENTRY, the PVH entry) pointing at `entry`, or at the
// load address when `entry` is 0.
// With `gnu_property_note`, a first PT_NOTE with 8-byte alignment holds a .note.gnu.property-like note (name "GNU",
// 16 bytes of data), as every binary from a CET-aware toolchain has (/bin/true here).
std::string synthesized_elf(uint64_t load_paddr, uint32_t note_type = 18, bool gnu_property_note = false,
                            uint32_t entry = 0) {
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

  XenNote n{{4, 4, note_type}, {'X', 'e', 'n', '\0'}, entry != 0 ? entry : static_cast<uint32_t>(load_paddr)};
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

// ---- inputs that are not regular files (issue 13, items 1 and 2) ----------------------------------------------

// /dev/zero never ends: read to EOF, it grew the VMM by gigabytes. Refused from fstat, before a byte is read.
TEST(BadInput, KernelIsACharacterDevice) {
  IOVMM_REQUIRE_KVM();
  expect_usage_error(run_kernel("/dev/zero"), {"kernel /dev/zero", "a character device", "regular file"});
}

TEST(BadInput, KernelIsASymlinkToDevUrandom) {
  IOVMM_REQUIRE_KVM();
  const std::string link = temp_path("urandom.elf");
  std::remove(link.c_str());
  ASSERT_EQ(::symlink("/dev/urandom", link.c_str()), 0);
  expect_usage_error(run_kernel(link), {link, "a character device"});
}

TEST(BadInput, InitrdIsACharacterDevice) {
  IOVMM_REQUIRE_KVM();
  expect_usage_error(run_kernel(demo(), {"--initrd", "/dev/zero"}), {"initrd /dev/zero", "a character device"});
}

// A FIFO blocked open() forever. The harness's timeout turns the old hang into a failure, not a stuck test.
std::string make_fifo(const std::string& name) {
  const std::string path = temp_path(name);
  std::remove(path.c_str());
  EXPECT_EQ(::mkfifo(path.c_str(), 0600), 0) << path;
  return path;
}

TEST(BadInput, KernelIsAFifo) {
  IOVMM_REQUIRE_KVM();
  const std::string fifo = make_fifo("kernel.fifo");
  expect_usage_error(run_kernel(fifo), {fifo, "a FIFO", "regular file"});
}

TEST(BadInput, InitrdIsAFifo) {
  IOVMM_REQUIRE_KVM();
  const std::string fifo = make_fifo("initrd.fifo");
  expect_usage_error(run_kernel(demo(), {"--initrd", fifo + " args"}), {"initrd " + fifo, "a FIFO"});
}

// A disk image that is a FIFO: open(O_RDONLY) waited for a writer, forever.
TEST(BadInput, DiskImageIsAFifo) {
  IOVMM_REQUIRE_KVM();
  const std::string fifo = make_fifo("disk.fifo");
  expect_usage_error(run_kernel(demo(), {"--device", "virtio-blk,readonly=on,file=" + fifo}),
                     {"disk image " + fifo, "not a regular file or block device"});
}

// Larger than the limit derived from guest RAM: refused from its size (the file is sparse, so reading it would only
// have cost time, but a real one would cost the memory).
TEST(BadInput, InitrdLargerThanGuestRam) {
  IOVMM_REQUIRE_KVM();
  const std::string path = temp_path("huge-initrd");
  write_file(path, "x");
  std::filesystem::resize_file(path, 17ull << 20);
  expect_usage_error(run_kernel(demo(), {"--memory", "16M", "--initrd", path}),
                     {"initrd " + path, "17.0 MiB is more than", "guest RAM"});
  std::filesystem::remove(path);
}

// ---- outputs checked before the run (items 3 and 4) ------------------------------------------------------------

std::vector<std::string> with_stats_json(const std::string& path) {
  return run_kernel(demo(), {"--no-console-input", "--stats-json", path});
}

// Opened without blocking before the guest starts: a FIFO with no reader is refused at once, instead of the VMM
// blocking in open() after the run with SIGINT and SIGTERM blocked.
TEST(BadInput, StatsJsonFifoWithoutReader) {
  IOVMM_REQUIRE_KVM();
  const std::string fifo = make_fifo("stats.fifo");
  expect_usage_error(with_stats_json(fifo), {"--stats-json " + fifo, "a FIFO with no reader"});
}

// A FIFO with a reader is a fine place for statistics (`--stats-json >(jq .)`), but a reader that never reads must
// not make the VMM unkillable: SIGTERM while the statistics write waits for room ends it.
TEST(BadInput, StatsJsonWriteBlockedOnAFullPipeStillEndsOnSigterm) {
  IOVMM_REQUIRE_KVM();
  const std::string fifo = make_fifo("slow-reader.fifo");
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  ASSERT_GT(::fcntl(reader, F_SETPIPE_SZ, 4096), 0);  // smaller than the statistics, so the write must wait
  const auto args = with_stats_json(fifo);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, STDIN_FILENO);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);
    std::vector<char*> argv{const_cast<char*>(IOVMM_BINARY)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(IOVMM_BINARY, argv.data());
    ::_exit(127);
  }
  // The first bytes in the pipe: the guest has finished and the VMM is inside the statistics write.
  pollfd ready{reader, POLLIN, 0};
  const int polled = ::poll(&ready, 1, kTimeoutS * 1000);
  EXPECT_EQ(polled, 1) << "no statistics arrived";
  ::kill(pid, SIGTERM);
  int status = 0;
  bool exited = false;
  for (int i = 0; i < 200 && !exited; ++i) {  // 10 s
    exited = ::waitpid(pid, &status, WNOHANG) == pid;
    if (!exited) ::usleep(50'000);
  }
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  ::close(reader);
  ASSERT_TRUE(exited) << "iovmm ignored SIGTERM while writing its statistics";
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << "status " << status;
}

TEST(BadInput, StatsJsonInAMissingDirectory) {
  IOVMM_REQUIRE_KVM();
  expect_usage_error(with_stats_json("/nonexistent/dir/x.json"),
                     {"--stats-json /nonexistent/dir/x.json", "No such file or directory"});
}

TEST(BadInput, StatsJsonIsADirectory) {
  IOVMM_REQUIRE_KVM();
  const std::string dir = temp_path("");
  expect_usage_error(with_stats_json(dir), {"--stats-json " + dir, "Is a directory"});
}

TEST(BadInput, StatsJsonOnAReadOnlyFileSystem) {
  IOVMM_REQUIRE_KVM();
  // /proc refuses new files whoever runs the test (root may write into read-only directories elsewhere).
  expect_usage_error(with_stats_json("/proc/iovmm-stats.json"), {"--stats-json /proc/iovmm-stats.json"});
}

TEST(BadInput, StatsJsonEmptyPath) {
  IOVMM_REQUIRE_KVM();
  expect_usage_error(with_stats_json(""), {"--stats-json", "empty"});
  // "--stats-json=" is the same empty path; CLI11 alone would take the next argument as the file name.
  expect_usage_error(run_kernel(demo(), {"--stats-json=", "--no-console-input"}), {"--stats-json", "empty"});
}

// A refused command line leaves no empty statistics file behind.
TEST(BadInput, StatsJsonNotLeftBehindWhenTheRunIsRefused) {
  IOVMM_REQUIRE_KVM();
  const std::string path = temp_path("refused.json");
  std::remove(path.c_str());
  expect_usage_error(run_kernel(demo(), {"--stats-json", path, "--device", "nosuchdevice"}), {"nosuchdevice"});
  EXPECT_FALSE(std::filesystem::exists(path));
}

// A write that fails at the end (the disk is full) says why and changes the exit status.
TEST(BadInput, StatsJsonWriteFailureChangesTheStatus) {
  IOVMM_REQUIRE_KVM();
  const auto args = with_stats_json("/dev/full");
  auto r = run_vmm(args, kTimeoutS);
  ASSERT_FALSE(r.timed_out) << describe(args, r);
  EXPECT_EQ(r.status, 4) << describe(args, r);
  EXPECT_NE(r.out.find("demo: done"), std::string::npos) << describe(args, r);
  EXPECT_NE(r.err.find("--stats-json /dev/full: write: No space left on device"), std::string::npos)
      << describe(args, r);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << describe(args, r);
}

TEST(BadInput, BenchJsonCheckedBeforeTheBenchmarkRuns) {
  IOVMM_REQUIRE_KVM();
  for (const char* bench : {"disk", "ide"}) {
    expect_usage_error({"bench", bench, "--rounds", "1", "--no-qemu", "--image-mib", "8", "--image-dir",
                        temp_path(""), "--json", "/nonexistent/x.json"},
                       {"--json /nonexistent/x.json", "No such file or directory"});
  }
  expect_usage_error({"bench", "exits", "--rounds", "1", "--no-qemu", "--json", "/nonexistent/x.json"},
                     {"--json /nonexistent/x.json", "No such file or directory"});
}

// The results are what a benchmark is run for: losing them at the end fails the command, with the reason.
TEST(BadInput, BenchJsonWriteFailureChangesTheStatus) {
  IOVMM_REQUIRE_KVM();
  const std::vector<std::string> args = {"bench", "exits", "--rounds", "1", "--no-qemu", "--modes", "cpl3",
                                         "--no-exit-counts", "--goal", "100000", "--json", "/dev/full"};
  auto r = run_vmm(args, 240);
  ASSERT_FALSE(r.timed_out) << describe(args, r);
  EXPECT_EQ(r.status, 4) << describe(args, r);
  EXPECT_NE(r.err.find("--json /dev/full: write: No space left on device"), std::string::npos) << describe(args, r);
}

// ---- option ranges (items 5 and 9) -----------------------------------------------------------------------------

std::string disk_image() {
  const std::string path = temp_path("disk.img");
  write_file(path, std::string(1 << 20, '\0'));
  return path;
}

TEST(BadInput, QueueSizeOutOfRange) {
  IOVMM_REQUIRE_KVM();
  const std::string image = disk_image();
  for (const char* size : {"65538", "65536", "0", "99999999999999999999999"}) {
    const std::string device = "virtio-blk,file=" + image + ",queue_size=" + size;
    expect_usage_error(run_kernel(demo(), {"--device", device}),
                       {"--device " + device, std::string("queue_size=") + size, "out of range (2 to 32768)"});
  }
  const std::string odd = "virtio-blk,file=" + image + ",queue_size=100";
  expect_usage_error(run_kernel(demo(), {"--device", odd}), {"queue_size=100", "not a power of two"});
  const std::string queues = "virtio-blk,file=" + image + ",queues=65";
  expect_usage_error(run_kernel(demo(), {"--device", queues}), {"queues=65", "out of range (1 to 64)"});
  const std::string word = "virtio-blk,file=" + image + ",queues=many";
  expect_usage_error(run_kernel(demo(), {"--device", word}), {"queues=many", "expected a number from 1 to 64"});
}

TEST(BadInput, IoregionfdNumbersOutOfRange) {
  IOVMM_REQUIRE_KVM();
  expect_usage_error(run_kernel(demo(), {"--device", "pci-testdev,dispatch=ioregionfd,spin=2000000000"}),
                     {"spin=2000000000", "out of range (0 to 1000000)"});
  expect_usage_error(run_kernel(demo(), {"--device", "pci-testdev,dispatch=ioregionfd,timeout=0"}),
                     {"timeout=0", "out of range (1 to 3600000)"});
  expect_usage_error(run_kernel(demo(), {"--device", "pci-testdev,dispatch=ioregionfd,timeout=soon"}),
                     {"timeout=soon", "expected a number from 1 to 3600000"});
}

TEST(BadInput, CpusAndMemoryOutOfRange) {
  expect_usage_error(run_kernel(demo(), {"--cpus", "5000000000"}), {"--cpus 5000000000", "between 1 and"});
  expect_usage_error(run_kernel(demo(), {"--memory", "99999999999999999999"}),
                     {"--memory 99999999999999999999", "out of range"});
}

TEST(BadInput, UnknownBenchmarkIsNamed) {
  expect_usage_error({"bench", "frob"}, {"unknown benchmark 'frob'", "exits", "disk", "ide"});
}

// ---- devices: windows and names (items 6 and 8) ----------------------------------------------------------------

TEST(BadInput, TwoVgaWindowsOverlap) {
  IOVMM_REQUIRE_KVM();
  expect_usage_error(run_kernel(demo(), {"--device", "vga-window", "--device", "vga-window,id=second"}),
                     {"--device vga-window,id=second", "overlaps vga at 0xa0000"});
}

TEST(BadInput, DuplicateOrEmptyId) {
  IOVMM_REQUIRE_KVM();
  expect_usage_error(run_kernel(demo(), {"--device", "pci-testdev,id=t", "--device", "pci-testdev,id=t"}),
                     {"--device pci-testdev,id=t", "id=t is taken"});
  expect_usage_error(run_kernel(demo(), {"--device", "pci-testdev,id="}), {"--device pci-testdev,id=", "empty"});
  expect_usage_error(run_kernel(demo(), {"--device", "pci-testdev,id=com1"}), {"id=com1 is taken"});
  expect_usage_error(run_kernel(demo(), {"--device", "pci-testdev,id=1st"}), {"id=1st", "must start with a letter"});
}

// Without id=, a second device of the same type gets a name of its own, so statistics tell them apart.
TEST(BadInput, DevicesWithoutIdGetDistinctNames) {
  IOVMM_REQUIRE_KVM();
  const std::string stats = temp_path("names.json");
  const auto args = run_kernel(demo(), {"--no-console-input", "--stats-json", stats, "--device", "pci-testdev",
                                        "--device", "pci-testdev"});
  auto r = run_vmm(args, kTimeoutS);
  ASSERT_FALSE(r.timed_out) << describe(args, r);
  EXPECT_EQ(r.status, 1) << describe(args, r);
  const std::string json = read_file(stats);
  EXPECT_NE(json.find("\"device\": \"pci-testdev\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"device\": \"pci-testdev.1\""), std::string::npos) << json;
}

// ---- PVH entry (item 7) ----------------------------------------------------------------------------------------

TEST(BadInput, PvhEntryOutsideRamBelow4GiB) {
  IOVMM_REQUIRE_KVM();
  const std::string path = temp_path("entry-outside.elf");
  write_file(path, synthesized_elf(0x100000, 18, false, 0x8000000));
  expect_usage_error(run_kernel(path, {"--memory", "128M"}), {path, "PVH entry point 0x8000000", "outside guest RAM"});
}

// ---- image locking (item 10) -----------------------------------------------------------------------------------

TEST(BadInput, TwoDevicesOnOneWritableImage) {
  IOVMM_REQUIRE_KVM();
  const std::string image = disk_image();
  expect_usage_error(run_kernel(demo(), {"--device", "virtio-blk,file=" + image, "--device", "ide,file=" + image}),
                     {"--device ide,file=" + image, "cannot take a write lock", "virtio-blk of this VM",
                      "locking=off"});
}

// Another VM (here: the test, holding the same OFD lock a running iovmm or QEMU would) has the image open.
TEST(BadInput, ImageLockedByAnotherProcess) {
  IOVMM_REQUIRE_KVM();
  const std::string image = disk_image();
  const int fd = ::open(image.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  ASSERT_EQ(::fcntl(fd, F_OFD_SETLK, &lock), 0);
  expect_usage_error(run_kernel(demo(), {"--device", "virtio-blk,file=" + image}),
                     {"cannot take a write lock", "another process holds a write lock"});
  expect_usage_error(run_kernel(demo(), {"--device", "virtio-blk,readonly=on,file=" + image}),
                     {"cannot take a shared lock"});
  // A classic POSIX lock says who holds it: the message names the process.
  lock.l_type = F_UNLCK;
  ASSERT_EQ(::fcntl(fd, F_OFD_SETLK, &lock), 0);
  lock.l_type = F_WRLCK;
  ASSERT_EQ(::fcntl(fd, F_SETLK, &lock), 0);
  expect_usage_error(run_kernel(demo(), {"--device", "ide,file=" + image}),
                     {"process " + std::to_string(::getpid()), "holds a write lock"});
  ::close(fd);
}

TEST(BadInput, ReadOnlyImagesShareAndLockingOffOptsOut) {
  IOVMM_REQUIRE_KVM();
  const std::string image = disk_image();
  for (const std::string options : {",readonly=on", ",locking=off"}) {
    const auto args = run_kernel(demo(), {"--no-console-input", "--device", "virtio-blk,file=" + image + options,
                                          "--device", "ide,file=" + image + options});
    auto r = run_vmm(args, kTimeoutS);
    ASSERT_FALSE(r.timed_out) << describe(args, r);
    EXPECT_EQ(r.status, 1) << describe(args, r);
    EXPECT_EQ(r.err, "") << describe(args, r);
  }
}

}  // namespace
}  // namespace iovmm::test
