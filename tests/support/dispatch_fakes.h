// Fakes of what the dispatch layer talks to, shared by the unit tests and the register_dispatch fuzz target: KVM (a
// KvmRegistrar that also carries guest writes the way KVM's in-kernel I/O bus does, and a coalesced ring in KVM's
// layout), the event loop (an FdWatcher) and a vCPU's exit context (the hypercall port's registers). No test
// framework here: a fake that sees the dispatch layer ask something KVM or the loop would refuse reports it through
// `on_misuse`, which aborts unless the user installs something else (the unit tests make it a test failure).
#pragma once

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "dispatch/coalesced.h"
#include "dispatch/hypercall.h"
#include "dispatch/registrar.h"
#include "io/bus.h"
#include "io/fd_watcher.h"
#include "kvm/uapi.h"

namespace iovmm::test_support {

using MisuseHandler = std::function<void(const std::string&)>;
inline void abort_on_misuse(const std::string& what) {
  std::fprintf(stderr, "dispatch fake: %s\n", what.c_str());
  std::abort();
}

// A ring as KVM lays it out (kvm_coalesced_mmio_ring, then its slots), in memory the test owns.
class FakeCoalescedRing {
 public:
  explicit FakeCoalescedRing(uint32_t slots)
      : slots_(slots), storage_((sizeof(kvm_coalesced_mmio_ring) + slots * sizeof(kvm_coalesced_mmio) + 7) / 8) {}

  [[nodiscard]] kvm_coalesced_mmio_ring* get() { return reinterpret_cast<kvm_coalesced_mmio_ring*>(storage_.data()); }
  [[nodiscard]] dispatch::CoalescedRing view() { return {get(), slots_}; }
  [[nodiscard]] uint32_t slots() const { return slots_; }
  // KVM leaves one slot free so that first == last means empty (coalesced_mmio_has_room).
  [[nodiscard]] bool full() { return (get()->last + 1) % slots_ == get()->first; }
  // The queued entries, oldest first.
  [[nodiscard]] std::vector<kvm_coalesced_mmio> queued() {
    std::vector<kvm_coalesced_mmio> out;
    for (uint32_t i = get()->first; i != get()->last && i < slots_; i = (i + 1) % slots_) {
      out.push_back(get()->coalesced_mmio[i]);
    }
    return out;
  }
  // As KVM's coalesced_mmio_write, room or not (the caller checks full() when it plays KVM).
  void push(uint64_t addr, uint32_t len, uint64_t value, bool is_pio = false) {
    kvm_coalesced_mmio& entry = get()->coalesced_mmio[get()->last];
    entry = {};
    entry.phys_addr = addr;
    entry.len = len;
    entry.pio = is_pio;
    std::memcpy(entry.data, &value, sizeof value);
    get()->last = (get()->last + 1) % slots_;
  }

 private:
  uint32_t slots_;
  std::vector<uint64_t> storage_;  // uint64_t: the ring's alignment
};

// What KVM would hold: zones and armed ioeventfds, as (space, address, length[, datamatch]).
class FakeRegistrar final : public dispatch::KvmRegistrar {
 public:
  using Zone = std::tuple<kvm::IoSpace, uint64_t, uint32_t>;
  using Doorbell = std::tuple<kvm::IoSpace, uint64_t, uint32_t, std::optional<uint64_t>>;

  void register_coalesced(kvm::IoSpace space, uint64_t addr, uint32_t size) override {
    if (!zones.insert({space, addr, size}).second) misuse("coalesced zone registered twice", space, addr, size);
  }
  void unregister_coalesced(kvm::IoSpace space, uint64_t addr, uint32_t size) override {
    if (zones.erase({space, addr, size}) != 1) misuse("unregistered a zone that is not there", space, addr, size);
  }
  void add_ioeventfd(const kvm::IoeventfdSpec& spec, int eventfd) override {
    // KVM's ioeventfd_check_collision: EEXIST at the same address unless both lengths are set and differ, or both
    // writes need a datamatch and the values differ.
    for (const auto& [armed, fd] : doorbells) {
      const auto& [space, addr, len, match] = armed;
      if (space == spec.space && addr == spec.addr &&
          (len == 0 || spec.len == 0 || (len == spec.len && (!match || !spec.datamatch || *match == spec.data)))) {
        misuse("ioeventfd collides with one already armed (KVM: EEXIST)", spec.space, spec.addr, spec.len);
        return;
      }
    }
    doorbells.emplace(key(spec), eventfd);
    seen_eventfds.insert(eventfd);
  }
  void remove_ioeventfd(const kvm::IoeventfdSpec& spec, int eventfd) override {
    auto it = doorbells.find(key(spec));
    if (it == doorbells.end() || it->second != eventfd) {
      misuse("removed an ioeventfd that is not armed (KVM: ENOENT)", spec.space, spec.addr, spec.len);
      return;
    }
    doorbells.erase(it);
  }

  // KVM signalling the eventfd of the doorbell at `addr` (datamatch `match`), `times` times.
  void ring(kvm::IoSpace space, uint64_t addr, uint32_t len, std::optional<uint64_t> match, uint64_t times = 1) {
    auto it = doorbells.find({space, addr, len, match});
    if (it == doorbells.end()) return misuse("rang an ioeventfd that is not armed", space, addr, len);
    signal(it->second, times);
  }

