// The VMM's own seccomp allow-lists, one per thread type, the way Firecracker ships them: what a vCPU thread may ask
// of the kernel once the guest runs, and what the rest of the process (the main thread, which is also the event loop,
// and the ioregionfd device-server threads) may. docs/SECCOMP.md lists every entry and why it is there.
//
// Order (Machine::run): the filters are compiled to BPF at start-up, while anything may still be called; the process
// filter is installed on every thread at once (TSYNC) after start-up, just before the vCPU threads are created, so
// they inherit it; each vCPU thread then adds its narrower filter before its first KVM_RUN. A forbidden call traps
// (SECCOMP_RET_TRAP): the SIGSYS handler writes one line naming the thread and the system call and ends the process
// with status 4. SECCOMP_RET_KILL_PROCESS could not say anything — the kernel kills the process before any handler
// runs — and the handler cannot be replaced once the filters are in (rt_sigaction is not allowed).
//
// Device processes (iovmm-device) are started before the filter exists and exec a new image: they are not covered.
// Sanitizer builds (ASan/UBSan, IOVMM_SANITIZE) run without a filter: the runtime makes system calls of its own
// (reports, leak checks at exit) that no list of ours should have to allow.
#pragma once

#include <linux/filter.h>

#include <string_view>
#include <vector>

namespace iovmm::seccomp {

enum class Thread { process, vcpu };

// True when this binary was built with a sanitizer: filters are never installed there.
[[nodiscard]] bool sanitizer_build();

// Both filters, compiled once: building one needs libseccomp (allocations, probes of the kernel), which a thread
// under a filter may no longer do; installing a compiled one is a single seccomp(2) call.
class Filters {
 public:
  // Throws Error when libseccomp cannot build them.
  Filters();

  // On every thread of the process (SECCOMP_FILTER_FLAG_TSYNC); sets no_new_privs first. Throws Error.
  void install_process() const;
  // On the calling thread, vCPU `vcpu`'s, on top of the process filter. Returns an errno value (0 on success): it
  // runs on the vCPU thread, which must not throw.
  [[nodiscard]] int install_vcpu(int vcpu) const;

 private:
  std::vector<sock_filter> process_;
  std::vector<sock_filter> vcpu_;
};

// The syscalls each list allows, by name: for docs/SECCOMP.md's test that the document and the code agree.
[[nodiscard]] std::vector<std::string_view> allowed_names(Thread thread);

// For tests of the filters themselves: makes a system call neither list allows (a forbidden one, as a compromised
// thread would), so the violation path can be seen to work.
void make_forbidden_call();

}  // namespace iovmm::seccomp
