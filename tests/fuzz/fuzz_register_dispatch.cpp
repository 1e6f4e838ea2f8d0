// Fuzz target: register-table dispatch under hostile input, through the real dispatch layer. Each input makes the
// user's dispatch choice (dispatch=PATH, dispatch.NAME=PATH; legal, illegal and bogus) for a pci-testdev and a
// vga-window and builds the I/O side as Machine and Platform do: a dispatch::Dispatcher over the fake KVM and event
// loop of tests/support/dispatch_fakes.h, the hypercall port, PciRoot with a PciBarMapper, the devices from
// devices::make_device bound through bind_registers + Dispatcher::bind as Platform::create_user_device does, BARs
// placed like SeaBIOS. Then it replays 16-byte records:
//   * guest instructions in and around the windows, of valid and invalid widths, and rep ins/outs: the fake KVM
//     signals a matching ioeventfd or queues a write inside a coalesced zone in a ring of KVM's layout (full: the
//     write exits); every other access exits, and the vCPU replays the ring (Dispatcher::drain_coalesced) and goes
//     to the bus through its Bus::Reader, as VcpuRunner does;
//   * hypercalls: rax/rbx/rcx in the vCPU's ExitContext (flags valid or corrupted), then an `outb` to the port;
//   * host events: the watcher's handlers for readable fds, PCI configuration writes that move BARs or stop and
//     restart their decoding, rebinding a device, pci-testdev leaving its DoorbellHost and coming back.
// Checks, against independent models:
//   * DispatchChoice::add + bind_registers throw a one-line UsageError exactly for the choices a legality model
//     refuses, and otherwise bind the registers the model says, on the path it says;
//   * refused accesses (unmapped, crossing a window's end, bad width) read all-ones and are counted once on their
//     bus; a bad hypercall request is refused and changes nothing but rcx;
//   * pci-testdev reads match a model of its header: `count` under the device lock is the number of matching writes
//     since the selection whatever carried them (exit, replay, hypercall, ioeventfd, carrier), a fastpath read
//     leaves out the signals not yet taken; VGA reads return the bytes last written;
//   * every window's AccessCounts equal the accesses made, per offset, width, direction and path (ioeventfd
//     signals once the dispatcher takes them);
//   * after every step: window tables sorted and disjoint, BAR windows where the mapper and the BARs say, KVM's
//     zones and ioeventfds exactly those the bindings and the testdev's doorbell imply at the windows' current
//     bases; at the end no ioeventfd, watched fd or eventfd outlives the dispatcher.
// IOVMM_FUZZ_VERBOSE=1 traces the choice and every step (for reproducing a crash).
#include <fcntl.h>

#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../support/dispatch_fakes.h"
#include "common/error.h"
#include "common/log.h"
#include "devices/device_spec.h"
#include "devices/factory.h"
#include "devices/pci/bar_allocation.h"
#include "devices/pci/pci_bar_mapper.h"
#include "devices/pci/pci_host_bridge.h"
#include "devices/pci/pci_root.h"
#include "devices/pci_testdev.h"
#include "devices/vga_window.h"
#include "dispatch/binding.h"
#include "dispatch/dispatcher.h"
#include "dispatch/hypercall.h"
#include "io/bus.h"
#include "io/registers.h"

