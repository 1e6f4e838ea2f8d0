// The same guest binaries under QEMU and iovmm must report the same platform: a test kernel written for QEMU's
// -kernel runs unmodified on iovmm. Lines that legitimately differ are named and compared by rule, not skipped.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "../support/kvm_required.h"
#include "support/run_vmm.h"

namespace iovmm::test {
namespace {

constexpr const char* kQemu = "/usr/bin/qemu-system-x86_64";

#define IOVMM_REQUIRE_QEMU()                                                                           \
  do {                                                                                                 \
    if (::access(kQemu, X_OK) != 0) {                                                                  \
      const char* ci = std::getenv("CI");                                                              \
      if (ci && std::strcmp(ci, "true") == 0) FAIL() << kQemu << " is missing (scripts/setup installs it)"; \
      GTEST_SKIP() << kQemu << " is missing";                                                          \
    }                                                                                                  \
  } while (0)

RunResult run_qemu(const std::string& kernel, const std::string& append, int cpus,
                   const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"-M", "pc", "-enable-kvm", "-cpu", "host,-arch-capabilities", "-smp",
                                   std::to_string(cpus), "-m", "128", "-nodefaults", "-nographic", "-serial",
                                   "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", kernel,
                                   "-append", append};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_program(kQemu, args, 240);
}

// SeaBIOS prints a banner before the kernel starts, without a final newline: keep only the guest's report.
std::vector<std::string> report(const std::string& out, const std::string& first_line_prefix) {
  size_t start = out.find(first_line_prefix);
  std::vector<std::string> lines;
  if (start == std::string::npos) return lines;
  std::string line;
  for (size_t i = start; i < out.size(); ++i) {
    if (out[i] == '\n') {
      lines.push_back(line);
      line.clear();
    } else if (out[i] != '\r') {
      line += out[i];
    }
  }
  return lines;
}

std::vector<std::string> with_prefix(const std::vector<std::string>& lines, const std::string& prefix) {
  std::vector<std::string> out;
  std::copy_if(lines.begin(), lines.end(), std::back_inserter(out),
               [&](const std::string& l) { return l.rfind(prefix, 0) == 0; });
  return out;
}

TEST(QemuSideBySide, DemoGuestReportsTheSameFindings) {
  IOVMM_REQUIRE_KVM();
  IOVMM_REQUIRE_QEMU();
  const std::string kernel = guest_path("demo.elf");
  const std::string append = "side by side";
  auto qemu = run_qemu(kernel, append, 2);
  auto ours = run_vmm({"run", "--kernel", kernel, "--append", append, "--cpus", "2", "--memory", "128M"});
  ASSERT_FALSE(qemu.timed_out) << qemu.out << qemu.err;
  ASSERT_EQ(qemu.status, 1) << qemu.out << qemu.err;
  ASSERT_EQ(ours.status, 1) << ours.out << ours.err;
  auto q = report(qemu.out, "demo: start");
  auto o = report(ours.out, "demo: start");
  ASSERT_FALSE(q.empty()) << qemu.out;

  // Identical, line for line: how the guest was booted, fw_cfg, the MADT and FADT, the PM timer, SMP bring-up,
  // CPL3 execution and the end.
  for (const char* prefix : {"demo:", "boot:", "fwcfg:", "acpi: madt", "acpi: fadt", "pmtimer: ok", "smp:", "cpl3:"}) {
    EXPECT_EQ(with_prefix(o, prefix), with_prefix(q, prefix)) << "lines starting '" << prefix << "'";
  }
  // ACPI: both find a valid RSDP, FADT and MADT; QEMU's SeaBIOS hands out an ACPI 1.0 RSDP (no XSDT), ours is
  // ACPI 2.0+ with both.
  EXPECT_EQ(with_prefix(q, "acpi: rsdp=ok xsdt=none fadt=ok madt=ok").size(), 1u);
  EXPECT_EQ(with_prefix(o, "acpi: rsdp=ok xsdt=ok fadt=ok madt=ok").size(), 1u);
  // PCI: every function iovmm shows, QEMU shows at the same address with the same IDs and class; QEMU's -M pc has
  // PIIX3/PIIX4 functions that iovmm does not model (yet).
  for (const auto& line : with_prefix(o, "pci: ")) {
    EXPECT_NE(std::find(q.begin(), q.end(), line), q.end()) << line << " is not in QEMU's report";
  }
  // Memory map: both report RAM close to the 128 MiB asked for (QEMU keeps a little more for its firmware).
  EXPECT_EQ(with_prefix(o, "memmap:").size(), 1u);
  EXPECT_EQ(with_prefix(q, "memmap:").size(), 1u);
}

TEST(QemuSideBySide, MultibootGuestSeesTheSameBootInformation) {
  IOVMM_REQUIRE_KVM();
  IOVMM_REQUIRE_QEMU();
  const std::string kernel = guest_path("multiboot-demo.elf");
  const std::string module = temp_path("multiboot-module.bin");
  {
    std::ofstream file(module, std::ios::binary);
    file << "ABCDEFGHIJKLMNOP";
  }
  auto qemu = run_qemu(kernel, "x y", 1, {"-initrd", module + " modarg1 modarg2"});
  auto ours = run_vmm({"run", "--kernel", kernel, "--append", "x y", "--initrd", module + " modarg1 modarg2"});
  ASSERT_EQ(qemu.status, 1) << qemu.out << qemu.err;
  ASSERT_EQ(ours.status, 1) << ours.out << ours.err;
  auto q = report(qemu.out, "mb: start");
  auto o = report(ours.out, "mb: start");
  for (const char* prefix : {"mb: start", "mb: mods=", "mb: mod 0", "mb: done"}) {
    EXPECT_EQ(with_prefix(o, prefix), with_prefix(q, prefix)) << "lines starting '" << prefix << "'";
  }
  // The command line's first token is the kernel as named on the command line: QEMU and iovmm name it the same
  // way here because both were given the same path.
  ASSERT_EQ(with_prefix(o, "mb: cmdline=").size(), 1u);
  EXPECT_EQ(with_prefix(o, "mb: cmdline="), with_prefix(q, "mb: cmdline="));
  EXPECT_EQ(with_prefix(o, "mb: magic=0x2badb002").size(), 1u);
  EXPECT_EQ(with_prefix(o, "mb: mem_lower=639 ").size(), 1u);
  EXPECT_EQ(with_prefix(q, "mb: mem_lower=639 ").size(), 1u);
}

}  // namespace
}  // namespace iovmm::test
