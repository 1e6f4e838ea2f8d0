#include "dispatch/ioregionfd/channel.h"

#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fmt/core.h>

#include "common/error.h"
#include "common/log.h"
#include "dispatch/ioregionfd/server.h"
#include "dispatch/ioregionfd/transport.h"
#include "dispatch/ioregionfd/wire.h"

namespace iovmm::dispatch::ioregionfd {
namespace {

constexpr auto kReapGrace = std::chrono::milliseconds(2000);

std::pair<Fd, Fd> make_socket_pair(std::string_view for_what) {
  int sv[2];
  // CLOEXEC on both: only the end we hand to a device process on purpose may outlive an exec, or another child
  // would hold it open and the server would never see EOF.
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    throw_errno(fmt::format("ioregionfd: socketpair for {}", for_what));
  }
  return {Fd(sv[0]), Fd(sv[1])};
}

std::string join_windows(const std::vector<ServedWindow>& windows) {
  std::string text;
  for (const auto& w : windows) text += fmt::format("{}{}:{:#x}", text.empty() ? "" : ",", w.region, w.size);
  return text;
}

std::string join_regions(const GuestMemory& memory) {
  std::string text;
  for (const auto& r : memory.regions()) {
    text += fmt::format("{}{:#x}:{:#x}:{:#x}", text.empty() ? "" : ",", r.gpa, r.size, r.file_offset);
  }
  return text;
}

// One probe round trip on the raw socket: the process answers, speaks the protocol and maps guest memory as we do.
// Empty on success, else why not.
std::string check_device_process(int fd, const GuestMemory& memory, const Options& options) {
  const auto& first = memory.regions().front();
  const uint64_t expected = page_checksum({first.host, kProbePageSize});
  const uint64_t user_data = make_user_data(kMemoryProbeRegion, 0);
  const auto deadline = Clock::now() + options.timeout;
  Command probe{Opcode::read, 8, true, user_data, first.gpa, 0};
  if (SendResult s = send_message(fd, encode(probe), deadline); s.status != IoStatus::ok) {
    return s.status == IoStatus::closed ? "it closed its socket" : "it did not take its first command";
  }
  Message in{};
  ReceiveResult r = receive_message(fd, in, 0, deadline);
  if (r.status == IoStatus::timeout) return fmt::format("it did not answer within {} ms", options.timeout.count());
  if (r.status != IoStatus::ok) return "it closed its socket";
  Reply reply;
  if (r.length != kMessageSize || decode(in, reply) != WireError::ok || reply.user_data != user_data) {
    return "its first reply was malformed";
  }
  if (reply.data != expected) {
    return fmt::format("it sees different guest memory (page {:#x}: checksum {:#x}, expected {:#x})", first.gpa,
                       reply.data, expected);
  }
  return {};
}

}  // namespace

Channel::~Channel() { (void)stop(); }

std::string Channel::stop() {
  if (proxy_) proxy_->close();  // the server sees EOF
  if (thread_.joinable()) thread_.join();
  return child_ ? child_->reap(kReapGrace) : "thread";
}

std::string default_device_binary() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error(fmt::format("ioregionfd: cannot find the running executable: {}", ec.message()));
  return (self.parent_path() / "iovmm-device").string();
}

std::unique_ptr<Channel> start_thread_server(std::shared_ptr<io::Device> device, Options options) {
  if (!device) throw Error("ioregionfd: start_thread_server without a device");
  auto [vmm_end, server_end] = make_socket_pair(device->name());
  std::unique_ptr<Channel> channel(new Channel());
  channel->proxy_ = std::make_shared<IoregionfdProxy>(device->name(), std::move(vmm_end), options);
  auto server = std::make_unique<Server>(device, std::move(server_end),
                                         ServerOptions{options.spin_us, std::move(options.windows), {}});
  channel->thread_ = std::thread([server = std::move(server)] {
    ServerResult result = server->run();
    // The proxy notices on its next access (EOF) and stops the VM; this line says what the server saw.
    if (!result.clean) log::error("{}", result.error);
  });
  return channel;
}

std::unique_ptr<Channel> start_process_server(const std::string& device_spec_text, const GuestMemory& memory,
                                              Options options) {
  const std::string name = device_spec_text.substr(0, device_spec_text.find(','));
  const std::string binary = options.device_binary.empty() ? default_device_binary() : options.device_binary;
  if (::access(binary.c_str(), X_OK) != 0) {
    throw_errno(fmt::format("ioregionfd: {}: cannot run the device process {}", name, binary));
  }
  auto [vmm_end, device_end] = make_socket_pair(name);

  std::vector<std::string> argv{binary,
                                "--socket", std::to_string(device_end.get()),
                                "--memfd", std::to_string(memory.memfd()),
                                "--regions", join_regions(memory),
                                "--spin-us", std::to_string(options.spin_us),
                                "--device", device_spec_text};
  if (!options.windows.empty()) {
    argv.push_back("--windows");
    argv.push_back(join_windows(options.windows));
  }
  const int inherit[] = {device_end.get(), memory.memfd()};
  auto child = std::make_shared<ChildProcess>(argv, inherit);
  device_end.reset();  // only the child holds it now: its exit is our EOF

  if (std::string why = check_device_process(vmm_end.get(), memory, options); !why.empty()) {
    vmm_end.reset();
    std::string fate = child->reap(kReapGrace);
    throw Error(fmt::format("ioregionfd: {}: the device process failed to start: {} ({})", name, why, fate));
  }

  std::unique_ptr<Channel> channel(new Channel());
  channel->proxy_ = std::make_shared<IoregionfdProxy>(name, std::move(vmm_end), options);
  // Called only on a failure, after EOF: the process is usually gone already, or about to be.
  channel->proxy_->set_peer_description(
      [child] { return "iovmm-device " + child->describe(std::chrono::milliseconds(100)); });
  channel->child_ = std::move(child);
  return channel;
}

}  // namespace iovmm::dispatch::ioregionfd