namespace iovmm::fuzz {
namespace {

using devices::PciTestdev;
using devices::VgaWindow;
using io::AccessResult;
using io::Path;
using io::Space;
using test_support::FakeRegistrar;
using ull = unsigned long long;

bool g_verbose = false;
size_t g_step = 0;

__attribute__((format(printf, 1, 0))) void print_line(const char* format, va_list args) {
  std::vfprintf(stderr, format, args);
  std::fputc('\n', stderr);
}

[[noreturn]] __attribute__((format(printf, 1, 2))) void fail(const char* format, ...) {
  std::fprintf(stderr, "fuzz_register_dispatch: step %zu: ", g_step);
  va_list args;
  va_start(args, format);
  print_line(format, args);
  va_end(args);
  std::abort();
}

__attribute__((format(printf, 1, 2))) void trace(const char* format, ...) {
  if (!g_verbose) return;
  va_list args;
  va_start(args, format);
  print_line(format, args);
  va_end(args);
}

// ---- input ----

// Header: flags, the testdev's and the VGA's path bytes, their override counts (bits 0-1, 2-3), two bytes per
// override (name index, path index); then records.
enum Flags : uint8_t {
  kAnyLength = 1u << 0,  // the host has KVM_CAP_IOEVENTFD_ANY_LENGTH: the mmio wildcard doorbell has length 0
  kRingShift = 1,        // bits 1-3: the ring's slots, kRingSlots[index]
};
constexpr std::array<uint32_t, 8> kRingSlots = {1, 2, 3, 4, 5, 9, 17, 65};  // KVM keeps one free: 1 is always full

struct Record {
  uint8_t op;      // bits 0-3: kind; bit 4: as a hypercall; bit 5: KVM offers a write to ioeventfds before zones;
                   // bit 6: raw offset (not folded into [-16, size + 16))
  uint8_t target;  // accesses: % kTargetCount; BAR and rebind events: bit 0
  uint8_t width;   // index into kWidths; bit 7: (width >> 3) & 15 as is
  uint8_t extra;   // hypercall: bit 7 flips flag bit (extra & 63); events: variants
  int32_t offset;
  uint64_t value;
};
static_assert(sizeof(Record) == 16);

enum Kind : uint8_t {
  kRead = 0,
  kWrite,
  kSelect,      // `value` to the `test` byte of BAR (target & 1)
  kPortWrite,   // the selected test's data to its port (test value % 6's when none); extra bit 0: `value` instead,
                // bit 1: through BAR (target & 1), bit 2: of the record's width
  kBurst,       // 1 + (value & 0xff) (& 0xffffff with extra bit 0) such writes: one eventfd count of them when KVM
                // signals them, as a tight guest loop gets; else one write
  kCountRead,   // `count` of BAR (target & 1); extra bit 2: of the record's width
  kDeliver,     // the event loop runs the handlers of readable fds
  kConfig,      // PCI configuration write of the testdev, register offset & 0xff, width {1, 2, 4}[width & 3]
  kConfigRead,  // the same, a read
  kDecode,      // command register: I/O and memory decoding from value bits 0-1 (BAR windows go and come back)
  kBarMove,     // BAR (target & 1) to `value`
  kDrain,       // an exit that is no access (KVM_EXIT_INTR): the ring is replayed
  kRebind,      // device (target & 1: the VGA) rebound: path index extra, (width & 3) overrides from value's bytes
  kHostToggle,  // pci-testdev leaves its DoorbellHost (quiesce) or gets it back
  kString,      // rep outs (extra bit 0: ins) of 2 + ((extra >> 1) & 15) elements at a port target (target & 3: the
                // testdev's BAR1, the PCI ports, the hypercall port, raw); elements value, value + 1, ...
  kKindCount,
};

enum Target : uint8_t { kTdMmio = 0, kTdPio, kVga, kPciPorts, kHypercallPort, kRawPio, kRawMmio, kTargetCount };
constexpr std::array<unsigned, 8> kWidths = {1, 2, 4, 8, 1, 4, 0, 3};

// Index 0 is "no dispatch= option". Hypercall and the bogus ones must be refused; partial only device-wide.
constexpr std::array<std::string_view, 10> kPathTexts = {
    "", "exit", "coalesced", "ioeventfd", "ioregionfd", "hypercall", "fastpath", "partial", "Exit", "bogus"};
// Override names: registers, blocks, BLOCK.REGISTER, and names that match nothing.
const std::vector<std::string> kTestdevNames = {
    "test", "width", "offset", "data", "count", "name", "port_no_eventfd", "port_wildcard_eventfd",
    "port_datamatch_eventfd", "mmio", "pio", "mmio.count", "pio.count", "mmio.test", "pio.port_no_eventfd",
    "mmio.port_wildcard_eventfd", "pio.port_datamatch_eventfd", "mmio.name", "pio.offset", "vram", "", "bar0",
    "mmio.", ".count", "MMIO", "pio.vram", "count "};
const std::vector<std::string> kVgaNames = {"vram", "vram.vram", "count", "mmio", "", "vram.", "VRAM"};

struct ChoiceText {
  std::string_view device;  // "" when no dispatch= option
  std::vector<std::pair<std::string, std::string_view>> overrides;
};

ChoiceText choice_text(const std::vector<std::string>& names, uint8_t device, std::span<const uint8_t> pairs) {
  ChoiceText text{kPathTexts[device % kPathTexts.size()], {}};
  for (size_t i = 0; i + 1 < pairs.size(); i += 2) {
    const std::string_view value = kPathTexts[pairs[i + 1] % kPathTexts.size()];
    text.overrides.emplace_back(names[pairs[i] % names.size()], value.empty() ? "exit" : value);
  }
  return text;
}

// ---- the legality model (registers.h's effect classes) and the choice as Platform makes it ----

std::optional<Path> known_path(std::string_view text) {
  for (unsigned p = 0; p < io::kPathCount; ++p) {
    if (io::to_string(static_cast<Path>(p)) == text) return static_cast<Path>(p);
  }
  return std::nullopt;
}

bool model_legal(const io::Register& reg, Path path) {
  const bool readable = reg.access != io::Access::wo;
  const bool writable = reg.access != io::Access::ro;
  switch (path) {
    case Path::exit: return true;
    case Path::coalesced: return writable && reg.effect == io::Effect::latch;
    case Path::ioeventfd: return writable && reg.effect == io::Effect::doorbell && io::valid_access_size(reg.width);
    case Path::fastpath:
      return readable && reg.effect != io::Effect::read_sensitive &&
             (reg.effect == io::Effect::constant || reg.lockless_read);
    case Path::ioregionfd:  // whole devices only
    case Path::hypercall:   // the guest's choice, never bound
      return false;
  }
  return false;
}

// Per region: whole path, then (register name, path) in table order.
using Bindings = std::map<unsigned, std::pair<Path, std::vector<std::pair<std::string_view, Path>>>>;

std::optional<Bindings> model_binding(std::span<const io::RegisterBlock> blocks, const ChoiceText& text) {
  const bool partial = text.device == "partial";
  const std::optional<Path> device = text.device.empty() || partial ? Path::exit : known_path(text.device);
  if (!device || *device == Path::hypercall) return std::nullopt;
  Bindings expected;
  for (const auto& block : blocks) expected[block.region].first = *device == Path::ioregionfd ? *device : Path::exit;
  if (*device == Path::ioregionfd) return text.overrides.empty() ? std::optional(expected) : std::nullopt;
  std::map<std::pair<size_t, size_t>, Path> chosen;
  for (size_t b = 0; b < blocks.size(); ++b) {
    for (size_t r = 0; r < blocks[b].registers.size(); ++r) {
      for (Path path : {Path::coalesced, Path::ioeventfd, Path::fastpath}) {  // the cheapest first, for partial
        if ((partial || path == *device) && model_legal(blocks[b].registers[r], path)) {
          chosen[{b, r}] = path;
          break;
        }
      }
    }
  }
  if ((partial || *device != Path::exit) && chosen.empty()) return std::nullopt;
  for (const auto& [name, value] : text.overrides) {
    const std::optional<Path> path = known_path(value);
    if (!path || *path == Path::hypercall) return std::nullopt;
    bool matched = false;
    for (size_t b = 0; b < blocks.size(); ++b) {
      for (size_t r = 0; r < blocks[b].registers.size(); ++r) {
        const auto& reg = blocks[b].registers[r];
        if (name != reg.name && name != blocks[b].name &&
            name != std::string(blocks[b].name) + "." + std::string(reg.name)) {
          continue;
        }
        if (!model_legal(reg, *path)) return std::nullopt;
        matched = true;
        chosen[{b, r}] = *path;
      }
    }
    if (!matched) return std::nullopt;
  }
  for (const auto& [at, path] : chosen) {
    if (path != Path::exit) {
      expected[blocks[at.first].region].second.emplace_back(blocks[at.first].registers[at.second].name, path);
    }
  }
  return expected;
}

// As Platform::create_user_device, in two halves around making the device: DispatchChoice::add per option, then
// bind_registers on the device's table. A refused choice binds as no choice would, so that the accesses still run.
struct Choice {
  const char* type;
  ChoiceText text;
  dispatch::DispatchChoice choice;
  std::string refusal;

  Choice(const char* device_type, ChoiceText choice_text) : type(device_type), text(std::move(choice_text)) {
    try {
      if (!text.device.empty()) choice.add(type, "dispatch", text.device);
      for (const auto& [name, value] : text.overrides) choice.add(type, "dispatch." + name, value);
    } catch (const UsageError& e) {
      refusal = e.what();
      choice = {};
    }
  }

