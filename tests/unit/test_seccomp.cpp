// The VMM's seccomp filters on their own, in forked children (a filter cannot be taken off again): what they let
// through, what they catch and the line that says so, and that docs/SECCOMP.md lists exactly what the code allows.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "machine/seccomp.h"

namespace iovmm::seccomp {
namespace {

struct ChildResult {
  int status = -1;  // exit status, or 128 + signal
  std::string err;
};

// Runs `body` in a forked child with stderr on a pipe; the child ends with _exit(0) if `body` returns.
ChildResult in_child(const std::function<void()>& body) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipe_fds[1], STDERR_FILENO);
    ::close(pipe_fds[0]);
    body();
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  ChildResult result;
  char buffer[512];
  for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;) result.err.append(buffer, static_cast<size_t>(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

class SeccompFilters : public ::testing::Test {
 protected:
  void SetUp() override {
    if (sanitizer_build()) GTEST_SKIP() << "no filters in a sanitizer build";
  }
  Filters filters_;  // compiled here: the children only install them
};

TEST_F(SeccompFilters, ForbiddenCallIsCaughtWithOneLineAndStatus4) {
  const auto r = in_child([&] {
    filters_.install_process();
    make_forbidden_call();
  });
  EXPECT_EQ(r.status, 4) << r.err;
  EXPECT_EQ(r.err, "iovmm: seccomp: the main (event loop) thread made system call 41 (socket), which its allow-list "
                   "does not have (docs/SECCOMP.md); stopping. --seccomp off runs without it\n");
}

TEST_F(SeccompFilters, WithoutAFilterTheSameCallIsHarmless) {
  const auto r = in_child([] { make_forbidden_call(); });
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
}

// A vCPU thread gets the process filter and its own on top: what only the event loop needs is refused there.
TEST_F(SeccompFilters, VcpuFilterIsNarrowerThanTheProcessFilter) {
  const auto r = in_child([&] {
    filters_.install_process();
    ::syscall(SYS_epoll_wait, -1, nullptr, 1, 0);  // allowed: fails with EBADF
    if (filters_.install_vcpu(3) != 0) ::_exit(99);
    ::syscall(SYS_epoll_wait, -1, nullptr, 1, 0);
  });
  EXPECT_EQ(r.status, 4) << r.err;
  EXPECT_NE(r.err.find("vCPU 3 thread made system call 232 (epoll_wait)"), std::string::npos) << r.err;
}

TEST_F(SeccompFilters, AllowedCallsStillWorkUnderBothFilters) {
  const auto r = in_child([&] {
    filters_.install_process();
    if (filters_.install_vcpu(0) != 0) ::_exit(99);
    const char line[] = "still here\n";
    if (::write(STDERR_FILENO, line, sizeof line - 1) != sizeof line - 1) ::_exit(98);
    void* p = ::malloc(1 << 20);  // mmap
    ::free(p);
  });
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "still here\n");
}

// Arguments are part of the list: an ioctl that is not KVM's (TIOCSTI would type into the terminal) is refused,
// a file opened for writing too, and an executable mapping.
TEST_F(SeccompFilters, ArgumentsAreChecked) {
  for (const auto& [what, call] : std::vector<std::pair<std::string, std::function<void()>>>{
           {"16 (ioctl)", [] { ::syscall(SYS_ioctl, 0, 0x5412 /* TIOCSTI */, nullptr); }},
           {"257 (openat)", [] { ::syscall(SYS_openat, AT_FDCWD, "/dev/null", O_WRONLY); }},
           {"9 (mmap)", [] { ::syscall(SYS_mmap, nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                                       -1, 0); }},
       }) {
    const auto r = in_child([&] {
      filters_.install_process();
      call();
    });
    EXPECT_EQ(r.status, 4) << what << ": " << r.err;
    EXPECT_NE(r.err.find("system call " + what), std::string::npos) << r.err;
  }
}

// Every entry the code allows has its row, in its thread's table, in docs/SECCOMP.md: the document is the list.
TEST(SeccompDocumentation, ListsEveryAllowedSystemCall) {
  const auto path = std::filesystem::path(__FILE__).parent_path() / "../../docs/SECCOMP.md";
  std::ifstream file(path);
  ASSERT_TRUE(file.good()) << path;
  const std::string doc{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
  const auto vcpu_start = doc.find("## vCPU threads");
  const auto process_start = doc.find("## The rest of the process");
  ASSERT_NE(vcpu_start, std::string::npos);
  ASSERT_NE(process_start, std::string::npos);
  ASSERT_LT(vcpu_start, process_start);
  const std::string vcpu_section = doc.substr(vcpu_start, process_start - vcpu_start);
  const std::string process_section = doc.substr(process_start);
  const auto vcpu = allowed_names(Thread::vcpu);
  for (auto name : vcpu) {
    EXPECT_NE(vcpu_section.find("| `" + std::string(name) + "`"), std::string::npos) << name;
  }
  for (auto name : allowed_names(Thread::process)) {
    if (std::find(vcpu.begin(), vcpu.end(), name) != vcpu.end()) continue;
    EXPECT_NE(process_section.find("| `" + std::string(name) + "`"), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace iovmm::seccomp
