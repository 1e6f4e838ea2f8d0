#include "machine/seccomp.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fmt/core.h>
#include <mutex>
#include <optional>

#include "common/error.h"
#include "common/fd.h"
#include "kvm/uapi.h"
#include "machine/exit_status.h"

namespace iovmm::seccomp {
namespace {

// One allow-list entry: a system call, optionally only when one argument matches (masked).
struct Rule {
  const char* name;
  int number;
  std::optional<scmp_arg_cmp> only_if = std::nullopt;
  uint32_t action = SCMP_ACT_ALLOW;
};

#define IOVMM_RULE(name, ...) Rule { #name, SCMP_SYS(name), __VA_ARGS__ }

// KVM's ioctls all have type 0xAE (KVMIO) in bits 8-15 of the request: the filter allows those and nothing else of
// ioctl's thousands (TIOCSTI, which pushes input into a terminal, among them).
constexpr scmp_datum_t kIoctlTypeMask = 0xFF00;
constexpr scmp_datum_t kKvmIoctlType = KVMIO << 8;
constexpr scmp_datum_t kNoExec = PROT_EXEC;

// vCPU threads, from their first KVM_RUN to their exit. Why each is here: docs/SECCOMP.md.
const std::vector<Rule>& vcpu_rules() {
  static const std::vector<Rule> rules = {
      IOVMM_RULE(ioctl, SCMP_A1(SCMP_CMP_MASKED_EQ, kIoctlTypeMask, kKvmIoctlType)),
      IOVMM_RULE(read),
      IOVMM_RULE(write),
      IOVMM_RULE(pread64),
      IOVMM_RULE(pwrite64),
      IOVMM_RULE(fdatasync),
      IOVMM_RULE(fallocate),
      IOVMM_RULE(io_uring_enter),
      IOVMM_RULE(eventfd2),
      IOVMM_RULE(epoll_ctl),
      IOVMM_RULE(close),
      IOVMM_RULE(sendto),
      IOVMM_RULE(recvfrom),
      IOVMM_RULE(ppoll),
      IOVMM_RULE(poll),
      IOVMM_RULE(sched_yield),
      IOVMM_RULE(shutdown),
      IOVMM_RULE(waitid, SCMP_A3(SCMP_CMP_MASKED_EQ, WNOHANG, WNOHANG)),
      IOVMM_RULE(futex),
      IOVMM_RULE(getpid),
      IOVMM_RULE(gettid),
      IOVMM_RULE(tgkill),
      IOVMM_RULE(rt_sigprocmask),
      IOVMM_RULE(rt_sigreturn),
      IOVMM_RULE(restart_syscall),
      IOVMM_RULE(mmap, SCMP_A2(SCMP_CMP_MASKED_EQ, kNoExec, 0)),
      IOVMM_RULE(mprotect, SCMP_A2(SCMP_CMP_MASKED_EQ, kNoExec, 0)),
      IOVMM_RULE(munmap),
      IOVMM_RULE(mremap),
      IOVMM_RULE(madvise),
      IOVMM_RULE(brk),
      IOVMM_RULE(clock_gettime),
      IOVMM_RULE(clock_nanosleep),
      IOVMM_RULE(nanosleep),
      IOVMM_RULE(exit),
      IOVMM_RULE(exit_group),
  };
  return rules;
}

// Everything else in the process once the guest runs: the main thread (the event loop, then the shutdown), the
// ioregionfd device-server threads, and the vCPU threads' first steps before their own filter. A superset of the
// vCPU list: the vCPU threads inherit this filter and theirs comes on top, so they get exactly theirs.
const std::vector<Rule>& process_rules() {
  static const std::vector<Rule> rules = [] {
    std::vector<Rule> all = vcpu_rules();
    const std::vector<Rule> more = {
        IOVMM_RULE(epoll_wait),
        IOVMM_RULE(epoll_pwait),
        IOVMM_RULE(timerfd_settime),
        IOVMM_RULE(ioctl, SCMP_A1(SCMP_CMP_EQ, TCGETS, 0)),
        IOVMM_RULE(ioctl, SCMP_A1(SCMP_CMP_EQ, TCSETS, 0)),
        IOVMM_RULE(openat, SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC, O_RDONLY)),
        IOVMM_RULE(newfstatat),
        IOVMM_RULE(fstat),
        IOVMM_RULE(lseek),
        IOVMM_RULE(ftruncate),
        IOVMM_RULE(wait4),
        IOVMM_RULE(waitid),
        IOVMM_RULE(kill),
        IOVMM_RULE(clone, SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)),
        // clone3's flags are in memory, out of a filter's reach: ENOSYS makes glibc fall back to clone.
        IOVMM_RULE(clone3, std::nullopt, SCMP_ACT_ERRNO(ENOSYS)),
        // glibc's first pthread_create installs the handler of its internal signals (SIGCANCEL, SIGSETXID); the
        // program's own handlers are all in before the filter.
        IOVMM_RULE(rt_sigaction, SCMP_A0(SCMP_CMP_EQ, __SIGRTMIN, 0)),
        IOVMM_RULE(rt_sigaction, SCMP_A0(SCMP_CMP_EQ, __SIGRTMIN + 1, 0)),
        IOVMM_RULE(set_robust_list),
        IOVMM_RULE(rseq),
        IOVMM_RULE(seccomp, SCMP_A0(SCMP_CMP_EQ, SECCOMP_SET_MODE_FILTER, 0)),
    };
    all.insert(all.end(), more.begin(), more.end());
    return all;
  }();
  return rules;
}