  std::map<unsigned, dispatch::WindowBinding> bind(std::span<const io::RegisterBlock> blocks) {
    std::optional<std::map<unsigned, dispatch::WindowBinding>> bound;
    if (refusal.empty()) {
      try {
        bound = dispatch::bind_registers(type, blocks, choice);
      } catch (const UsageError& e) {
        refusal = e.what();
      }
    }
    if (g_verbose) {
      std::string options = text.device.empty() ? "" : "dispatch=" + std::string(text.device);
      for (const auto& [name, value] : text.overrides) options += ",dispatch." + name + "=" + std::string(value);
      trace("%s [%s]: %s", type, options.c_str(), bound ? "bound" : refusal.c_str());
    }
    const std::optional<Bindings> expected = model_binding(blocks, text);
    if (!bound) {
      if (expected) fail("%s: a legal dispatch choice was refused: %s", type, refusal.c_str());
      if (refusal.empty() || refusal.find('\n') != std::string::npos) fail("%s: the refusal is not one line", type);
      choice = {};
      return dispatch::bind_registers(type, blocks, choice);
    }
    if (!expected) fail("%s: an illegal dispatch choice was accepted", type);
    Bindings got;
    for (const auto& [region, binding] : *bound) {
      got[region].first = binding.whole;
      for (const auto& b : binding.registers) got[region].second.emplace_back(b.reg.name, b.path);
    }
    if (got != *expected) fail("%s: bind_registers bound other registers or paths than the model", type);
    if (choice.whole_device_ioregionfd() != (expected->begin()->second.first == Path::ioregionfd)) {
      fail("%s: whole_device_ioregionfd disagrees with the binding", type);
    }
    return *bound;
  }
};

// ---- the pci-testdev model (pci_testdev.h's header comment, restated) ----

constexpr unsigned kNoTest = ~0u;
constexpr uint32_t test_port(unsigned t) { return t < 3 ? 0x800 + t : 0x80 + t; }
constexpr uint8_t test_data(unsigned t) { return t % 3 == 1 ? 0xCE : 0xFA; }
constexpr bool test_wildcard(unsigned t) { return t % 3 == 1; }
constexpr bool test_eventfd(unsigned t) { return t % 3 != 0; }

uint8_t header_byte(unsigned test, uint64_t offset, uint32_t count) {
  if (test == kNoTest) return 0;
  switch (offset) {
    case 0: return static_cast<uint8_t>(test);
    case 1: return 1;
    case 4: case 5: case 6: case 7: return static_cast<uint8_t>(test_port(test) >> (8 * (offset - 4)));
    case 8: return test_data(test);
    case 12: case 13: case 14: case 15: return static_cast<uint8_t>(count >> (8 * (offset - 12)));
    default: break;
  }
  static constexpr std::array<const char*, 3> kSuffix = {"no-eventfd", "wildcard-eventfd", "datamatch-eventfd"};
  const std::string name = std::string(test < 3 ? "mmio-" : "portio-") + kSuffix[test % 3];
  return offset >= 16 && offset - 16 < name.size() ? static_cast<uint8_t>(name[offset - 16]) : 0;
}

// Stands in for the ioregionfd device server (the wire has fuzz_ioregionfd_wire): each access goes to the device
// under its lock, as the server thread serialises them.
class ForwardingCarrier final : public io::Device {
 public:
  explicit ForwardingCarrier(std::shared_ptr<io::Device> target) : io::Device("proxy"), target_(std::move(target)) {}
  uint64_t read(unsigned region, uint64_t offset, unsigned size) override {
    std::lock_guard lock(target_->mutex());
    return target_->read(region, offset, size);
  }
  void write(unsigned region, uint64_t offset, unsigned size, uint64_t value) override {
    std::lock_guard lock(target_->mutex());
    target_->write(region, offset, size, value);
  }

 private:
  std::shared_ptr<io::Device> target_;
};

kvm::IoSpace to_kvm(Space space) { return space == Space::pio ? kvm::IoSpace::pio : kvm::IoSpace::mmio; }

// ---- the harness ----

class Harness {
 public:
  Harness(uint8_t flags, Choice testdev_choice, Choice vga_choice)
      : any_length_(flags & kAnyLength), ring_(kRingSlots[(flags >> kRingShift) & 7]) {
    kvm_.on_misuse = [](const std::string& what) { fail("fake KVM: %s", what.c_str()); };
    watcher_.on_misuse = [](const std::string& what) { fail("fake watcher: %s", what.c_str()); };
    for (io::Bus* bus : {&pio_, &mmio_}) {
      bus->add_listener([this](const io::Window*, const io::Window* added) {
        dirty_ = true;
        if (!added) return;
        // Every window's counts are checked to the end; a doorbell's signals are counted in the last window of
        // its (device, region), which the dispatcher keeps when the window goes.
        counts_[added->counts.get()].keep = added->counts;
        last_counts_[{added->device.get(), added->region}] = added->counts;
      });
    }
    // As Machine (the dispatcher, the hypercall port), then Platform::create_pci.
    dispatcher_ = std::make_unique<dispatch::Dispatcher>(kvm_, pio_, mmio_, watcher_);
    dispatch::attach_hypercall_port(pio_, mmio_);
    dispatch::set_thread_exit_context(&vcpu_);
    hypercall_port_ = pio_.windows().at(0).device.get();
    root_ = std::make_shared<devices::PciRoot>("pci-cfg");
    install(*root_, 0, {}, nullptr);
    pio_.map(io::Window{.base = devices::PciRoot::kIoBase, .size = devices::PciRoot::kRegionSize, .device = root_});
    mapper_ = std::make_unique<devices::PciBarMapper>(pio_, mmio_);
    auto bridge = std::make_shared<devices::PciHostBridge>();
    bridge->set_bar_observer(mapper_->observer());
    root_->attach(0, 0, bridge);
    testdev_ = std::dynamic_pointer_cast<PciTestdev>(create_user_device(testdev_choice));
    vga_ = std::dynamic_pointer_cast<VgaWindow>(create_user_device(vga_choice));
    (void)devices::assign_bars_like_seabios(*root_, {.ram_below_4g = 16 << 20});
    check_state();
  }

  ~Harness() {
    if (dispatcher_) testdev_->quiesce();  // the device must not hold a doorbell of a host that is gone
    dispatch::set_thread_exit_context(nullptr);
  }

