// iovmm-device: runs one device model in its own process and serves its windows over an ioregionfd socket, the
// out-of-process half of the ioregionfd path (src/dispatch/ioregionfd). The VMM starts it with
//   iovmm-device --socket FD --memfd FD --regions GPA:SIZE:OFFSET,... --device SPEC
//                [--windows REGION:SIZE,...] [--spin-us N]
// FD numbers are descriptors it inherited: a connected SOCK_SEQPACKET socket and the guest-RAM memfd, laid out as
// --regions says. It builds the device from SPEC exactly as the VMM would (devices::make_device), maps guest
// memory, and serves until the VMM closes the socket (status 0). --windows bounds what the VMM may touch; without
// it a PCI device's BARs do. Any error is one line on stderr and status 1 (2 for a bad command line).
//
// The VMM is not trusted blindly: accesses outside the windows are answered with all-ones or dropped, and a
// malformed command ends the session with status 1.
#include <sys/socket.h>

#include <charconv>
#include <cstdio>
#include <exception>
#include <fmt/core.h>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "devices/device_spec.h"
#include "devices/factory.h"
#include "devices/pci/pci_device.h"
#include "dispatch/ioregionfd/server.h"
#include "dispatch/ioregionfd/wire.h"
#include "memory/guest_memory.h"

namespace {

using namespace iovmm;
namespace iorfd = iovmm::dispatch::ioregionfd;

// A plain register file for exercising the path without a real device model: reads return what was last written
// (little-endian, any width), region 0 only. "--device ioregionfd-scratch[,size=N]"; not a device the VMM has.
class ScratchRegisters : public io::Device {
 public:
  explicit ScratchRegisters(uint64_t size) : io::Device("ioregionfd-scratch"), bytes_(size) {}
  uint64_t read(unsigned region, uint64_t offset, unsigned size) override {
    if (region != 0 || offset > bytes_.size() || size > bytes_.size() - offset) return io::size_mask(size);
    uint64_t value = 0;
    for (unsigned i = 0; i < size; ++i) value |= uint64_t{bytes_[offset + i]} << (8 * i);
    return value;
  }
  void write(unsigned region, uint64_t offset, unsigned size, uint64_t value) override {
    if (region != 0 || offset > bytes_.size() || size > bytes_.size() - offset) return;
    for (unsigned i = 0; i < size; ++i) bytes_[offset + i] = static_cast<uint8_t>(value >> (8 * i));
  }