#undef IOVMM_RULE

std::vector<sock_filter> compile(const std::vector<Rule>& rules, std::string_view what) {
  scmp_filter_ctx context = seccomp_init(SCMP_ACT_TRAP);
  if (!context) throw Error(fmt::format("seccomp: {} filter: seccomp_init failed", what));
  struct Release {
    scmp_filter_ctx context;
    ~Release() { seccomp_release(context); }
  } release{context};
  // A system call of another ABI (int 0x80, x32) is never ours: no message, just the end.
  if (int err = seccomp_attr_set(context, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS); err < 0) {
    throw_errno(fmt::format("seccomp: {} filter: bad-architecture action", what), -err);
  }
  // A binary tree over the system call numbers instead of one comparison after another: every KVM_RUN passes
  // through the filter, on the exit path this project measures.
  if (int err = seccomp_attr_set(context, SCMP_FLTATR_CTL_OPTIMIZE, 2); err < 0) {
    throw_errno(fmt::format("seccomp: {} filter: optimisation level", what), -err);
  }
  for (const Rule& rule : rules) {
    const int err = rule.only_if ? seccomp_rule_add_array(context, rule.action, rule.number, 1, &*rule.only_if)
                                 : seccomp_rule_add_array(context, rule.action, rule.number, 0, nullptr);
    if (err < 0) throw_errno(fmt::format("seccomp: {} filter: rule for {}", what, rule.name), -err);
  }
  // libseccomp 2.5 exports BPF only to a file descriptor.
  Fd memory(::memfd_create("iovmm-seccomp", MFD_CLOEXEC));
  if (!memory) throw_errno("seccomp: memfd_create");
  if (int err = seccomp_export_bpf(context, memory.get()); err < 0) {
    throw_errno(fmt::format("seccomp: {} filter: seccomp_export_bpf", what), -err);
  }
  const off_t size = ::lseek(memory.get(), 0, SEEK_END);
  if (size <= 0 || size % sizeof(sock_filter) != 0) throw Error(fmt::format("seccomp: {} filter: bad BPF", what));
  std::vector<sock_filter> program(static_cast<size_t>(size) / sizeof(sock_filter));
  if (::pread(memory.get(), program.data(), static_cast<size_t>(size), 0) != size) {
    throw_errno(fmt::format("seccomp: {} filter: reading the BPF back", what));
  }
  return program;
}