  void run(const Record& r) {
    const auto kind = static_cast<Kind>((r.op & 0xf) % kKindCount);
    const bool hypercall = r.op & 0x10;
    zones_first_ = !(r.op & 0x20);
    const unsigned width = (r.width & 0x80) ? (r.width >> 3) & 0xf : kWidths[r.width & 7];
    const unsigned config_width = std::array{1u, 2u, 4u, 4u}[r.width & 3];
    const unsigned test = sel_ != kNoTest ? sel_ : static_cast<unsigned>(r.value % 6);
    switch (kind) {
      case kRead:
      case kWrite: {
        auto [space, addr] = target_address(r);
        access(space, addr, width, kind == kWrite, r.value, hypercall, r.extra);
        break;
      }
      case kSelect: {
        auto [space, addr] = bar_address(r.target & 1, PciTestdev::kTestField);
        access(space, addr, 1, true, r.value & 0xff, hypercall, r.extra);
        break;
      }
      case kPortWrite: {
        auto [space, addr] = bar_address((r.extra & 2) ? (r.target & 1) : test / 3, test_port(test));
        access(space, addr, (r.extra & 4) ? width : 1, true, (r.extra & 1) ? r.value : test_data(test), hypercall,
               r.extra);
        break;
      }
      case kBurst: {
        auto [space, addr] = bar_address(test / 3, test_port(test));
        guest(space, addr, 1, true, test_data(test), 1 + (r.value & ((r.extra & 1) ? 0xffffff : 0xff)));
        break;
      }
      case kCountRead: {
        auto [space, addr] = bar_address(r.target & 1, PciTestdev::kCountField);
        access(space, addr, (r.extra & 4) ? width : 4, false, 0, hypercall, r.extra);
        break;
      }
      case kDeliver: watcher_.run_ready(); break;
      case kConfig: config(static_cast<unsigned>(r.offset) & 0xff, config_width, true, r.value); break;
      case kConfigRead: config(static_cast<unsigned>(r.offset) & 0xff, config_width, false, 0); break;
      case kDecode: config(devices::pci_config::kCommand, 2, true, r.value & 3); break;
      case kBarMove: config(devices::pci_config::kBar0 + 4 * (r.target & 1), 4, true, r.value); break;
      case kDrain: drain(); break;
      case kRebind: {
        // Not something Platform does, but Dispatcher::bind allows it: KVM's side must follow.
        uint8_t pairs[sizeof r.value];
        std::memcpy(pairs, &r.value, sizeof pairs);
        const bool vga = r.target & 1;
        trace("step %zu: rebind the %s", g_step, vga ? "VGA" : "testdev");
        Choice choice(vga ? "vga-window" : "pci-testdev",
                      choice_text(vga ? kVgaNames : kTestdevNames, r.extra, std::span(pairs).first(2 * (r.width & 3))));
        bind_device(vga ? std::shared_ptr<io::Device>(vga_) : testdev_, choice);
        break;
      }
      case kHostToggle: toggle_host(); break;
      case kString: {
        Record at = r;
        at.target = std::array{kTdPio, kPciPorts, kHypercallPort, kRawPio}[r.target & 3];
        string_io(target_address(at).second, width, 2 + ((r.extra >> 1) & 15), !(r.extra & 1), r.value);
        break;
      }
      case kKindCount: break;
    }
    check_state();
  }

  // As ~Platform, then ~Machine: the devices let go of the machine's services, then the dispatcher goes.
  void finish() {
    ++g_step;
    trace("step %zu: quiesce, then the dispatcher goes", g_step);
    testdev_->quiesce();
    drop_doorbell();
    host_attached_ = false;
    check_state();
    dispatcher_.reset();
    if (!kvm_.doorbells.empty()) fail("%zu ioeventfds armed after the dispatcher went", kvm_.doorbells.size());
    if (!watcher_.handlers.empty()) fail("%zu fds watched after the dispatcher went", watcher_.handlers.size());
    for (int fd : kvm_.seen_eventfds) {
      if (::fcntl(fd, F_GETFD) != -1) fail("eventfd %d outlives the dispatcher", fd);
    }
  }

 private:
  // What an access will do, worked out before it is made.
  struct Expect {
    AccessResult result = AccessResult::unmapped;
    const io::Device* device = nullptr;
    unsigned region = 0;
    std::shared_ptr<io::AccessCounts> counts;
    uint64_t offset = 0;
    Path path = Path::exit;
    bool locked = true;             // reaches the device under its lock: a read of `count` takes pending signals
    std::optional<uint64_t> value;  // what a read returns, when modelled
  };

  // The call a write at the hypercall port makes with the vCPU's registers.
  struct Call {
    dispatch::HypercallRegisters in;
    bool bad = false;
    Space space = Space::pio;
    unsigned size = 0;
    bool write = false;
    Expect inner;
  };

  // ---- set-up, as Platform::create_user_device ----

  std::shared_ptr<io::Device> create_user_device(Choice& choice) {
    devices::DeviceContext context;
    context.host.ioeventfd_any_length = any_length_;
    if (!choice.choice.whole_device_ioregionfd()) context.doorbells = dispatcher_.get();
    devices::BuiltDevice built = devices::make_device(devices::DeviceSpec::parse(choice.type), context);
    std::vector<unsigned>& regions = regions_[built.device.get()];
    if (auto pci = std::dynamic_pointer_cast<devices::PciDevice>(built.device)) {
      host_attached_ = context.doorbells != nullptr;  // the testdev, the only PCI device here
      pci->set_bar_observer(mapper_->observer());
      root_->attach(2, 0, pci);  // Platform's first slot for --device functions
      for (unsigned bar = 0; bar < 6; ++bar) {
        if (pci->bar_spec(bar)) regions.push_back(bar);
      }
    }
    for (const auto& place : built.fixed_windows) regions.push_back(place.region);
    bind_device(built.device, choice);  // before the windows are mapped: KVM's side is there when they appear
    for (const auto& place : built.fixed_windows) {
      (place.space == Space::pio ? pio_ : mmio_)
          .map(io::Window{.base = place.base, .size = place.size, .device = built.device, .region = place.region});
    }
    return built.device;
  }

