// Fuzz target: register-table dispatch under hostile input. Each input first makes the user's dispatch choice for a
// pci-testdev and a vga-window (dispatch=PATH and dispatch.NAME=PATH options, NAME drawn from the devices' register
// and block names, bogus ones and illegal paths included) and binds it as Platform::create_user_device does; then it
// replays a sequence of guest accesses and host events against both devices:
//   * the pci-testdev's BARs mapped through a PciBarMapper behind PciRoot (BARs placed like SeaBIOS, moved by
//     configuration writes through 0xCF8/0xCFC) or mapped directly on the buses (moved with Bus::move/unmap/map);
//   * the VGA window at 0xA0000;
//   * accesses at random offsets (inside and outside windows) and widths (valid and not), each by a "via": a guest
//     instruction as KVM routes it (an ioeventfd of the fake DoorbellHost, then a coalesced zone into a fake ring,
//     else an exit that first drains the ring, as VcpuRunner does), the hypercall through execute_hypercall with
//     valid or corrupted flags, a coalesced-ring replay straight onto the bus, or a read that does not drain the
//     ring first (fastpath reads of registers bound to it);
//   * host events: doorbell deliveries and pending-count injections by the fake DoorbellHost (under the device
//     mutex, as Dispatcher does), detaching and re-attaching it, draining the ring, PCI configuration writes.
// Checks:
//   * DispatchChoice::add and bind_registers throw UsageError exactly for the choices an independent legality model
//     refuses (nothing else ever escapes), and a legal choice binds exactly the registers the model says, on the
//     path it says;
//   * refused accesses (unmapped, crossing a window's end, bad width; a bad hypercall request) read all-ones of
//     their width, are counted once, and agree with an independent lookup in the window table;
//   * pci-testdev: every read matches a model of its header; `count` read through a locked path equals the number
//     of matching writes to the selected test's port since its selection (exits, coalesced replays, hypercalls,
//     ioeventfd signals), a fastpath read of it equals what was delivered so far and never exceeds that number;
//   * vga-window: a read returns the bytes last written, whichever path wrote them;
//   * the fake DoorbellHost never holds a handle the device removed (nor is asked to remove or drain one twice),
//     holds exactly the doorbell of the selected eventfd test with its offset, size and datamatch;
//   * every access is counted in its window's AccessCounts under the path it took, and the per-path sums equal the
//     accesses made; windows carry the binding that was installed; the coalesced zones a Dispatcher-like bus
//     listener tracks equal those the window table implies; BAR windows agree with the mapper and the BARs.
// IOVMM_FUZZ_VERBOSE=1 traces the choice and every step (for reproducing a crash).
#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/log.h"
#include "devices/pci/bar_allocation.h"
#include "devices/pci/pci_bar_mapper.h"
#include "devices/pci/pci_host_bridge.h"
#include "devices/pci/pci_root.h"
#include "devices/pci_testdev.h"
#include "devices/vga_window.h"
#include "dispatch/binding.h"
#include "dispatch/hypercall.h"
#include "io/bus.h"
#include "io/doorbell.h"
#include "io/registers.h"