  // What KVM does with a guest write before it would exit to user space: its in-kernel I/O bus offers the write to
  // the devices covering it, in order, until one takes it. An ioeventfd takes a write at its address of its length
  // (any, for length 0) and, with a datamatch, of its value (virt/kvm/eventfd.c); a coalesced zone takes a write
  // that lies inside it while the ring has room (virt/kvm/coalesced_mmio.c), else KVM exits as for any write.
  // Which of a zone and an ioeventfd on the same bytes is offered first depends on their registration order in
  // KVM; `zones_first` chooses. `times` writes of the same value signal the eventfd once with that count.
  enum class Taken : uint8_t { exit, signalled, queued };
  Taken guest_write(kvm::IoSpace space, uint64_t addr, uint32_t len, uint64_t value, FakeCoalescedRing& ring_buffer,
                    bool zones_first = true, uint64_t times = 1) {
    for (int pass = 0; pass < 2; ++pass) {
      if ((pass == 0) == zones_first) {
        if (in_zone(space, addr, len) && !ring_buffer.full()) {
          ring_buffer.push(addr, len, value, space == kvm::IoSpace::pio);
          return Taken::queued;
        }
      } else if (auto fd = matching_eventfd(space, addr, len, value)) {
        signal(*fd, times);
        return Taken::signalled;
      }
    }
    return Taken::exit;
  }
  [[nodiscard]] bool in_zone(kvm::IoSpace space, uint64_t addr, uint32_t len) const {
    for (const auto& [zone_space, zone_addr, zone_size] : zones) {
      if (zone_space == space && addr >= zone_addr && addr + len >= addr && addr + len <= zone_addr + zone_size) {
        return true;
      }
    }
    return false;
  }
  [[nodiscard]] std::optional<int> matching_eventfd(kvm::IoSpace space, uint64_t addr, uint32_t len,
                                                    uint64_t value) const {
    for (const auto& [armed, fd] : doorbells) {
      const auto& [armed_space, armed_addr, armed_len, match] = armed;
      if (armed_space != space || armed_addr != addr) continue;
      if (armed_len == 0) return fd;
      if (armed_len != len) continue;
      if (!match || *match == (value & io::size_mask(len))) return fd;
    }
    return std::nullopt;
  }

  std::set<Zone> zones;
  std::map<Doorbell, int> doorbells;
  std::set<int> seen_eventfds;  // every eventfd ever armed: all must be closed once the dispatcher is gone
  MisuseHandler on_misuse = abort_on_misuse;

 private:
  static Doorbell key(const kvm::IoeventfdSpec& spec) {
    return {spec.space, spec.addr, spec.len, spec.datamatch ? std::optional<uint64_t>(spec.data) : std::nullopt};
  }
  void signal(int fd, uint64_t times) {
    if (::write(fd, &times, sizeof times) != static_cast<ssize_t>(sizeof times)) {
      on_misuse("an armed ioeventfd cannot be signalled: " + std::string(std::strerror(errno)));
    }
  }
  void misuse(const char* what, kvm::IoSpace space, uint64_t addr, uint32_t len) {
    char where[64];
    std::snprintf(where, sizeof where, " (%s %#llx, %u bytes)", space == kvm::IoSpace::pio ? "pio" : "mmio",
                  static_cast<unsigned long long>(addr), len);
    on_misuse(what + std::string(where));
  }
};

// The event loop's part: handlers by fd. run_all() runs every handler, as if each fd had become readable;
// run_ready() runs those whose fd is readable until none is (level-triggered, as the event loop's epoll).
class FakeWatcher final : public io::FdWatcher {
 public:
  void watch(int fd, std::function<void()> on_readable) override {
    if (!handlers.emplace(fd, std::move(on_readable)).second) on_misuse("fd " + std::to_string(fd) + " watched twice");
  }
  void unwatch(int fd) override {
    if (handlers.erase(fd) != 1) on_misuse("fd " + std::to_string(fd) + " unwatched but not watched");
  }
  void run_all() { run_if([](int) { return true; }); }
  void run_ready() {
    // A handler that does not drain its fd would run for ever: a bound on the rounds makes that a misuse.
    for (int round = 0; round < 64; ++round) {
      if (!run_if([](int fd) {
            pollfd p{fd, POLLIN, 0};
            return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
          })) {
        return;
      }
    }
    on_misuse("a watched fd stays readable after its handler ran 64 times");
  }

  std::map<int, std::function<void()>> handlers;
  MisuseHandler on_misuse = abort_on_misuse;

 private:
  // Handlers may unwatch fds (their own or others): one removed meanwhile is not started.
  bool run_if(const std::function<bool(int)>& ready) {
    std::vector<int> fds;
    for (const auto& [fd, handler] : handlers) fds.push_back(fd);
    bool ran = false;
    for (int fd : fds) {
      auto it = handlers.find(fd);
      if (it == handlers.end() || !ready(fd)) continue;
      auto handler = it->second;  // a copy: the handler may unwatch itself
      handler();
      ran = true;
    }
    return ran;
  }
};

// The vCPU's side of the hypercall carrier: registers in, registers out; and the vCPU's lock-free bus views, which
// the caller uses for the exits themselves.
class FakeExitContext final : public dispatch::ExitContext {
 public:
  FakeExitContext(io::Bus& pio, io::Bus& mmio) : pio_reader(pio), mmio_reader(mmio) {}
  dispatch::HypercallRegisters load_registers() override { return regs; }
  void store_registers(const dispatch::HypercallRegisters& r) override { regs = r; }
  void expect_hypercalls() override { expected = true; }
  io::Bus::Reader& reader(io::Space space) { return space == io::Space::pio ? pio_reader : mmio_reader; }

  dispatch::HypercallRegisters regs{};
  bool expected = false;
  io::Bus::Reader pio_reader;
  io::Bus::Reader mmio_reader;
};

}  // namespace iovmm::test_support