  void bind_device(const std::shared_ptr<io::Device>& device, Choice& choice) {
    const auto bindings = choice.bind(device->register_blocks());
    std::shared_ptr<io::Device> carrier;
    if (choice.choice.whole_device_ioregionfd()) carrier = std::make_shared<ForwardingCarrier>(device);
    for (unsigned region : regions_[device.get()]) {
      dispatch::WindowBinding binding;
      if (auto it = bindings.find(region); it != bindings.end()) binding = it->second;
      if (carrier) binding.whole = Path::ioregionfd;
      install(*device, region, std::move(binding), carrier);
    }
  }

  void install(io::Device& device, unsigned region, dispatch::WindowBinding binding,
               std::shared_ptr<io::Device> carrier) {
    installed_[{&device, region}] = binding;  // carried exactly when whole is ioregionfd
    try {
      dispatcher_->bind(device, region, std::move(binding), std::move(carrier));
    } catch (const std::exception& e) {
      fail("Dispatcher::bind threw: %s", e.what());
    }
  }

  // ---- addresses ----

  const io::Window* window_of(unsigned bar) {
    refresh();
    for (const auto& w : bar == PciTestdev::kMmioBar ? mmio_table_ : pio_table_) {
      if (w.device.get() == testdev_.get() && w.region == bar) return &w;
    }
    return nullptr;
  }

  std::pair<Space, uint64_t> bar_address(unsigned bar, uint64_t offset) {
    const Space space = bar == PciTestdev::kMmioBar ? Space::mmio : Space::pio;
    if (const io::Window* w = window_of(bar)) return {space, w->base + offset};
    std::lock_guard lock(testdev_->mutex());
    return {space, testdev_->bar_address(bar) + offset};  // where the guest programmed it: not decoded now
  }

  std::pair<Space, uint64_t> target_address(const Record& r) {
    auto fold = [&](uint64_t size) -> uint64_t {
      if (r.op & 0x40) return static_cast<uint64_t>(static_cast<int64_t>(r.offset));
      const int64_t span = static_cast<int64_t>(size) + 32;  // mostly inside, sometimes just before or past it
      const int64_t v = (static_cast<int64_t>(r.offset) % span + span) % span;
      return static_cast<uint64_t>(v < span - 16 ? v : v - span);
    };
    switch (r.target % kTargetCount) {
      case kTdMmio: return {Space::mmio, bar_address(0, 0).second + fold(PciTestdev::kMmioBarSize)};
      case kTdPio: return {Space::pio, bar_address(1, 0).second + fold(PciTestdev::kPioBarSize)};
      case kVga: return {Space::mmio, VgaWindow::kBase + fold(VgaWindow::kSize)};
      case kPciPorts: return {Space::pio, devices::PciRoot::kIoBase + fold(devices::PciRoot::kRegionSize)};
      case kHypercallPort: return {Space::pio, dispatch::kHypercallPort + fold(4)};
      case kRawPio: return {Space::pio, static_cast<uint32_t>(r.offset)};
      default: return {Space::mmio, (uint64_t{r.extra} << 32) | static_cast<uint32_t>(r.offset)};
    }
  }

  // ---- guest accesses ----

  void access(Space space, uint64_t addr, unsigned size, bool write, uint64_t value, bool hypercall, uint8_t extra) {
    if (!hypercall) return guest(space, addr, size, write, value);
    uint64_t flags = (size & dispatch::kHypercallSizeMask) | (write ? dispatch::kHypercallWrite : 0) |
                     (space == Space::pio ? dispatch::kHypercallPio : 0);
    if (extra & 0x80) flags ^= uint64_t{1} << (extra & 63);
    vcpu_.regs = {.rax = write ? value : 0x5a5a5a5a5a5a5a5aull, .rbx = addr, .rcx = flags};
    trace("step %zu: hypercall rax %#llx rbx %#llx rcx %#llx", g_step, ull(vcpu_.regs.rax), ull(addr), ull(flags));
    guest(Space::pio, dispatch::kHypercallPort, 1, true, vcpu_.regs.rax & 0xff);  // outb %al, $0x0FF0
  }

  // A guest instruction, as KVM and then VcpuRunner carry it.
  void guest(Space space, uint64_t addr, unsigned size, bool write, uint64_t value, uint64_t times = 1) {
    trace("step %zu: %s %s %u bytes at %#llx (%#llx)%s", g_step, to_string(space), write ? "write" : "read", size,
          ull(addr), ull(value), zones_first_ ? "" : ", ioeventfds first");
    // Odd lengths (pieces of an access split at a page boundary) exit here; KVM might queue one in a zone, with
    // the same outcome: the bus refuses them either way.
    if (write && io::valid_access_size(size)) {
      const uint64_t v = value & io::size_mask(size);
      switch (kvm_.guest_write(to_kvm(space), addr, size, v, ring_, zones_first_, times)) {
        case FakeRegistrar::Taken::signalled: return signalled(v, times);
        case FakeRegistrar::Taken::queued: return trace("  queued in the ring");
        case FakeRegistrar::Taken::exit: break;
      }
    }
    drain();
    bus_access(space, addr, size, write, value, Path::exit);
  }

  // KVM turned `times` writes into eventfd signals of the testdev's doorbell (check_state: KVM arms no other),
  // each standing for a write the device would have counted once.
  void signalled(uint64_t value, uint64_t times) {
    if (!test_wildcard(sel_) && static_cast<uint8_t>(value) != test_data(sel_)) {
      fail("the doorbell swallowed a write the device would not count");
    }
    matching_ += static_cast<uint32_t>(times);
    pending_ += times;
    trace("  -> eventfd signal x%llu (%llu pending)", ull(times), ull(pending_));
  }

  // The vCPU replays the ring before it handles any exit.
  void drain() {
    const std::vector<kvm_coalesced_mmio> entries = ring_.queued();
    std::vector<Expect> expected;
    for (const auto& e : entries) {
      trace("  replay %s %u bytes at %#llx", e.pio ? "pio" : "mmio", e.len, ull(e.phys_addr));
      expected.push_back(predict(e.pio ? Space::pio : Space::mmio, e.phys_addr, e.len, true, Path::coalesced));
    }
    const size_t handled = dispatcher_->drain_coalesced(ring_.view());
    if (handled != entries.size()) fail("drain_coalesced replayed %zu of %zu entries", handled, entries.size());
    if (ring_.get()->first != ring_.get()->last) fail("the ring is not empty after a drain");
    for (size_t i = 0; i < entries.size(); ++i) {
      uint64_t value = 0;
      std::memcpy(&value, entries[i].data, entries[i].len);
      settle(expected[i], entries[i].pio ? Space::pio : Space::mmio, entries[i].len, true, value);
    }
  }