namespace iovmm::fuzz {
namespace {

using devices::PciTestdev;
using devices::VgaWindow;
using io::Path;

bool g_verbose = false;
size_t g_step = 0;

[[noreturn]] __attribute__((format(printf, 1, 2))) void fail(const char* format, ...) {
  std::fprintf(stderr, "fuzz_register_dispatch: step %zu: ", g_step);
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
  std::fputc('\n', stderr);
  std::abort();
}

__attribute__((format(printf, 1, 2))) void trace(const char* format, ...) {
  if (!g_verbose) return;
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
  std::fputc('\n', stderr);
}

// ---- input ----

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  [[nodiscard]] size_t left() const { return size_ - std::min(pos_, size_); }
  template <typename T>
  bool get(T& out) {
    if (left() < sizeof(T)) return false;
    std::memcpy(&out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Header: flags, then per device (testdev, vga) a path byte and an override count, then two bytes per override
// (name index, path index).
enum Flags : uint8_t {
  kDirectMapping = 1u << 0,   // testdev windows mapped directly on the buses, not through PciRoot + PciBarMapper
  kWithHost = 1u << 1,        // a DoorbellHost from the start
  kAnyLength = 1u << 2,       // PciTestdevOptions::any_length_mmio_wildcard
  kCarrier = 1u << 3,         // with dispatch=ioregionfd, a forwarding carrier on the windows
  kBindAfterMap = 1u << 4,    // direct mapping: Bus::bind after Bus::map (the listener sees a rebind)
  kRingShift = 5,             // bits 5..7: coalesced ring capacity index
};

// After the header: 16-byte records.
struct Record {
  uint8_t op;      // bits 0..3: kind; bits 4..5: via; bit 6: raw offset (not folded into [-16, size + 16))
  uint8_t target;  // % kTargetCount (accesses); BAR (bit 0) for BAR events
  uint8_t width;   // index into kWidths; bit 7: (width >> 3) & 15 as is
  uint8_t extra;   // hypercall: bit 7 flips flag bit (extra & 63); events: variants
  int32_t offset;
  uint64_t value;
};
static_assert(sizeof(Record) == 16);

enum Kind : uint8_t {
  kRead = 0,
  kWrite,
  kSelect,      // write `value` to the `test` byte of BAR (target & 1)
  kPortWrite,   // write the selected test's data to its port (or test value % 6's)
  kCountRead,   // read `count` on BAR (target & 1)
  kDeliver,     // the event loop delivers every pending doorbell signal
  kInject,      // KVM signals the active doorbell 1 + (value & 0xff) times (0xffffff with extra bit 0)
  kConfig,      // PCI configuration write of the testdev (BAR mode) / window move (direct mode)
  kConfigRead,  // PCI configuration read of the testdev
  kDrain,       // an exit that is no access: the ring is drained
  kHostToggle,  // set_doorbell_host(nullptr) or back to the fake host
  kBarMove,     // BAR (target & 1) to `value`
  kKindCount,
};

enum Via : uint8_t { kViaGuest = 0, kViaHypercall, kViaReplay, kViaGuest2 };

enum Target : uint8_t { kTdMmio = 0, kTdPio, kVga, kPciPorts, kRawPio, kRawMmio, kTargetCount };

constexpr std::array<unsigned, 8> kWidths = {1, 2, 4, 8, 1, 4, 0, 3};

// Path strings the fuzzer may choose; index 0 is "no option at all". Hypercall and the bogus ones must be refused.
constexpr std::array<std::string_view, 9> kPathTexts = {
    "", "exit", "coalesced", "ioeventfd", "ioregionfd", "hypercall", "fastpath", "Exit", "bogus"};

// Override names per device: registers, blocks, BLOCK.REGISTER, and names that match nothing.
const std::vector<std::string> kTestdevNames = {
    "test", "width", "offset", "data", "count", "name", "port_no_eventfd", "port_wildcard_eventfd",
    "port_datamatch_eventfd", "mmio", "pio", "mmio.count", "pio.count", "mmio.test", "pio.port_no_eventfd",
    "mmio.port_wildcard_eventfd", "pio.port_datamatch_eventfd", "mmio.name", "pio.offset", "vram", "", "bar0",
    "mmio.", ".count", "MMIO", "pio.vram", "count "};
const std::vector<std::string> kVgaNames = {"vram", "vram.vram", "count", "mmio", "", "vram.", "VRAM"};

// ---- the legality model: which path may carry which register (from registers.h's effect classes) ----

std::optional<Path> known_path(std::string_view text) {
  static constexpr std::array<std::pair<std::string_view, Path>, 6> kKnown = {{{"exit", Path::exit},
                                                                               {"coalesced", Path::coalesced},
                                                                               {"ioeventfd", Path::ioeventfd},
                                                                               {"ioregionfd", Path::ioregionfd},
                                                                               {"hypercall", Path::hypercall},
                                                                               {"fastpath", Path::fastpath}}};
  for (auto [name, path] : kKnown) {
    if (name == text) return path;
  }
  return std::nullopt;
}

bool model_legal(const io::Register& reg, Path path) {
  const bool readable = reg.access != io::Access::wo;
  const bool writable = reg.access != io::Access::ro;
  switch (path) {
    case Path::exit: return true;
    case Path::coalesced: return writable && reg.effect == io::Effect::latch;  // only a write that only stores
    case Path::ioeventfd:
      return writable && reg.effect == io::Effect::doorbell &&
             (reg.width == 1 || reg.width == 2 || reg.width == 4 || reg.width == 8);
    case Path::fastpath:
      return readable && reg.effect != io::Effect::read_sensitive &&
             (reg.effect == io::Effect::constant || reg.lockless_read);
    case Path::ioregionfd:  // whole devices only
    case Path::hypercall:   // the guest's choice, never bound
      return false;
  }
  return false;
}

struct ChoiceText {
  std::string_view device;  // "" when no dispatch= option
  std::vector<std::pair<std::string, std::string_view>> overrides;
};

// What bind_registers should produce for `text`, or nothing when the choice must be refused.
struct ExpectedBinding {
  bool ioregionfd = false;
  std::map<unsigned, std::vector<std::pair<std::string_view, Path>>> registers;  // region -> (name, path) in order
};

std::optional<ExpectedBinding> model_binding(std::span<const io::RegisterBlock> blocks, const ChoiceText& text) {
  Path device_path = Path::exit;
  if (!text.device.empty()) {
    auto path = known_path(text.device);
    if (!path || *path == Path::hypercall) return std::nullopt;
    device_path = *path;
  }
  std::vector<std::pair<std::string, Path>> overrides;
  for (const auto& [name, value] : text.overrides) {
    auto path = known_path(value);
    if (!path || *path == Path::hypercall) return std::nullopt;
    overrides.emplace_back(name, *path);
  }
  ExpectedBinding expected;
  if (device_path == Path::ioregionfd) {
    if (!overrides.empty()) return std::nullopt;
    expected.ioregionfd = true;
    for (const auto& block : blocks) expected.registers[block.region];
    return expected;
  }
  std::map<std::pair<size_t, size_t>, Path> chosen;
  bool any_legal = false;
  for (size_t b = 0; b < blocks.size(); ++b) {
    for (size_t r = 0; r < blocks[b].registers.size(); ++r) {
      if (device_path != Path::exit && model_legal(blocks[b].registers[r], device_path)) {
        chosen[{b, r}] = device_path;
        any_legal = true;
      }
    }
  }
  if (device_path != Path::exit && !any_legal) return std::nullopt;
  for (const auto& [name, path] : overrides) {
    bool matched = false;
    for (size_t b = 0; b < blocks.size(); ++b) {
      for (size_t r = 0; r < blocks[b].registers.size(); ++r) {
        const auto& reg = blocks[b].registers[r];
        const std::string qualified = std::string(blocks[b].name) + "." + std::string(reg.name);
        if (name != reg.name && name != blocks[b].name && name != qualified) continue;
        matched = true;
        if (!model_legal(reg, path)) return std::nullopt;
        chosen[{b, r}] = path;
      }
    }
    if (!matched) return std::nullopt;
  }
  for (const auto& block : blocks) expected.registers[block.region];
  for (const auto& [index, path] : chosen) {
    if (path == Path::exit) continue;
    expected.registers[blocks[index.first].region].emplace_back(blocks[index.first].registers[index.second].name,
                                                                path);
  }
  return expected;
}

// Makes the DispatchChoice as Platform::create_user_device does and binds it; checks the outcome against the model.
// Returns the bindings to install (the default ones when the choice was refused, so the accesses still run).
std::map<unsigned, io::WindowBinding> choose_and_bind(const char* device, std::span<const io::RegisterBlock> blocks,
                                                      const ChoiceText& text, bool& whole_ioregionfd) {
  const std::optional<ExpectedBinding> expected = model_binding(blocks, text);
  dispatch::DispatchChoice choice;
  std::optional<std::map<unsigned, io::WindowBinding>> bound;
  std::string refusal;
  try {
    if (!text.device.empty()) choice.add(device, "dispatch", text.device);
    for (const auto& [name, value] : text.overrides) choice.add(device, "dispatch." + name, value);
    bound = dispatch::bind_registers(device, blocks, choice);
  } catch (const UsageError& e) {
    refusal = e.what();
  } catch (const std::exception& e) {
    fail("%s: the dispatch choice threw something else than UsageError: %s", device, e.what());
  }
  if (g_verbose) {
    std::string options = text.device.empty() ? "" : "dispatch=" + std::string(text.device);
    for (const auto& [name, value] : text.overrides) options += ",dispatch." + name + "=" + std::string(value);
    trace("%s [%s]: %s", device, options.c_str(), bound ? "bound" : refusal.c_str());
  }
  if (!bound) {
    if (expected) fail("%s: a legal dispatch choice was refused: %s", device, refusal.c_str());
    if (refusal.empty() || refusal.find('\n') != std::string::npos) fail("%s: refusal is not one line", device);
    whole_ioregionfd = false;
    return dispatch::bind_registers(device, blocks, dispatch::DispatchChoice{});
  }
  if (!expected) fail("%s: an illegal dispatch choice was accepted", device);
  if (bound->size() != expected->registers.size()) fail("%s: bindings for the wrong regions", device);
  for (const auto& [region, binding] : *bound) {
    auto it = expected->registers.find(region);
    if (it == expected->registers.end()) fail("%s: a binding for region %u, which has no block", device, region);
    if (binding.whole != (expected->ioregionfd ? Path::ioregionfd : Path::exit)) fail("%s: wrong whole path", device);
    if (binding.carrier) fail("%s: bind_registers set a carrier", device);
    if (binding.registers.size() != it->second.size()) {
      fail("%s: region %u binds %zu registers, expected %zu", device, region, binding.registers.size(),
           it->second.size());
    }
    for (size_t i = 0; i < binding.registers.size(); ++i) {
      if (binding.registers[i].reg.name != it->second[i].first || binding.registers[i].path != it->second[i].second) {
        fail("%s: region %u register %zu bound as %.*s on %.*s", device, region, i,
             int(binding.registers[i].reg.name.size()), binding.registers[i].reg.name.data(),
             int(io::to_string(binding.registers[i].path).size()), io::to_string(binding.registers[i].path).data());
      }
    }
  }
  whole_ioregionfd = choice.whole_device_ioregionfd();
  if (whole_ioregionfd != expected->ioregionfd) fail("%s: whole_device_ioregionfd disagrees", device);
  return *bound;
}

// ---- the fake DoorbellHost: KVM's ioeventfds and the Dispatcher's bookkeeping ----

class FakeDoorbellHost final : public io::DoorbellHost {
 public:
  struct Bell {
    io::Device* device;
    unsigned region;
    uint64_t offset;
    unsigned size;
    std::optional<uint64_t> datamatch;
    bool active = true;
    uint64_t pending = 0;
  };

  int add_doorbell(io::Device& device, unsigned region, uint64_t offset, unsigned size,
                   std::optional<uint64_t> datamatch, io::DoorbellDelivery delivery) override {
    if (delivery != io::DoorbellDelivery::on_demand) fail("pci-testdev asked for on-signal delivery%s", "");
    if (active_count() != 0) fail("add_doorbell while the device still holds doorbell handle %d", *active_handle());
    bells.push_back(Bell{&device, region, offset, size, datamatch});
    trace("  host: add #%zu region %u offset %#llx size %u%s", bells.size() - 1, region,
          static_cast<unsigned long long>(offset), size, datamatch ? " datamatch" : "");
    return static_cast<int>(bells.size() - 1);
  }
  void remove_doorbell(int handle) override {
    Bell& bell = at(handle, "remove_doorbell");
    trace("  host: remove #%d (%llu pending dropped)", handle, static_cast<unsigned long long>(bell.pending));
    bell.active = false;
    dropped += bell.pending;  // "signals not yet delivered are dropped"
    bell.pending = 0;
  }
  uint64_t take_pending(int handle) override {
    Bell& bell = at(handle, "take_pending");
    return std::exchange(bell.pending, 0);
  }

  [[nodiscard]] size_t active_count() const {
    return static_cast<size_t>(std::count_if(bells.begin(), bells.end(), [](const Bell& b) { return b.active; }));
  }
  [[nodiscard]] std::optional<int> active_handle() const {
    for (size_t i = 0; i < bells.size(); ++i) {
      if (bells[i].active) return static_cast<int>(i);
    }
    return std::nullopt;
  }
  Bell* active() {
    auto handle = active_handle();
    return handle ? &bells[static_cast<size_t>(*handle)] : nullptr;
  }

  std::vector<Bell> bells;
  uint64_t dropped = 0;

 private:
  Bell& at(int handle, const char* what) {
    if (handle < 0 || static_cast<size_t>(handle) >= bells.size()) fail("%s of unknown handle %d", what, handle);
    Bell& bell = bells[static_cast<size_t>(handle)];
    if (!bell.active) fail("%s of handle %d, which the device already removed", what, handle);
    return bell;
  }
};

// An ioregionfd carrier stand-in: forwards to the device, serialised on the device's lock as its server would be.
class ForwardingCarrier final : public io::Device {
 public:
  explicit ForwardingCarrier(std::shared_ptr<io::Device> target)
      : io::Device(target->name() + "-proxy"), target_(std::move(target)) {}
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

// ---- the pci-testdev model (docs in pci_testdev.h, restated) ----

constexpr unsigned kNoTest = ~0u;
constexpr uint32_t test_port(unsigned t) { return t < 3 ? 0x800 + t : 0x80 + t; }
constexpr uint8_t test_data(unsigned t) { return t % 3 == 1 ? 0xCE : 0xFA; }
constexpr bool test_wildcard(unsigned t) { return t % 3 == 1; }
constexpr bool test_eventfd(unsigned t) { return t % 3 != 0; }
std::string test_name(unsigned t) {
  static constexpr std::array<const char*, 3> kSuffix = {"no-eventfd", "wildcard-eventfd", "datamatch-eventfd"};
  return std::string(t < 3 ? "mmio-" : "portio-") + kSuffix[t % 3];
}

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
  if (offset >= 16) {
    const std::string name = test_name(test);
    if (offset - 16 < name.size()) return static_cast<uint8_t>(name[offset - 16]);
  }
  return 0;
}

// ---- the harness ----

constexpr unsigned kTestdevSlot = 2;  // as Platform: 0 host bridge, 1 PIIX, -device functions from 2
constexpr uint64_t kDirectMmioBase = 0xFEB0'0000;
constexpr uint64_t kDirectPioBase = 0xC000;

struct Zone {
  io::Space space;
  uint64_t addr;
  uint64_t len;
  auto operator<=>(const Zone&) const = default;
};

struct RingEntry {
  bool pio;
  uint64_t addr;
  unsigned size;
  uint64_t value;
};

struct ExpectedCounts {
  std::shared_ptr<io::AccessCounts> keep;  // pins the address so a new window's counts cannot reuse it
  std::array<std::array<uint64_t, io::kPathCount>, 2> n{};
};

class Harness {
 public:
  Harness(uint8_t flags, const ChoiceText& testdev_choice, const ChoiceText& vga_choice)
      : direct_(flags & kDirectMapping),
        carrier_(flags & kCarrier),
        ring_capacity_(std::array<size_t, 8>{0, 1, 2, 4, 8, 64, 1, 3}[flags >> kRingShift]) {
    clear_vga_shadow();
    for (io::Bus* bus : {&pio_, &mmio_}) {
      bus->add_listener([this, bus](const io::Window* removed, const io::Window* added) {
        on_window_change(*bus, removed, added);
      });
    }
    testdev_ = std::make_shared<PciTestdev>("pci-testdev",
                                            devices::PciTestdevOptions{.any_length_mmio_wildcard = bool(flags & kAnyLength)});
    any_length_ = flags & kAnyLength;
    vga_ = std::make_shared<VgaWindow>("vga");

    bool td_ioregionfd = false;
    bool vga_ioregionfd = false;
    auto td_bindings = choose_and_bind("pci-testdev", testdev_->register_blocks(), testdev_choice, td_ioregionfd);
    auto vga_bindings = choose_and_bind("vga-window", vga_->register_blocks(), vga_choice, vga_ioregionfd);

    // vga-window: a fixed window, mapped then bound (Platform::create_user_device).
    mmio_.map(io::Window{.base = VgaWindow::kBase, .size = VgaWindow::kSize, .device = vga_, .label = "vga"});
    install(*vga_, 0, vga_bindings, vga_ioregionfd);

    if (!direct_) {
      root_ = std::make_shared<devices::PciRoot>("pci-cfg");
      pio_.map(io::Window{.base = devices::PciRoot::kIoBase, .size = devices::PciRoot::kRegionSize, .device = root_});
      mapper_ = std::make_unique<devices::PciBarMapper>(pio_, mmio_);
      bridge_ = std::make_shared<devices::PciHostBridge>();
      bridge_->set_bar_observer(mapper_->observer());
      root_->attach(0, 0, bridge_);
      testdev_->set_bar_observer(mapper_->observer());
      root_->attach(kTestdevSlot, 0, testdev_);
    }
    if (flags & kWithHost) attach_host(true);
    if (direct_ && (flags & kBindAfterMap)) map_direct();
    for (unsigned region : {PciTestdev::kMmioBar, PciTestdev::kPioBar}) {
      install(*testdev_, region, td_bindings, td_ioregionfd);
    }
    if (direct_ && !(flags & kBindAfterMap)) map_direct();
    if (!direct_) (void)devices::assign_bars_like_seabios(*root_, {.ram_below_4g = 16 << 20});
    refresh();
    check_state();
  }

  ~Harness() { testdev_->set_doorbell_host(nullptr); }

  void run(const Record& r) {
    const unsigned kind = (r.op & 0xf) % kKindCount;
    const unsigned via = (r.op >> 4) & 3;
    switch (kind) {
      case kRead:
      case kWrite: {
        auto [bus, addr] = target_address(r);
        guest_access(*bus, addr, width(r), kind == kWrite, r.value, via, r.extra);
        break;
      }
      case kSelect: {
        const unsigned bar = r.target & 1;
        auto [bus, addr] = bar_address(bar, PciTestdev::kTestField);
        guest_access(*bus, addr, 1, true, r.value & 0xff, via, r.extra);
        break;
      }
      case kPortWrite: {
        const unsigned test = sel_ != kNoTest ? sel_ : static_cast<unsigned>(r.value % 6);
        const unsigned bar = (r.extra & 2) ? (r.target & 1) : test / 3;
        auto [bus, addr] = bar_address(bar, test_port(test));
        const uint64_t value = (r.extra & 1) ? r.value : test_data(test);
        guest_access(*bus, addr, (r.extra & 4) ? width(r) : 1, true, value, via, r.extra & 0x80);
        break;
      }
      case kCountRead: {
        auto [bus, addr] = bar_address(r.target & 1, PciTestdev::kCountField);
        guest_access(*bus, addr, (r.extra & 4) ? width(r) : 4, false, 0, via, r.extra & 0x80);
        break;
      }
      case kDeliver: deliver(); break;
      case kInject: inject((r.extra & 1) ? 1 + (r.value & 0xffffff) : 1 + (r.value & 0xff)); break;
      case kConfig: config_write(static_cast<unsigned>(r.offset) & 0xff, std::array{1u, 2u, 4u, 4u}[r.width & 3],
                                 static_cast<uint32_t>(r.value), r); break;
      case kConfigRead: config_read(static_cast<unsigned>(r.offset) & 0xff, std::array{1u, 2u, 4u, 4u}[r.width & 3]); break;
      case kDrain: drain(); break;
      case kHostToggle: attach_host(!host_attached_); break;
      case kBarMove: {
        const unsigned bar = r.target & 1;
        if (direct_) {
          direct_move(bar, r.value);
        } else {
          config_write(devices::pci_config::kBar0 + 4 * bar, 4, static_cast<uint32_t>(r.value), r);
        }
        break;
      }
    }
    check_state();
  }

 private:
  // ---- set-up ----

  void install(io::Device& device, unsigned region, const std::map<unsigned, io::WindowBinding>& bindings,
               bool whole_ioregionfd) {
    io::WindowBinding binding;
    if (auto it = bindings.find(region); it != bindings.end()) binding = it->second;
    if (whole_ioregionfd) {
      binding.whole = Path::ioregionfd;
      if (carrier_) {
        std::shared_ptr<io::Device> owner = &device == vga_.get() ? std::shared_ptr<io::Device>(vga_)
                                                                  : std::shared_ptr<io::Device>(testdev_);
        binding.carrier = std::make_shared<ForwardingCarrier>(owner);
      }
    }
    auto shared = std::make_shared<const io::WindowBinding>(std::move(binding));
    installed_[{&device, region}] = shared;
    pio_.bind(device, region, shared);
    mmio_.bind(device, region, shared);
  }

  void map_direct() {
    mmio_.map(io::Window{.base = kDirectMmioBase, .size = PciTestdev::kMmioBarSize, .device = testdev_,
                         .region = PciTestdev::kMmioBar, .label = "pci-testdev.bar0"});
    pio_.map(io::Window{.base = kDirectPioBase, .size = PciTestdev::kPioBarSize, .device = testdev_,
                        .region = PciTestdev::kPioBar, .label = "pci-testdev.bar1"});
  }

  void attach_host(bool attach) {
    trace("  %s the doorbell host", attach ? "attach" : "detach");
    testdev_->set_doorbell_host(attach ? &host_ : nullptr);
    host_attached_ = attach;
    settle_dropped();
  }

  // Signals dropped with a removed doorbell never reach `count`: the model forgets those writes.
  void settle_dropped() {
    matching_ -= static_cast<uint32_t>(host_.dropped);
    host_.dropped = 0;
  }

  // ---- the window table, as a Dispatcher-like listener and an independent lookup see it ----

  void on_window_change(io::Bus& bus, const io::Window* removed, const io::Window* added) {
    dirty_ = true;
    if (removed && removed->binding) {
      for (const auto& bound : removed->binding->registers) {
        if (bound.path != Path::coalesced) continue;
        auto it = zones_.find(Zone{bus.space(), removed->base + bound.reg.offset, bound.reg.width});
        if (it == zones_.end()) fail("listener: a removed window's coalesced zone was never added");
        zones_.erase(it);
      }
    }
    if (added && added->binding) {
      for (const auto& bound : added->binding->registers) {
        if (bound.path == Path::coalesced) zones_.insert(Zone{bus.space(), added->base + bound.reg.offset, bound.reg.width});
      }
    }
  }

  void refresh() {
    if (!dirty_) return;
    dirty_ = false;
    pio_table_ = pio_.windows();
    mmio_table_ = mmio_.windows();
    std::multiset<Zone> implied;
    for (const auto* table : {&pio_table_, &mmio_table_}) {
      const io::Space space = table == &pio_table_ ? io::Space::pio : io::Space::mmio;
      for (size_t i = 0; i < table->size(); ++i) {
        const io::Window& w = (*table)[i];
        if (w.size == 0 || w.base + w.size < w.base) fail("an empty or wrapping window");
        if (i + 1 < table->size() && w.base + w.size > (*table)[i + 1].base) fail("windows overlap or are unsorted");
        auto it = installed_.find({w.device.get(), w.region});
        const std::shared_ptr<const io::WindowBinding> want =
            it == installed_.end() ? nullptr : it->second;
        if (w.binding != want) fail("window %s carries another binding than was installed", w.label.c_str());
        if (w.binding) {
          for (const auto& bound : w.binding->registers) {
            if (bound.path == Path::coalesced) implied.insert(Zone{space, w.base + bound.reg.offset, bound.reg.width});
          }
        }
      }
    }
    if (implied != zones_) fail("the coalesced zones the listener saw differ from the window table's");
    if (!direct_) {
      for (const auto& spec : testdev_->bars()) {
        const auto mapped = mapper_->mapped_base(*testdev_, spec.index);
        const io::Window* w = window_of(spec.index);
        if (mapped.has_value() != (w != nullptr) || (mapped && *mapped != w->base)) fail("BAR window and mapper disagree");
        if (w && w->size != spec.size) fail("BAR window has the wrong size");
        std::lock_guard lock(testdev_->mutex());
        if (mapped && testdev_->bar_decode_base(spec.index) != mapped) fail("BAR mapped where it does not decode");
      }
    }
  }

  const std::vector<io::Window>& table(const io::Bus& bus) const { return &bus == &pio_ ? pio_table_ : mmio_table_; }

  const io::Window* window_of(unsigned region) const {
    const auto& t = region == PciTestdev::kMmioBar ? mmio_table_ : pio_table_;
    for (const auto& w : t) {
      if (w.device.get() == testdev_.get() && w.region == region) return &w;
    }
    return nullptr;
  }

  struct Lookup {
    io::AccessResult result;
    const io::Window* window;
  };
  static Lookup lookup(const std::vector<io::Window>& windows, uint64_t addr, unsigned size) {
    if (!io::valid_access_size(size)) return {io::AccessResult::bad_size, nullptr};
    for (const auto& w : windows) {
      if (addr < w.base || addr - w.base >= w.size) continue;
      if (size > w.size - (addr - w.base)) return {io::AccessResult::crosses_end, nullptr};
      return {io::AccessResult::ok, &w};
    }
    return {io::AccessResult::unmapped, nullptr};
  }

  // ---- addresses ----

  static unsigned width(const Record& r) { return (r.width & 0x80) ? (r.width >> 3) & 0xf : kWidths[r.width & 7]; }

  std::pair<io::Bus*, uint64_t> bar_address(unsigned bar, uint64_t offset) {
    refresh();
    io::Bus* bus = bar == PciTestdev::kMmioBar ? &mmio_ : &pio_;
    if (const io::Window* w = window_of(bar)) return {bus, w->base + offset};
    if (direct_) return {bus, (bar == PciTestdev::kMmioBar ? kDirectMmioBase : kDirectPioBase) + offset};
    std::lock_guard lock(testdev_->mutex());
    return {bus, testdev_->bar_address(bar) + offset};  // where the guest programmed it: unmapped now
  }

  std::pair<io::Bus*, uint64_t> target_address(const Record& r) {
    const bool raw = r.op & 0x40;
    auto fold = [&](uint64_t size) -> uint64_t {
      if (raw) return static_cast<uint64_t>(static_cast<int64_t>(r.offset));
      // Folded into [-16, size + 16): mostly inside the window, sometimes just before or past it.
      const int64_t span = static_cast<int64_t>(size) + 32;
      const int64_t v = (static_cast<int64_t>(r.offset) % span + span) % span;
      return static_cast<uint64_t>(v < span - 16 ? v : v - span);
    };
    switch (r.target % kTargetCount) {
      case kTdMmio: { auto [bus, base] = bar_address(0, 0); return {bus, base + fold(PciTestdev::kMmioBarSize)}; }
      case kTdPio: { auto [bus, base] = bar_address(1, 0); return {bus, base + fold(PciTestdev::kPioBarSize)}; }
      case kVga: return {&mmio_, VgaWindow::kBase + fold(VgaWindow::kSize)};
      case kPciPorts: return {&pio_, devices::PciRoot::kIoBase + fold(devices::PciRoot::kRegionSize)};
      case kRawPio: return {&pio_, static_cast<uint32_t>(r.offset)};
      default: return {&mmio_, (uint64_t{r.extra} << 32) | static_cast<uint32_t>(r.offset)};
    }
  }

  // ---- guest accesses ----

  // One guest access. kViaGuest: an instruction, routed as KVM does; kViaHypercall: the paravirtual call with flags
  // built from the access, one bit flipped when `extra` bit 7 is set; kViaReplay: a coalesced-ring entry replayed
  // straight onto the bus (writes) or a read that does not drain the ring first.
  void guest_access(io::Bus& bus, uint64_t addr, unsigned size, bool write, uint64_t value, unsigned via,
                    uint8_t extra) {
    trace("step %zu: %s %s %u bytes at %#llx (%#llx) via %u", g_step, to_string(bus.space()), write ? "write" : "read",
          size, static_cast<unsigned long long>(addr), static_cast<unsigned long long>(value), via);
    if (via == kViaHypercall) return hypercall(bus, addr, size, write, value, extra);
    if (via == kViaReplay) {
      if (write) return bus_access(bus, addr, size, true, value, Path::coalesced);
      return bus_access(bus, addr, size, false, 0, Path::exit);
    }
    if (write && io::valid_access_size(size)) {
      const uint64_t v = value & io::size_mask(size);
      if (host_attached_ && kvm_doorbell(bus, addr, size, v)) return;
      if (ring_.size() < ring_capacity_ && in_zone(bus, addr, size)) {
        ring_.push_back(RingEntry{&bus == &pio_, addr, size, v});
        return;
      }
    }
    drain();
    bus_access(bus, addr, size, write, value, Path::exit);
  }

  bool in_zone(const io::Bus& bus, uint64_t addr, unsigned size) const {
    for (const Zone& z : zones_) {
      if (z.space == bus.space() && addr >= z.addr && addr - z.addr < z.len && size <= z.len - (addr - z.addr)) {
        return true;
      }
    }
    return false;
  }

  // KVM's ioeventfd match (virt/kvm/eventfd.c) against the active doorbell, which follows its window.
  bool kvm_doorbell(io::Bus& bus, uint64_t addr, unsigned size, uint64_t value) {
    FakeDoorbellHost::Bell* bell = host_.active();
    if (!bell) return false;
    refresh();
    const io::Window* w = window_of(bell->region);
    if (!w || &table(bus) != &(bell->region == PciTestdev::kMmioBar ? mmio_table_ : pio_table_)) return false;
    if (addr != w->base + bell->offset) return false;
    if (bell->size != 0 && bell->size != size) return false;
    if (bell->datamatch && *bell->datamatch != value) return false;
    // The write becomes a signal; it is a matching write the device will count when it is delivered or taken.
    const uint32_t counted = model_count_write(bell->region, bell->offset, size, value, /*apply=*/false);
    if (counted != 1) fail("the doorbell caught a write the device would count %u times", counted);
    ++bell->pending;
    ++matching_;
    trace("  -> ioeventfd signal (pending %llu)", static_cast<unsigned long long>(bell->pending));
    return true;
  }

  void drain() {
    while (!ring_.empty()) {
      RingEntry e = ring_.front();
      ring_.pop_front();
      trace("  ring replay: %s %u bytes at %#llx", e.pio ? "pio" : "mmio", e.size, static_cast<unsigned long long>(e.addr));
      bus_access(e.pio ? pio_ : mmio_, e.addr, e.size, true, e.value, Path::coalesced);
    }
  }

  void hypercall(io::Bus& bus, uint64_t addr, unsigned size, bool write, uint64_t value, uint8_t extra) {
    drain();  // the hypercall port is an exit like any other
    const bool pio = &bus == &pio_;
    uint64_t flags = (size & dispatch::kHypercallSizeMask) | (write ? dispatch::kHypercallWrite : 0) |
                     (pio ? dispatch::kHypercallPio : 0);
    if (extra & 0x80) flags ^= uint64_t{1} << (extra & 63);
    const unsigned hsize = static_cast<unsigned>(flags & dispatch::kHypercallSizeMask);
    const bool hpio = flags & dispatch::kHypercallPio;
    const bool hwrite = flags & dispatch::kHypercallWrite;
    constexpr uint64_t kKnown = dispatch::kHypercallSizeMask | dispatch::kHypercallWrite | dispatch::kHypercallPio;
    const uint64_t rax_in = write ? value : 0x5a5a5a5a5a5a5a5aull;
    dispatch::HypercallRegisters regs{.rax = rax_in, .rbx = addr, .rcx = flags};
    if ((flags & ~kKnown) || !io::valid_access_size(hsize) || (hpio && addr > 0xffff)) {
      const uint64_t refused_r = pio_.unmapped_reads() + mmio_.unmapped_reads();
      const uint64_t refused_w = pio_.unmapped_writes() + mmio_.unmapped_writes();
      dispatch::execute_hypercall(regs, pio_, mmio_);
      if (regs.rcx != dispatch::kHypercallBadRequest) fail("a bad hypercall request (flags %#llx) was not refused",
                                                          static_cast<unsigned long long>(flags));
      if (regs.rax != rax_in || regs.rbx != addr) fail("a refused hypercall changed rax or rbx");
      if (refused_r != pio_.unmapped_reads() + mmio_.unmapped_reads() ||
          refused_w != pio_.unmapped_writes() + mmio_.unmapped_writes()) {
        fail("a refused hypercall reached a bus");
      }
      return;
    }
    io::Bus& target = hpio ? pio_ : mmio_;
    bus_access(target, addr, hsize, hwrite, rax_in, Path::hypercall, &regs);
  }

  // The access itself, on `bus` as `via` (or through execute_hypercall when `regs` is given), checked against the
  // window table, the devices' models and the window's access counts.
  void bus_access(io::Bus& bus, uint64_t addr, unsigned size, bool write, uint64_t value, Path via,
                  dispatch::HypercallRegisters* regs = nullptr) {
    refresh();
    const Lookup expected = lookup(table(bus), addr, size);
    const uint64_t width_mask = io::valid_access_size(size) ? io::size_mask(size) : ~0ull;
    const uint64_t refused_before = write ? bus.unmapped_writes() : bus.unmapped_reads();

    // What a read should return, worked out before the access (a locked read of `count` takes pending signals).
    const io::Window* w = expected.window;
    const uint64_t offset = w ? addr - w->base : 0;
    const io::WindowBinding* binding = w ? w->binding.get() : nullptr;
    const io::WindowBinding::BoundRegister* bound = binding ? binding->find(offset, size) : nullptr;
    const bool carried = binding && binding->carrier;
    const bool fastpath = !write && !carried && bound && bound->path == Path::fastpath && via == Path::exit;
    Path counted = binding && via == Path::exit ? binding->whole : via;
    if (fastpath) counted = Path::fastpath;
    std::optional<uint64_t> want;
    if (w && !write) want = model_read(*w, offset, size, /*locked=*/!fastpath);

    io::AccessResult result;
    uint64_t got = 0x1234;
    if (regs) {
      dispatch::execute_hypercall(*regs, pio_, mmio_);
      if (regs->rcx != dispatch::kHypercallDone && regs->rcx != dispatch::kHypercallUnmapped) {
        fail("hypercall status %#llx for a valid request", static_cast<unsigned long long>(regs->rcx));
      }
      const bool ok = regs->rcx == dispatch::kHypercallDone;
      if (ok != (expected.result == io::AccessResult::ok)) fail("hypercall status differs from the window table");
      result = expected.result;
      got = write ? 0 : regs->rax;
      if (write && regs->rax != value) fail("a hypercall write changed rax");
    } else {
      result = write ? bus.write(addr, size, value, via) : bus.read(addr, size, got, via);
      if (result != expected.result) {
        fail("bus result %d differs from the window table's %d (%s %u bytes at %#llx)", int(result),
             int(expected.result), write ? "write" : "read", size, static_cast<unsigned long long>(addr));
      }
    }
    if (result != io::AccessResult::ok) {
      if (!write && got != width_mask) {
        fail("a refused %u-byte read returned %#llx, not all-ones", size, static_cast<unsigned long long>(got));
      }
      if ((write ? bus.unmapped_writes() : bus.unmapped_reads()) != refused_before + 1) fail("refusal not counted once");
      return;
    }
    if ((write ? bus.unmapped_writes() : bus.unmapped_reads()) != refused_before) fail("an access counted as refused");
    if (!write) {
      if (got & ~width_mask) fail("a read returned bits above its width");
      if (want && got != *want) {
        fail("%s read of %u bytes at +%#llx%s returned %#llx, the model says %#llx", w->label.c_str(), size,
             static_cast<unsigned long long>(offset), fastpath ? " (fastpath)" : "", static_cast<unsigned long long>(got),
             static_cast<unsigned long long>(*want));
      }
      if (w->device == testdev_ && fastpath && offset <= PciTestdev::kCountField &&
          offset + size >= PciTestdev::kCountField + 4) {
        const uint32_t count = static_cast<uint32_t>(got >> (8 * (PciTestdev::kCountField - offset)));
        if (sel_ != kNoTest && matching_ < (1u << 31) && count > matching_) {
          fail("a fastpath read of count (%u) exceeds the matching writes (%u)", count, matching_);
        }
      }
    } else {
      model_write(*w, offset, size, value & width_mask);
    }
    settle_dropped();

    // Access counts: this window's per-path sums equal the accesses made to it.
    auto& e = counts_[w->counts.get()];
    if (!e.keep) e.keep = w->counts;
    ++e.n[write ? 1 : 0][static_cast<unsigned>(counted)];
    std::array<std::array<uint64_t, io::kPathCount>, 2> seen{};
    for (const auto& [key, n] : w->counts->snapshot()) {
      seen[key.direction == io::Direction::write ? 1 : 0][static_cast<unsigned>(key.path)] += n;
    }
    if (seen != e.n) {
      fail("%s: access counts by path differ from the accesses made (this one: %s via %.*s, counted as %.*s)",
           w->label.c_str(), write ? "write" : "read", int(io::to_string(via).size()), io::to_string(via).data(),
           int(io::to_string(counted).size()), io::to_string(counted).data());
    }
  }

  // The value a read of (window, offset, size) must return; nothing when it is not modelled.
  std::optional<uint64_t> model_read(const io::Window& w, uint64_t offset, unsigned size, bool locked) {
    if (w.device == vga_) {
      uint64_t v = 0;
      for (unsigned i = 0; i < size; ++i) v |= uint64_t{vga_shadow_[offset + i]} << (8 * i);
      return v;
    }
    if (w.device != testdev_) return std::nullopt;
    const bool covers_count = offset < PciTestdev::kCountField + 4 && offset + size > PciTestdev::kCountField;
    uint32_t count = matching_;
    if (const FakeDoorbellHost::Bell* bell = host_.active()) {
      if (!locked || !covers_count) count -= static_cast<uint32_t>(bell->pending);  // not taken: only delivered ones
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < size; ++i) v |= uint64_t{header_byte(sel_, offset + i, count)} << (8 * i);
    return v;
  }

  void model_write(const io::Window& w, uint64_t offset, unsigned size, uint64_t value) {
    if (w.device == vga_) {
      for (unsigned i = 0; i < size; ++i) {
        vga_shadow_[offset + i] = static_cast<uint8_t>(value >> (8 * i));
        vga_touched_.push_back(static_cast<uint32_t>(offset + i));
      }
    } else if (w.device == testdev_) {
      (void)model_count_write(w.region, offset, size, value, /*apply=*/true);
    }
  }

  // pci-testdev's write, byte by byte as QEMU's memory core splits it: offset 0 selects test 3*bar + value (or
  // none), a byte at the selected test's port counts when it equals the test's data (any byte for wildcard).
  // Returns the bytes counted; `apply` updates the model (selection, matching writes).
  uint32_t model_count_write(unsigned bar, uint64_t offset, unsigned size, uint64_t value, bool apply) {
    unsigned sel = sel_;
    uint32_t counted = 0;
    for (unsigned i = 0; i < size; ++i) {
      const uint64_t at = offset + i;
      const auto byte = static_cast<uint8_t>(value >> (8 * i));
      if (at == PciTestdev::kTestField) {
        if (!apply) return counted;
        sel = byte < 3 ? 3 * bar + byte : kNoTest;
        sel_ = sel;
        host_.dropped = 0;  // the previous test's dropped signals: its count is gone with it
        if (sel != kNoTest) matching_ = 0;
        continue;
      }
      if (sel != kNoTest && at == test_port(sel) && (test_wildcard(sel) || byte == test_data(sel))) {
        ++counted;
        if (apply) ++matching_;
      }
    }
    return counted;
  }

  // ---- host events ----

  void deliver() {
    for (auto& bell : host_.bells) {
      if (!bell.active || bell.pending == 0) continue;
      trace("step %zu: deliver %llu signals", g_step, static_cast<unsigned long long>(bell.pending));
      std::lock_guard lock(bell.device->mutex());  // as Dispatcher::deliver
      const uint64_t count = std::exchange(bell.pending, 0);
      bell.device->doorbell(bell.region, bell.offset, bell.size, bell.datamatch.value_or(0), count);
    }
  }

  void inject(uint64_t n) {
    FakeDoorbellHost::Bell* bell = host_.active();
    trace("step %zu: inject %llu signals%s", g_step, static_cast<unsigned long long>(n), bell ? "" : " (no doorbell)");
    if (!bell) return;
    bell->pending += n;  // n matching writes KVM turned into signals
    matching_ += static_cast<uint32_t>(n);
  }

  // A configuration write to the testdev through CONFIG_ADDRESS/CONFIG_DATA, as guest port exits.
  void config_write(unsigned reg, unsigned size, uint32_t value, const Record& r) {
    if (direct_) return direct_move(r.target & 1, r.value);
    trace("step %zu: config write %u bytes at %#x: %#x", g_step, size, reg, value);
    const uint32_t address = 0x8000'0000u | (kTestdevSlot << 11) | (reg & 0xfc);
    drain();
    bus_access(pio_, devices::PciRoot::kIoBase, 4, true, address, Path::exit);
    bus_access(pio_, devices::PciRoot::kIoBase + 4 + (reg & 3), size, true, value, Path::exit);
  }

  void config_read(unsigned reg, unsigned size) {
    if (direct_) return;
    const uint32_t address = 0x8000'0000u | (kTestdevSlot << 11) | (reg & 0xfc);
    drain();
    bus_access(pio_, devices::PciRoot::kIoBase, 4, true, address, Path::exit);
    bus_access(pio_, devices::PciRoot::kIoBase + 4 + (reg & 3), size, false, 0, Path::exit);
  }

  // Direct mapping: the window moves (Bus::move), goes (value 0) or comes back.
  void direct_move(unsigned region, uint64_t value) {
    io::Bus& bus = region == PciTestdev::kMmioBar ? mmio_ : pio_;
    const uint64_t size = region == PciTestdev::kMmioBar ? PciTestdev::kMmioBarSize : PciTestdev::kPioBarSize;
    if (region == PciTestdev::kPioBar) value &= 0xffff;
    trace("step %zu: direct window %u -> %#llx", g_step, region, static_cast<unsigned long long>(value));
    drain();
    try {
      if (value == 0) {
        (void)bus.unmap(*testdev_, region);
      } else if (bus.find_window(*testdev_, region)) {
        bus.move(*testdev_, region, value);
      } else {
        bus.map(io::Window{.base = value, .size = size, .device = testdev_, .region = region,
                           .label = region == PciTestdev::kMmioBar ? "pci-testdev.bar0" : "pci-testdev.bar1"});
      }
    } catch (const UsageError& e) {
      fail("the bus threw UsageError: %s", e.what());
    } catch (const Error&) {
      // overlap: the window stays where it was (or stays unmapped)
    }
  }

  // ---- invariants after every step ----

  void check_state() {
    refresh();
    const auto selected = testdev_->selected_test();
    if (selected.value_or(kNoTest) != sel_) fail("the device selected test %d, the model %d", int(selected.value_or(99)), int(sel_));
    const FakeDoorbellHost::Bell* bell = host_.active();
    if (host_.active_count() > 1) fail("the host holds %zu doorbells of one device", host_.active_count());
    const bool want_bell = host_attached_ && sel_ != kNoTest && test_eventfd(sel_);
    if (want_bell != (bell != nullptr)) {
      fail("the host %s a doorbell (selected test %d, host %s)", bell ? "holds" : "lacks", int(sel_),
           host_attached_ ? "attached" : "detached");
    }
    if (bell) {
      const unsigned t = sel_;
      if (bell->device != testdev_.get() || bell->region != t / 3 || bell->offset != test_port(t)) {
        fail("the doorbell is not at the selected test's port");
      }
      const unsigned want_size = (any_length_ && t == 1) ? 0 : 1;
      if (bell->size != want_size) fail("the doorbell has size %u, not %u", bell->size, want_size);
      const std::optional<uint64_t> want_match = test_wildcard(t) ? std::nullopt : std::optional<uint64_t>(test_data(t));
      if (bell->datamatch != want_match) fail("the doorbell has the wrong datamatch");
    }
    if (sel_ != kNoTest) {
      const uint32_t pending = bell ? static_cast<uint32_t>(bell->pending) : 0;
      if (testdev_->delivered_count() != static_cast<uint32_t>(matching_ - pending)) {
        fail("delivered count %u, the model %u (%u matching writes, %u pending)", testdev_->delivered_count(),
             matching_ - pending, matching_, pending);
      }
    }
    if (!ring_.empty() && ring_.size() > ring_capacity_) fail("ring overflow");
  }

  const bool direct_;
  const bool carrier_;
  const size_t ring_capacity_;
  bool any_length_ = false;
  bool dirty_ = true;
  bool host_attached_ = false;
  unsigned sel_ = kNoTest;
  uint32_t matching_ = 0;  // matching writes to the selected test's port since its selection (mod 2^32, as count)
  // The bytes last written to the VGA window: one buffer for every input (128 KiB per input costs more than the
  // accesses), cleared where the previous input wrote.
  static inline std::array<uint8_t, VgaWindow::kSize> vga_shadow_{};
  static inline std::vector<uint32_t> vga_touched_;
  static void clear_vga_shadow() {
    for (uint32_t at : vga_touched_) vga_shadow_[at] = 0;
    vga_touched_.clear();
  }
  std::deque<RingEntry> ring_;
  std::multiset<Zone> zones_;
  std::map<std::pair<const io::Device*, unsigned>, std::shared_ptr<const io::WindowBinding>> installed_;
  std::map<const io::AccessCounts*, ExpectedCounts> counts_;
  std::vector<io::Window> pio_table_, mmio_table_;

  FakeDoorbellHost host_;  // outlives the devices (the testdev removes its doorbell when destroyed)
  io::Bus pio_{io::Space::pio};
  io::Bus mmio_{io::Space::mmio};
  std::unique_ptr<devices::PciBarMapper> mapper_;
  std::shared_ptr<devices::PciRoot> root_;
  std::shared_ptr<devices::PciHostBridge> bridge_;
  std::shared_ptr<PciTestdev> testdev_;
  std::shared_ptr<VgaWindow> vga_;
};

ChoiceText read_choice(Reader& in, const std::vector<std::string>& names, uint8_t device_byte, unsigned n) {
  ChoiceText text;
  text.device = kPathTexts[device_byte % kPathTexts.size()];
  for (unsigned i = 0; i < n; ++i) {
    const uint8_t name = in.byte();
    const uint8_t path = in.byte();
    // Index 0 ("no option") means "exit" for an override: an override always has a value.
    const std::string_view value = kPathTexts[path % kPathTexts.size()];
    text.overrides.emplace_back(names[name % names.size()], value.empty() ? "exit" : value);
  }
  return text;
}

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
  Reader in(data, size);
  g_step = 0;
  const uint8_t flags = in.byte();
  const uint8_t td_path = in.byte();
  const uint8_t vga_path = in.byte();
  const uint8_t counts = in.byte();
  const ChoiceText td = read_choice(in, kTestdevNames, td_path, counts & 3);
  const ChoiceText vga = read_choice(in, kVgaNames, vga_path, (counts >> 2) & 3);
  Harness harness(flags, td, vga);  // fresh devices per input: a run depends on its input alone
  Record record;
  while (in.get(record)) {
    ++g_step;
    harness.run(record);
  }
  return 0;
}
