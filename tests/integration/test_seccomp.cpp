// The VMM's seccomp filters in a real run: on by default, a forbidden call on a vCPU thread or on the main thread
// stops the VM with status 4 and one line naming the call, --seccomp off runs without them. (The rest of the
// integration suite is the test that normal runs stay inside the lists.)
#include <gtest/gtest.h>

#include <algorithm>

#include "../support/kvm_required.h"
#include "support/run_vmm.h"

namespace iovmm::test {
namespace {

constexpr int kTimeoutS = 30;

bool sanitizer_build() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

std::vector<std::string> demo(std::vector<std::string> extra) {
  std::vector<std::string> args{"run", "--kernel", guest_path("demo.elf"), "--no-console-input", "--cpus", "2"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::string describe(const RunResult& r) {
  return "status " + std::to_string(r.status) + "\n--- stdout ---\n" + r.out + "--- stderr ---\n" + r.err;
}

TEST(Seccomp, ForbiddenCallOnAVcpuThreadStopsTheVmWithOneLine) {
  IOVMM_REQUIRE_KVM();
  if (sanitizer_build()) GTEST_SKIP() << "no filters in a sanitizer build";
  auto r = run_vmm(demo({"--seccomp-test-violation", "vcpu"}), kTimeoutS);
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 4) << describe(r);
  EXPECT_EQ(r.err, "iovmm: seccomp: vCPU 0 thread made system call 41 (socket), which its allow-list does not have "
                   "(docs/SECCOMP.md); stopping. --seccomp off runs without it\n")
      << describe(r);
  EXPECT_EQ(r.out.find("demo: done"), std::string::npos) << "the guest ran on: " << describe(r);
}

TEST(Seccomp, ForbiddenCallOnTheMainThreadStopsTheVmWithOneLine) {
  IOVMM_REQUIRE_KVM();
  if (sanitizer_build()) GTEST_SKIP() << "no filters in a sanitizer build";
  auto r = run_vmm(demo({"--seccomp-test-violation", "main"}), kTimeoutS);
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 4) << describe(r);
  EXPECT_NE(r.err.find("iovmm: seccomp: the main (event loop) thread made system call 41 (socket)"),
            std::string::npos)
      << describe(r);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << describe(r);
}

TEST(Seccomp, OffRunsWithoutTheFilters) {
  IOVMM_REQUIRE_KVM();
  for (const char* thread : {"vcpu", "main"}) {
    auto r = run_vmm(demo({"--seccomp", "off", "--seccomp-test-violation", thread}), kTimeoutS);
    ASSERT_FALSE(r.timed_out) << describe(r);
    EXPECT_EQ(r.status, 1) << describe(r);  // the demo's own isa-debug-exit
    EXPECT_NE(r.out.find("demo: done"), std::string::npos) << describe(r);
    EXPECT_EQ(r.err, "") << describe(r);
  }
}

TEST(Seccomp, BadModeIsAUsageError) {
  auto r = run_vmm(demo({"--seccomp", "maybe"}), kTimeoutS);
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, 2) << describe(r);
  EXPECT_NE(r.err.find("--seccomp"), std::string::npos) << describe(r);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << describe(r);
}

}  // namespace
}  // namespace iovmm::test