  // The exit itself, on the bus through the vCPU's Reader. A write at the hypercall port performs the call in the
  // vCPU's registers, predicted before it and checked after.
  void bus_access(Space space, uint64_t addr, unsigned size, bool write, uint64_t value, Path via) {
    const Expect e = predict(space, addr, size, write, via);
    std::optional<Call> call;
    if (write && e.result == AccessResult::ok && e.device == hypercall_port_ && e.offset == 0) {
      call = predict_call();
    }
    io::Bus& bus = space == Space::pio ? pio_ : mmio_;
    uint64_t got = 0x1234;
    const AccessResult result = write ? bus.write(vcpu_.reader(space), addr, size, value, via)
                                      : bus.read(vcpu_.reader(space), addr, size, got, via);
    if (result != e.result) {
      fail("bus result %d, the window table says %d (%s %u bytes at %#llx)", int(result), int(e.result),
           write ? "write" : "read", size, ull(addr));
    }
    if (!write) check_read(e, size, got);
    if (!write && e.device == hypercall_port_ && e.offset == 0 && !vcpu_.expected) {
      fail("reading the hypercall signature did not turn on register sync");
    }
    settle(e, space, size, write, value);
    if (call) settle_call(*call);
  }

  // rep ins/outs: KVM hands over the whole string in one exit, VcpuRunner makes it one Bus::transfer_string. (A
  // string KVM would start to take in-kernel is a single write here: how KVM splits one is not modelled.)
  void string_io(uint64_t port, unsigned size, uint32_t n, bool write, uint64_t first) {
    trace("step %zu: rep %s %u x %u bytes at %#llx", g_step, write ? "outs" : "ins", n, size, ull(port));
    if (write && io::valid_access_size(size) &&
        (kvm_.in_zone(kvm::IoSpace::pio, port, size) || kvm_.matching_eventfd(kvm::IoSpace::pio, port, size, first))) {
      return guest(Space::pio, port, size, true, first);
    }
    drain();
    const Expect e = predict(Space::pio, port, size, write, Path::exit, /*string=*/true);
    const size_t element = io::valid_access_size(size) ? size : 0;  // the bus refuses other widths before reading
    std::vector<uint8_t> data(std::max<size_t>(size_t{size} * n, 1), 0x5a);  // kvm_run's buffer is never null
    for (uint32_t i = 0; write && element && i < n; ++i) {
      const uint64_t v = first + i;
      std::memcpy(data.data() + i * element, &v, element);
    }
    const auto direction = write ? io::Direction::write : io::Direction::read;
    if (pio_.transfer_string(vcpu_.reader(Space::pio), direction, port, size, n, data.data()) != e.result) {
      fail("transfer_string's result differs from the window table's");
    }
    if (e.result != AccessResult::ok) {
      const auto end = data.begin() + static_cast<std::ptrdiff_t>(size * n);
      if (!write && !std::all_of(data.begin(), end, [](uint8_t byte) { return byte == 0xff; })) {
        fail("a refused string read is not all-ones");
      }
      refused_[1][write] += n;
      return;
    }
    count(e.counts, {e.offset, size * n, direction, e.path});
    for (uint32_t i = 0; i < n; ++i) {
      uint64_t v = 0;
      std::memcpy(&v, data.data() + i * size, size);
      if (!write) check_read(predict(Space::pio, port, size, false, Path::exit, true), size, v);  // element by element
      apply(e, size, write, v);
    }
  }

  Expect predict(Space space, uint64_t addr, unsigned size, bool write, Path via, bool string = false) {
    refresh();
    Expect e;
    const io::Window* w = nullptr;
    for (const auto& candidate : space == Space::pio ? pio_table_ : mmio_table_) {
      if (addr < candidate.base || addr - candidate.base >= candidate.size) continue;
      e.result = size > candidate.size - (addr - candidate.base) ? AccessResult::crosses_end : AccessResult::ok;
      if (e.result == AccessResult::ok) w = &candidate;
    }
    if (!io::valid_access_size(size)) e.result = AccessResult::bad_size, w = nullptr;
    if (!w) return e;
    e.device = w->device.get();
    e.region = w->region;
    e.counts = w->counts;
    e.offset = addr - w->base;
    e.path = via;
    if (e.device == hypercall_port_) {  // its strings, and a hypercall naming it, are no way to call: all-ones
      e.locked = false;
      const bool discovery = e.offset == 0 && !string && via == Path::exit;
      if (!write) e.value = (discovery ? dispatch::kHypercallSignature : ~0ull) & io::size_mask(size);
      return e;
    }
    const dispatch::WindowBinding& binding = installed_.at({e.device, e.region});
    if (binding.whole == Path::ioregionfd) {
      if (via == Path::exit) e.path = Path::ioregionfd;
    } else if (!write && via == Path::exit && !string) {
      // The fastpath answers a read inside one register bound to it, without the lock.
      const io::Register* reg = io::find_register(w->device->registers(w->region), e.offset, size);
      for (const auto& bound : binding.registers) {
        if (reg && bound.path == Path::fastpath && bound.reg.name == reg->name && bound.reg.offset == reg->offset) {
          e.path = Path::fastpath;
          e.locked = false;
        }
      }
    }
    if (write || (e.device != vga_.get() && e.device != testdev_.get())) return e;
    const uint32_t shown = matching_ - (e.locked ? 0 : static_cast<uint32_t>(pending_));
    uint64_t v = 0;
    for (unsigned i = 0; i < size; ++i) {
      const uint8_t byte = e.device == vga_.get() ? vga_shadow_[e.offset + i] : header_byte(sel_, e.offset + i, shown);
      v |= uint64_t{byte} << (8 * i);
    }
    e.value = v;
    return e;
  }

  Call predict_call() {
    constexpr uint64_t kKnown = dispatch::kHypercallSizeMask | dispatch::kHypercallWrite | dispatch::kHypercallPio;
    Call c{.in = vcpu_.regs};
    c.size = static_cast<unsigned>(c.in.rcx & dispatch::kHypercallSizeMask);
    c.write = c.in.rcx & dispatch::kHypercallWrite;
    c.space = (c.in.rcx & dispatch::kHypercallPio) ? Space::pio : Space::mmio;
    c.bad = (c.in.rcx & ~kKnown) || !io::valid_access_size(c.size) || (c.space == Space::pio && c.in.rbx > 0xffff);
    if (!c.bad) c.inner = predict(c.space, c.in.rbx, c.size, c.write, Path::hypercall);
    return c;
  }

