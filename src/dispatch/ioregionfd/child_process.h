// An iovmm-device process as the VMM owns it: started with a chosen set of inherited descriptors, watched without
// being reaped (so a failure message can say how it died), and always reaped — politely, then with SIGKILL.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace iovmm::dispatch::ioregionfd {

class ChildProcess {
 public:
  // Runs argv[0] (a path) with argv. Descriptors in `inherit` stay open in the child under the same numbers;
  // every other descriptor the VMM opened with O_CLOEXEC is closed. The child gets SIGKILL if the VMM dies.
  // Throws Error when it cannot be started (exec failure included, reported synchronously through a pipe).
  ChildProcess(const std::vector<std::string>& argv, std::span<const int> inherit);
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();  // reap(2 s)

  [[nodiscard]] pid_t pid() const { return pid_; }

  // "pid N exited with status S" / "pid N killed by signal S" once it has ended (waiting up to `wait` for that),
  // else "pid N still running". Does not reap.
  [[nodiscard]] std::string describe(std::chrono::milliseconds wait);

  // Waits up to `grace` for the child to exit on its own, then kills it with SIGKILL; reaps it. Returns describe()'s
  // text for how it ended. Idempotent.
  std::string reap(std::chrono::milliseconds grace);

 private:
  [[nodiscard]] bool ended_locked(std::chrono::milliseconds wait, std::string& how);

  std::mutex mutex_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::string how_ended_;
};

}  // namespace iovmm::dispatch::ioregionfd