 private:
  std::vector<uint8_t> bytes_;
};

uint64_t parse_number(std::string_view text, std::string_view what) {
  int base = 10;
  if (text.starts_with("0x") || text.starts_with("0X")) {
    text.remove_prefix(2);
    base = 16;
  }
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    throw UsageError(fmt::format("{}: '{}' is not a number", what, text));
  }
  return value;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (;;) {
    size_t at = text.find(separator);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

int parse_fd(std::string_view text, std::string_view option) {
  uint64_t fd = parse_number(text, option);
  if (fd > 65535) throw UsageError(fmt::format("{}: {} is not a descriptor", option, text));
  return static_cast<int>(fd);
}

std::vector<MemfdRange> parse_regions(std::string_view text) {
  std::vector<MemfdRange> table;
  for (auto item : split(text, ',')) {
    auto fields = split(item, ':');
    if (fields.size() != 3) throw UsageError(fmt::format("--regions: '{}' is not GPA:SIZE:OFFSET", item));
    table.push_back({parse_number(fields[0], "--regions"), parse_number(fields[1], "--regions"),
                     parse_number(fields[2], "--regions")});
  }
  return table;
}

std::vector<iorfd::ServedWindow> parse_windows(std::string_view text) {
  std::vector<iorfd::ServedWindow> windows;
  for (auto item : split(text, ',')) {
    auto fields = split(item, ':');
    if (fields.size() != 2) throw UsageError(fmt::format("--windows: '{}' is not REGION:SIZE", item));
    uint64_t region = parse_number(fields[0], "--windows");
    if (region >= iorfd::kMemoryProbeRegion) throw UsageError(fmt::format("--windows: region {} too large", region));
    windows.push_back({static_cast<unsigned>(region), parse_number(fields[1], "--windows")});
  }
  return windows;
}

devices::BuiltDevice build_device(const std::string& spec_text) {
  auto spec = devices::DeviceSpec::parse(spec_text);
  if (spec.type() == "ioregionfd-scratch") {
    uint64_t size = 4096;
    if (auto value = spec.take("size")) size = parse_number(*value, "--device ioregionfd-scratch size");
    spec.reject_unused("size");
    if (size == 0 || size > (1u << 20)) throw UsageError("--device ioregionfd-scratch: size must be 1..1 MiB");
    devices::BuiltDevice built;
    built.device = std::make_shared<ScratchRegisters>(size);
    built.fixed_windows.push_back({0, io::Space::mmio, 0, size});
    return built;
  }
  return devices::make_device(spec);
}

// What the device answers for when --windows is not given: a PCI function's BARs, or a fixed device's window.
std::vector<iorfd::ServedWindow> device_windows(const devices::BuiltDevice& built) {
  std::vector<iorfd::ServedWindow> windows;
  if (auto* pci = dynamic_cast<devices::PciDevice*>(built.device.get())) {
    for (const auto& bar : pci->bars()) windows.push_back({bar.index, bar.size});
  } else {
    for (const auto& place : built.fixed_windows) windows.push_back({place.region, place.size});
  }
  if (windows.empty()) {
    throw UsageError(fmt::format("{} has no windows of its own: give them with --windows REGION:SIZE,...",
                                 built.device->name()));
  }
  return windows;
}

int run(int argc, char** argv) {
  std::map<std::string, std::string> options;
  for (int i = 1; i < argc; i += 2) {
    std::string key = argv[i];
    if (key != "--socket" && key != "--memfd" && key != "--regions" && key != "--device" && key != "--windows" &&
        key != "--spin-us") {
      throw UsageError(fmt::format("unknown option '{}'", key));
    }
    if (i + 1 >= argc) throw UsageError(fmt::format("{} needs a value", key));
    if (!options.emplace(key, argv[i + 1]).second) throw UsageError(fmt::format("{} given twice", key));
  }
  for (const char* required : {"--socket", "--memfd", "--regions", "--device"}) {
    if (!options.contains(required)) {
      throw UsageError(fmt::format("{} is required (usage: iovmm-device --socket FD --memfd FD --regions "
                                   "GPA:SIZE:OFFSET,... --device SPEC [--windows REGION:SIZE,...] [--spin-us N])",
                                   required));
    }
  }

  Fd socket(parse_fd(options["--socket"], "--socket"));
  int type = 0;
  socklen_t length = sizeof type;
  if (::getsockopt(socket.get(), SOL_SOCKET, SO_TYPE, &type, &length) != 0 || type != SOCK_SEQPACKET) {
    throw Error(fmt::format("--socket {}: not a SOCK_SEQPACKET socket", socket.get()));
  }
  GuestMemory memory(Fd(parse_fd(options["--memfd"], "--memfd")), parse_regions(options["--regions"]));
  devices::BuiltDevice built = build_device(options["--device"]);

  iorfd::ServerOptions server_options;
  if (options.contains("--spin-us")) {
    uint64_t spin = parse_number(options["--spin-us"], "--spin-us");
    if (spin > 1'000'000) throw UsageError("--spin-us: at most 1000000");
    server_options.spin_us = static_cast<unsigned>(spin);
  }
  server_options.windows =
      options.contains("--windows") ? parse_windows(options["--windows"]) : device_windows(built);
  server_options.probe = [&memory](uint64_t gpa) -> uint64_t {
    if (gpa % iorfd::kProbePageSize) return ~0ull;
    std::vector<uint8_t> page(iorfd::kProbePageSize);
    if (!memory.read(gpa, page.data(), page.size())) return ~0ull;
    return iorfd::page_checksum(page);
  };

  iorfd::Server server(built.device, std::move(socket), std::move(server_options));
  iorfd::ServerResult result = server.run();
  if (!result.clean) throw Error(result.error);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const iovmm::UsageError& e) {
    std::fprintf(stderr, "iovmm-device: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "iovmm-device: %s\n", e.what());
    return 1;
  }
}