  static void check_read(const Expect& e, unsigned size, uint64_t got) {
    const uint64_t mask = io::valid_access_size(size) ? io::size_mask(size) : ~0ull;
    if (e.result != AccessResult::ok && got != mask) fail("a refused %u-byte read returned %#llx", size, ull(got));
    if (got & ~mask) fail("a %u-byte read returned %#llx, bits above its width", size, ull(got));
    if (e.result == AccessResult::ok && e.value && got != *e.value) {
      fail("a %u-byte read at +%#llx via %.*s returned %#llx, the model says %#llx", size, ull(e.offset),
           int(io::to_string(e.path).size()), io::to_string(e.path).data(), ull(got), ull(*e.value));
    }
  }

  void settle_call(const Call& c) {
    const dispatch::HypercallRegisters& out = vcpu_.regs;
    if (out.rbx != c.in.rbx) fail("a hypercall changed rbx");
    const uint64_t status = c.bad                                ? dispatch::kHypercallBadRequest
                            : c.inner.result == AccessResult::ok ? dispatch::kHypercallDone
                                                                 : dispatch::kHypercallUnmapped;
    if (out.rcx != status) fail("hypercall status %llu, the model says %llu", ull(out.rcx), ull(status));
    if (c.bad && out.rax != c.in.rax) fail("a refused hypercall changed rax");
    if (c.bad) return;
    if (c.write && out.rax != c.in.rax) fail("a hypercall write changed rax");
    if (!c.write) check_read(c.inner, c.size, out.rax);
    settle(c.inner, c.space, c.size, c.write, c.in.rax);
  }

  // The model after the access: refusals, access counts, device state.
  void settle(const Expect& e, Space space, unsigned size, bool write, uint64_t value) {
    if (e.result != AccessResult::ok) {
      ++refused_[space == Space::pio][write];
      return;
    }
    count(e.counts, {e.offset, size, write ? io::Direction::write : io::Direction::read, e.path});
    apply(e, size, write, value);
  }

  void apply(const Expect& e, unsigned size, bool write, uint64_t value) {
    value &= io::size_mask(size);
    for (unsigned i = 0; write && e.device == vga_.get() && i < size; ++i) {
      vga_shadow_[e.offset + i] = static_cast<uint8_t>(value >> (8 * i));
    }
    // pci-testdev takes a write apart byte by byte, as QEMU's memory core does for it.
    for (unsigned i = 0; write && e.device == testdev_.get() && i < size; ++i) {
      const auto byte = static_cast<uint8_t>(value >> (8 * i));
      if (e.offset + i == PciTestdev::kTestField) {
        drop_doorbell();  // the count restarts (or nothing is selected) whatever was pending
        sel_ = byte < 3 ? 3 * e.region + byte : kNoTest;
        matching_ = 0;
        add_doorbell();
      } else if (sel_ != kNoTest && e.offset + i == test_port(sel_)) {
        matching_ += test_wildcard(sel_) || byte == test_data(sel_);
      }
    }
    if (!write && e.device == testdev_.get() && e.locked && e.offset < PciTestdev::kCountField + 4 &&
        e.offset + size > PciTestdev::kCountField) {
      take_pending();
    }
  }

  void count(const std::shared_ptr<io::AccessCounts>& counts, const io::AccessCounts::Key& key, uint64_t n = 1) {
    counts_[counts.get()].n[key] += n;
  }

  // ---- pci-testdev's doorbell, as the device and the dispatcher handle it ----

  // The dispatcher refuses a doorbell for a window not mapped now: that test's writes keep exiting.
  void add_doorbell() {
    if (!host_attached_ || sel_ == kNoTest || !test_eventfd(sel_)) return;
    has_doorbell_ = (sel_ < 3 ? mmio_ : pio_).find_window(*testdev_, sel_ / 3).has_value();
  }

  // Removal takes the pending signals (counted: the guest did write) and drops them: `count` never sees them.
  void drop_doorbell() {
    if (!has_doorbell_) return;
    matching_ -= static_cast<uint32_t>(pending_);
    take_pending();
    has_doorbell_ = false;
  }

  void take_pending() {
    if (pending_ == 0) return;
    const io::AccessCounts::Key key{test_port(sel_), any_length_ && sel_ == 1 ? 0u : 1u, io::Direction::write,
                                    Path::ioeventfd};
    count(last_counts_.at({testdev_.get(), sel_ / 3}), key, pending_);
    pending_ = 0;
  }

  void toggle_host() {
    trace("step %zu: %s the doorbell host", g_step, host_attached_ ? "detach" : "attach");
    if (host_attached_) {
      testdev_->quiesce();
      drop_doorbell();
    } else {
      testdev_->set_doorbell_host(dispatcher_.get());
    }
    host_attached_ = !host_attached_;
    add_doorbell();
  }

