// Starting an ioregionfd device server and owning it: on a thread inside the VMM, or in an iovmm-device process
// that maps guest memory through the memfd. Either way the machine gets an IoregionfdProxy to install as the
// carrier of the device's windows, and the Channel owns the server: destroying the channel hangs up the socket,
// joins the thread or reaps the process (SIGKILL after 2 s), and leaves the proxy answering all-ones — so a bus
// binding that still holds the proxy stays safe.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <thread>

#include "dispatch/ioregionfd/child_process.h"
#include "dispatch/ioregionfd/options.h"
#include "dispatch/ioregionfd/proxy.h"
#include "io/device.h"
#include "memory/guest_memory.h"

namespace iovmm::dispatch::ioregionfd {

class Channel {
 public:
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
  ~Channel();

  // The carrier of the device's windows (dispatch::Dispatcher::bind). May outlive the channel (it then reads all-ones).
  [[nodiscard]] const std::shared_ptr<IoregionfdProxy>& proxy() const { return proxy_; }
  // The device process, or -1 for a thread server.
  [[nodiscard]] pid_t pid() const { return child_ ? child_->pid() : -1; }

  // Hangs up, waits for the server to end and says how it did: "pid N exited with status 0" (a process that saw
  // EOF and left), "pid N killed by signal 9" (it had to be killed, or was), "thread" for a thread server. The
  // destructor does the same; calling it first is for callers that want to log the answer. Idempotent.
  std::string stop();

 private:
  friend std::unique_ptr<Channel> start_thread_server(std::shared_ptr<io::Device> device, Options options);
  friend std::unique_ptr<Channel> start_process_server(const std::string& device_spec_text,
                                                       const GuestMemory& memory, Options options);
  Channel() = default;

  std::shared_ptr<IoregionfdProxy> proxy_;
  std::thread thread_;
  std::shared_ptr<ChildProcess> child_;  // shared with the proxy's failure messages
};

// Serves `device` on a new thread. The device's own mutex is taken for every access, as on the exit path, so the
// device may also be used directly (PCI configuration space stays on the vCPU thread). Throws Error.
[[nodiscard]] std::unique_ptr<Channel> start_thread_server(std::shared_ptr<io::Device> device, Options options);

// Spawns iovmm-device for `device_spec_text` (the --device text; it builds its own instance of the device) with
// guest memory shared through its memfd, and checks before returning that the process answers and sees the same
// guest memory (the probe of wire.h on the first RAM page) — so call it before the guest runs. Throws Error with
// the process's fate when it cannot start; its own one-line reason is on stderr.
[[nodiscard]] std::unique_ptr<Channel> start_process_server(const std::string& device_spec_text,
                                                            const GuestMemory& memory, Options options);

// "iovmm-device" next to the running executable.
[[nodiscard]] std::string default_device_binary();

}  // namespace iovmm::dispatch::ioregionfd
