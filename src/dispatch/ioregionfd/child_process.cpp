#include "dispatch/ioregionfd/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/core.h>
#include <thread>

#include "common/error.h"
#include "common/fd.h"

namespace iovmm::dispatch::ioregionfd {
namespace {

std::string describe_status(pid_t pid, const siginfo_t& info) {
  if (info.si_code == CLD_EXITED) return fmt::format("pid {} exited with status {}", pid, info.si_status);
  return fmt::format("pid {} killed by signal {} ({})", pid, info.si_status, strsignal(info.si_status));
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv, std::span<const int> inherit) {
  if (argv.empty()) throw Error("ioregionfd: no program to start");
  // Everything the child touches between fork and exec is prepared here: after fork only async-signal-safe calls.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<int> keep(inherit.begin(), inherit.end());

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw_errno("ioregionfd: pipe2 for starting " + argv[0]);
  Fd exec_error_read(pipe_fds[0]);
  Fd exec_error_write(pipe_fds[1]);

  // No VMM signal handler (the vCPU kick) may run in the child before exec replaces it.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    for (int fd : keep) {
      if (::fcntl(fd, F_SETFD, 0) != 0) {
        int e = errno;
        (void)!::write(exec_error_write.get(), &e, sizeof e);
        ::_exit(127);
      }
    }
    // Dies with the VMM, so a crashed VMM leaves no device process behind; checks for a parent that died already.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(args[0], args.data());
    int e = errno;
    (void)!::write(exec_error_write.get(), &e, sizeof e);
    ::_exit(127);
  }
  int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) throw_errno("ioregionfd: fork for " + argv[0], fork_errno);
  pid_ = pid;

  exec_error_write.reset();
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(exec_error_read.get(), &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {  // the pipe closed on exec only if exec succeeded
    ::waitpid(pid_, nullptr, 0);
    reaped_ = true;
    throw_errno(fmt::format("ioregionfd: cannot run {}", argv[0]), child_errno);
  }
}

ChildProcess::~ChildProcess() { reap(std::chrono::milliseconds(2000)); }

bool ChildProcess::ended_locked(std::chrono::milliseconds wait, std::string& how) {
  if (reaped_) {
    how = how_ended_;
    return true;
  }
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid_) {
      how = describe_status(pid_, info);
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

std::string ChildProcess::describe(std::chrono::milliseconds wait) {
  std::lock_guard lock(mutex_);
  std::string how;
  if (ended_locked(wait, how)) return how;
  return fmt::format("pid {} still running", pid_);
}

std::string ChildProcess::reap(std::chrono::milliseconds grace) {
  std::lock_guard lock(mutex_);
  if (reaped_) return how_ended_;
  std::string how;
  if (!ended_locked(grace, how)) ::kill(pid_, SIGKILL);
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED) != 0 && errno == EINTR) {
  }
  how_ended_ = describe_status(pid_, info);
  reaped_ = true;
  return how_ended_;
}

}  // namespace iovmm::dispatch::ioregionfd