int load(const std::vector<sock_filter>& program, unsigned flags) {
  sock_fprog prog{static_cast<unsigned short>(program.size()), const_cast<sock_filter*>(program.data())};
  const long ret = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
  if (ret == 0) return 0;
  return ret > 0 ? ESRCH : errno;  // TSYNC: a positive value is the thread that could not be synchronised
}

// ---- the violation handler: async-signal-safe, so no formatting library, no allocation -----------------------

constexpr int kNamedSyscalls = 512;
std::array<std::array<char, 32>, kNamedSyscalls> g_names{};
thread_local int t_vcpu = -1;        // which vCPU this thread runs, for the message
thread_local bool t_main = false;    // the thread that installed the process filter: main, the event loop

void fill_names() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int nr = 0; nr < kNamedSyscalls; ++nr) {
      char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
      if (!name) continue;
      std::strncpy(g_names[static_cast<size_t>(nr)].data(), name, g_names[0].size() - 1);
      std::free(name);
    }
  });
}

struct Line {
  char text[256];
  size_t size = 0;
  void add(const char* s) {
    while (*s && size < sizeof text - 1) text[size++] = *s++;
  }
  void add(long n) {
    char digits[24];
    size_t count = 0;
    unsigned long u = n < 0 ? 0ul - static_cast<unsigned long>(n) : static_cast<unsigned long>(n);
    do {
      digits[count++] = static_cast<char>('0' + u % 10);
      u /= 10;
    } while (u != 0 && count < sizeof digits);
    if (n < 0) add("-");
    while (count > 0 && size < sizeof text - 1) text[size++] = digits[--count];
  }
};

void on_violation(int, siginfo_t* info, void*) {
  Line line;
  line.add("iovmm: seccomp: ");
  if (t_vcpu >= 0) {
    line.add("vCPU ");
    line.add(static_cast<long>(t_vcpu));
  } else {
    line.add(t_main ? "the main (event loop)" : "a VMM");
  }
  line.add(" thread made system call ");
  line.add(static_cast<long>(info->si_syscall));
  if (info->si_syscall >= 0 && info->si_syscall < kNamedSyscalls && g_names[static_cast<size_t>(info->si_syscall)][0]) {
    line.add(" (");
    line.add(g_names[static_cast<size_t>(info->si_syscall)].data());
    line.add(")");
  }
  line.add(", which its allow-list does not have (docs/SECCOMP.md); stopping. --seccomp off runs without it\n");
  [[maybe_unused]] auto written = ::write(STDERR_FILENO, line.text, line.size);
  ::_exit(kExitFatal);
}

}  // namespace

bool sanitizer_build() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

Filters::Filters() : process_(compile(process_rules(), "process")), vcpu_(compile(vcpu_rules(), "vCPU")) {
  fill_names();
}

void Filters::install_process() const {
  struct sigaction action {};
  action.sa_sigaction = on_violation;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  if (::sigaction(SIGSYS, &action, nullptr) != 0) throw_errno("seccomp: sigaction SIGSYS");
  // Required to install a filter without CAP_SYS_ADMIN, and what keeps an exec from shedding it.
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) throw_errno("seccomp: prctl PR_SET_NO_NEW_PRIVS");
  t_main = true;
  if (int err = load(process_, SECCOMP_FILTER_FLAG_TSYNC); err != 0) {
    throw_errno("seccomp: installing the process filter (--seccomp off runs without it)", err);
  }
}

int Filters::install_vcpu(int vcpu) const {
  t_vcpu = vcpu;
  return load(vcpu_, 0);
}

std::vector<std::string_view> allowed_names(Thread thread) {
  std::vector<std::string_view> names;
  for (const Rule& rule : thread == Thread::vcpu ? vcpu_rules() : process_rules()) {
    if (rule.action == SCMP_ACT_ALLOW) names.emplace_back(rule.name);
  }
  return names;
}

void make_forbidden_call() {
  // What a compromised VMM would try first: a network socket. Without a filter it is simply closed again.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) ::close(fd);
}

}  // namespace iovmm::seccomp
