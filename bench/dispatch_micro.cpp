// Host-side cost of the dispatch layer alone, with no KVM: what iovmm adds to an exit between KVM_RUN returning and
// the device's register code, per path, and what replaying one coalesced entry costs (issue #9's target: at most
// 150 ns). Google Benchmark; run `build/bench/dispatch_micro` (see docs/BENCHMARKS.md).
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <vector>

#include "dispatch/dispatcher.h"
#include "io/bus.h"

namespace iovmm {
namespace {

using io::Access;
using io::Effect;

// KVM's side is not what is measured here.
class NoKvm final : public dispatch::KvmRegistrar {
 public:
  void register_coalesced(kvm::IoSpace, uint64_t, uint32_t) override {}
  void unregister_coalesced(kvm::IoSpace, uint64_t, uint32_t) override {}
  void add_ioeventfd(const kvm::IoeventfdSpec&, int) override {}
  void remove_ioeventfd(const kvm::IoeventfdSpec&, int) override {}
};
class NoLoop final : public io::FdWatcher {
 public:
  void watch(int, std::function<void()>) override {}
  void unwatch(int) override {}
};

// A register file like a small device's: a latch, a data register, a constant and a lock-free counter.
constexpr io::Register kRegisters[] = {
    {"index", 0x0, 4, Access::rw, Effect::latch},
    {"data", 0x4, 4, Access::rw, Effect::synchronous},
    {"id", 0x8, 4, Access::ro, Effect::constant, 0x1234},
    {"count", 0xc, 4, Access::ro, Effect::synchronous, 0, true},
};
constexpr io::RegisterBlock kBlocks[] = {{0, "regs", kRegisters}};

class Registers final : public io::Device, public io::LocklessReads {
 public:
  Registers() : io::Device("regs") {}
  uint64_t read(unsigned, uint64_t offset, unsigned) override { return values_[(offset / 4) & 3]; }
  void write(unsigned, uint64_t offset, unsigned, uint64_t value) override { values_[(offset / 4) & 3] = value; }
  uint64_t read_lockless(unsigned, uint64_t, unsigned) override { return 7; }
  std::span<const io::RegisterBlock> register_blocks() const override { return kBlocks; }

 private:
  uint64_t values_[4] = {};
};

constexpr uint64_t kBase = 0xfe000000;

struct Machine {
  explicit Machine(const char* register_name = nullptr, const char* path = nullptr) {
    // A few neighbours, so the lookup searches a table rather than finding its only entry.
    for (uint64_t i = 0; i < 8; ++i) {
      auto other = std::make_shared<Registers>();
      dispatcher.bind(*other, 0);
      mmio.map(io::Window{.base = kBase + 0x1000 * (i + 1), .size = 0x10, .device = other});
      neighbours.push_back(other);
    }
    dispatch::DispatchChoice choice;
    if (register_name) choice.add("regs", std::string("dispatch.") + register_name, path);
    dispatcher.bind(*device, 0, dispatch::bind_registers("regs", kBlocks, choice).at(0));
    mmio.map(io::Window{.base = kBase, .size = 0x10, .device = device});
  }
  NoKvm kvm;
  NoLoop loop;
  io::Bus pio{io::Space::pio};
  io::Bus mmio{io::Space::mmio};
  dispatch::Dispatcher dispatcher{kvm, pio, mmio, loop};
  std::shared_ptr<Registers> device = std::make_shared<Registers>();
  std::vector<std::shared_ptr<Registers>> neighbours;
};

// The exit path's host side for a write: lookup, route, device lock, register code, count.
void ExitWrite(benchmark::State& state) {
  Machine m;
  io::Bus::Reader reader(m.mmio);
  uint64_t value = 0;
  for (auto _ : state) benchmark::DoNotOptimize(m.mmio.write(reader, kBase + 4, 4, ++value));
}
BENCHMARK(ExitWrite);

// A read of one register, with that register on `path` (nullptr: exit).
void Read(benchmark::State& state, const char* register_name, const char* path, uint64_t offset) {
  Machine m(register_name, path);
  io::Bus::Reader reader(m.mmio);
  uint64_t value = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(m.mmio.read(reader, kBase + offset, 4, value));
    benchmark::DoNotOptimize(value);
  }
}
BENCHMARK_CAPTURE(Read, exit, nullptr, nullptr, 0x4);
BENCHMARK_CAPTURE(Read, fastpath_constant, "id", "fastpath", 0x8);
BENCHMARK_CAPTURE(Read, fastpath_lockless, "count", "fastpath", 0xc);

// Two vCPUs, each writing its own device: what they share on the way (the table, counters) is all that differs.
void ExitWriteTwoVcpus(benchmark::State& state) {
  static Machine m;
  const uint64_t addr = state.thread_index() == 0 ? kBase + 4 : kBase + 0x1004;
  io::Bus::Reader reader(m.mmio);
  uint64_t value = 0;
  for (auto _ : state) benchmark::DoNotOptimize(m.mmio.write(reader, addr, 4, ++value));
}
BENCHMARK(ExitWriteTwoVcpus)->Threads(2);

// Off a vCPU thread (no Reader): each access takes a reference on the table.
void ExitWriteWithoutReader(benchmark::State& state) {
  Machine m;
  uint64_t value = 0;
  for (auto _ : state) benchmark::DoNotOptimize(m.mmio.write(kBase + 4, 4, ++value));
}
BENCHMARK(ExitWriteWithoutReader);

// A full ring (KVM's 169 entries here) replayed into the latch: items/s is entries replayed per second.
void CoalescedReplayPerEntry(benchmark::State& state) {
  Machine m("index", "coalesced");
  constexpr uint32_t kEntries = 170;  // one slot stays free: KVM's ring holds 169
  std::vector<uint8_t> storage(sizeof(kvm_coalesced_mmio_ring) + kEntries * sizeof(kvm_coalesced_mmio));
  auto* ring = reinterpret_cast<kvm_coalesced_mmio_ring*>(storage.data());
  for (uint32_t i = 0; i < kEntries; ++i) {
    ring->coalesced_mmio[i].phys_addr = kBase;
    ring->coalesced_mmio[i].len = 4;
    std::memcpy(ring->coalesced_mmio[i].data, &i, sizeof i);
  }
  const dispatch::CoalescedRing view{ring, kEntries};
  size_t replayed = 0;
  for (auto _ : state) {
    ring->first = 0;
    ring->last = kEntries - 1;
    replayed += m.dispatcher.drain_coalesced(view);
  }
  state.SetItemsProcessed(static_cast<int64_t>(replayed));
}
BENCHMARK(CoalescedReplayPerEntry);

// What every exit pays for the coalesced path once a zone exists: the check of an empty ring.
void EmptyRingCheck(benchmark::State& state) {
  Machine m("index", "coalesced");
  std::vector<uint8_t> storage(sizeof(kvm_coalesced_mmio_ring) + 4 * sizeof(kvm_coalesced_mmio));
  const dispatch::CoalescedRing view{reinterpret_cast<kvm_coalesced_mmio_ring*>(storage.data()), 4};
  for (auto _ : state) benchmark::DoNotOptimize(m.dispatcher.drain_coalesced(view));
}
BENCHMARK(EmptyRingCheck);

}  // namespace
}  // namespace iovmm

BENCHMARK_MAIN();