  // A configuration access to the testdev (slot 2) through CONFIG_ADDRESS/CONFIG_DATA, as the guest makes it.
  void config(unsigned reg, unsigned size, bool write, uint64_t value) {
    guest(Space::pio, devices::PciRoot::kIoBase, 4, true, 0x8000'0000u | (2u << 11) | (reg & 0xfc));
    guest(Space::pio, devices::PciRoot::kIoBase + 4 + (reg & 3), size, write, value);
  }

  // ---- invariants after every step ----

  void refresh() {
    if (!dirty_) return;
    dirty_ = false;
    pio_table_ = pio_.windows();
    mmio_table_ = mmio_.windows();
  }

  void check_state() {
    refresh();
    // KVM holds the coalesced zones of every window's binding at its base, and the testdev's doorbell while its
    // window is mapped. Neither device has a doorbell register and pci-testdev's doorbells are delivered on
    // demand, so no ioeventfd comes from a binding and no fd is watched.
    std::set<FakeRegistrar::Zone> zones;
    for (const auto* table : {&pio_table_, &mmio_table_}) {
      for (size_t i = 0; i < table->size(); ++i) {
        const io::Window& w = (*table)[i];
        if (w.size == 0 || w.base + w.size < w.base) fail("an empty or wrapping window");
        if (i + 1 < table->size() && w.base + w.size > (*table)[i + 1].base) fail("windows overlap or are unsorted");
        auto it = installed_.find({w.device.get(), w.region});
        for (const auto& bound : it != installed_.end() ? it->second.registers : kNoRegisters) {
          if (bound.path != Path::coalesced) continue;
          zones.insert({table == &pio_table_ ? kvm::IoSpace::pio : kvm::IoSpace::mmio, w.base + bound.reg.offset,
                        static_cast<uint32_t>(bound.reg.width)});
        }
      }
    }
    if (zones != kvm_.zones) fail("KVM has %zu coalesced zones, the windows %zu", kvm_.zones.size(), zones.size());
    std::set<FakeRegistrar::Doorbell> armed, doorbells;
    for (const auto& [key, fd] : kvm_.doorbells) armed.insert(key);
    if (const io::Window* w = has_doorbell_ ? window_of(sel_ / 3) : nullptr) {
      doorbells.insert({sel_ < 3 ? kvm::IoSpace::mmio : kvm::IoSpace::pio, w->base + test_port(sel_),
                        any_length_ && sel_ == 1 ? 0u : 1u,
                        test_wildcard(sel_) ? std::nullopt : std::optional<uint64_t>(test_data(sel_))});
    }
    if (armed != doorbells) fail("KVM has %zu ioeventfds armed, the model %zu", armed.size(), doorbells.size());
    if (!watcher_.handlers.empty()) fail("%zu fds watched", watcher_.handlers.size());

    for (const auto& spec : testdev_->bars()) {
      const auto mapped = mapper_->mapped_base(*testdev_, spec.index);
      const io::Window* w = window_of(spec.index);
      if (mapped.has_value() != (w != nullptr) || (mapped && (*mapped != w->base || w->size != spec.size))) {
        fail("a BAR window and the mapper disagree");
      }
      std::lock_guard lock(testdev_->mutex());
      if (mapped && testdev_->bar_decode_base(spec.index) != mapped) fail("a BAR is mapped where it does not decode");
    }
    if (testdev_->selected_test().value_or(kNoTest) != sel_) fail("the device selected another test than the model");
    const uint32_t delivered = matching_ - static_cast<uint32_t>(pending_);
    if (sel_ != kNoTest && testdev_->delivered_count() != delivered) {
      fail("delivered count %u, the model %u (%llu pending)", testdev_->delivered_count(), delivered, ull(pending_));
    }
    for (const auto& [counts, expected] : counts_) {
      if (counts->snapshot() != expected.n) fail("a window's access counts differ from the accesses made");
    }
    if (pio_.unmapped_reads() != refused_[1][0] || pio_.unmapped_writes() != refused_[1][1] ||
        mmio_.unmapped_reads() != refused_[0][0] || mmio_.unmapped_writes() != refused_[0][1]) {
      fail("refused accesses counted otherwise than the window table refuses them");
    }
  }

  static inline const std::vector<dispatch::WindowBinding::BoundRegister> kNoRegisters;  // the hypercall port's
  const bool any_length_;
  bool zones_first_ = true;
  bool dirty_ = true;
  bool host_attached_ = false;
  bool has_doorbell_ = false;  // the testdev holds a doorbell handle (armed while its window is mapped)
  unsigned sel_ = kNoTest;
  uint32_t matching_ = 0;      // matching writes since the selection, signals included (mod 2^32, as `count`)
  uint64_t pending_ = 0;       // of those, signalled and not yet taken by the device
  std::array<std::array<uint64_t, 2>, 2> refused_{};  // [pio][write]
  std::vector<uint8_t> vga_shadow_ = std::vector<uint8_t>(VgaWindow::kSize);  // the bytes last written
  struct ExpectedCounts {
    std::shared_ptr<io::AccessCounts> keep;  // pins the address so that a new window's counts cannot reuse it
    std::map<io::AccessCounts::Key, uint64_t> n;
  };
  std::map<const io::AccessCounts*, ExpectedCounts> counts_;
  std::map<std::pair<const io::Device*, unsigned>, std::shared_ptr<io::AccessCounts>> last_counts_;
  std::map<std::pair<const io::Device*, unsigned>, dispatch::WindowBinding> installed_;
  std::map<const io::Device*, std::vector<unsigned>> regions_;
  std::vector<io::Window> pio_table_, mmio_table_;
  const io::Device* hypercall_port_ = nullptr;

  FakeRegistrar kvm_;
  test_support::FakeWatcher watcher_;
  test_support::FakeCoalescedRing ring_;
  io::Bus pio_{Space::pio};
  io::Bus mmio_{Space::mmio};
  std::unique_ptr<dispatch::Dispatcher> dispatcher_;
  test_support::FakeExitContext vcpu_{pio_, mmio_};
  std::unique_ptr<devices::PciBarMapper> mapper_;
  std::shared_ptr<devices::PciRoot> root_;
  std::shared_ptr<PciTestdev> testdev_;
  std::shared_ptr<VgaWindow> vga_;
};

}  // namespace
}  // namespace iovmm::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Guest mistakes are logged as warnings (rate-limited); the fuzzer makes them by the million.
  iovmm::log::set_level(iovmm::log::Level::error);
  iovmm::fuzz::g_verbose = std::getenv("IOVMM_FUZZ_VERBOSE") != nullptr;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iovmm::fuzz;
  g_step = 0;
  size_t pos = 0;
  auto next = [&] { return pos < size ? data[pos++] : uint8_t{0}; };
  const uint8_t flags = next(), testdev_path = next(), vga_path = next(), overrides = next();
  std::array<uint8_t, 12> pairs{};
  const size_t testdev_bytes = 2 * (overrides & 3), vga_bytes = 2 * ((overrides >> 2) & 3);
  for (size_t i = 0; i < testdev_bytes + vga_bytes; ++i) pairs[i] = next();
  const auto testdev_pairs = std::span(pairs).first(testdev_bytes);
  const auto vga_pairs = std::span(pairs).subspan(testdev_bytes, vga_bytes);
  Harness harness(flags, Choice("pci-testdev", choice_text(kTestdevNames, testdev_path, testdev_pairs)),
                  Choice("vga-window", choice_text(kVgaNames, vga_path, vga_pairs)));
  Record record;
  for (; size - pos >= sizeof record; pos += sizeof record) {
    std::memcpy(&record, data + pos, sizeof record);
    ++g_step;
    harness.run(record);
  }
  harness.finish();
  return 0;
}
