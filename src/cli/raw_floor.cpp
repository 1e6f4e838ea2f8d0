#include "cli/raw_floor.h"

#include <fmt/core.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <x86intrin.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include "common/error.h"
#include "kvm/system.h"
#include "kvm/uapi.h"
#include "kvm/vcpu.h"
#include "kvm/vm.h"
#include "machine/cpu_setup.h"
#include "machine/vcpu_runner.h"
#include "memory/guest_memory.h"

namespace iovmm::cli {
namespace {

constexpr uint64_t kRamSize = 2 << 20;
constexpr uint64_t kCodeAddress = 0x1000;
constexpr uint64_t kTssAddress = 0x3000;
constexpr uint64_t kStackTop = 0x8000;
// PML4, PDPT, the page directory for the first GiB (RAM) and the one for the fourth (the MMIO address), in that order.
constexpr uint64_t kPml4Address = 0x10000;
constexpr uint64_t kGdtAddress = 0x20000;
constexpr uint16_t kFloorPort = 0x3000;  // no device anywhere: the host never looks it up
// In no memory slot, so every access is a KVM_EXIT_MMIO; where a PC's PCI BARs sit (below the IOAPIC), and clear of
// KVM's TSS and identity-map pages at 0xFEFFC000.
constexpr uint32_t kFloorMmioAddress = 0xFEB80000;
constexpr uint32_t kFloorReadValue = 0x5A5A5A5A;  // what the host answers reads with: any value will do
constexpr int kWarmupRoundTrips = 200;
// Far above what a variant needs (10^4 round trips of ~30 us), far below "the bench hangs".
constexpr auto kVariantDeadline = std::chrono::seconds(30);

constexpr uint8_t byte_of(uint32_t value, unsigned byte) { return static_cast<uint8_t>(value >> (8 * byte)); }

// Each loop sets its operand once and then repeats the bench guest's own loop body (guests/bench-exits/loops.c):
// the access, `dec ecx`, `jnz` back. The same instructions matter at CPL0, where KVM emulates each of them (~1 us
// apiece): a shorter loop would make the floor cheaper than any guest's loop could be. ecx is set to 0, so the loop
// runs 2^32 times, far more than a variant needs. The bytes decode the same in 32-bit and 64-bit mode (no REX
// prefix needed: mov to ebx zero-extends into rbx), so both modes share them.
std::vector<uint8_t> loop_code(FloorAccess access) {
  constexpr uint8_t kDecEcx[] = {0xff, 0xc9};
  auto loop = [&](std::vector<uint8_t> setup, std::vector<uint8_t> body) {
    body.insert(body.end(), std::begin(kDecEcx), std::end(kDecEcx));
    body.push_back(0x75);  // jnz rel8, back to the access
    body.push_back(static_cast<uint8_t>(-static_cast<int>(body.size() + 1)));
    setup.insert(setup.end(), {0xb9, 0, 0, 0, 0});  // mov ecx, 0
    setup.insert(setup.end(), body.begin(), body.end());
    return setup;
  };
  const std::vector<uint8_t> set_dx = {0x66, 0xba, byte_of(kFloorPort, 0), byte_of(kFloorPort, 1)};
  const std::vector<uint8_t> set_ebx = {0xbb, byte_of(kFloorMmioAddress, 0), byte_of(kFloorMmioAddress, 1),
                                        byte_of(kFloorMmioAddress, 2), byte_of(kFloorMmioAddress, 3)};
  switch (access) {
    case FloorAccess::pio_write: return loop(set_dx, {0xee});        // out dx, al
    case FloorAccess::pio_read: return loop(set_dx, {0xec});         // in al, dx
    case FloorAccess::mmio_write: return loop(set_ebx, {0x88, 0x03});  // mov [rbx], al (the testdev's 1-byte writes)
    case FloorAccess::mmio_read: return loop(set_ebx, {0x8b, 0x03});   // mov eax, [rbx] (its 32-bit count reads)
  }
  throw Error("raw floor: unknown access kind");
}

std::string expected_exit(FloorAccess access) {
  switch (access) {
    case FloorAccess::pio_write: return fmt::format("a write to port {:#x}", kFloorPort);
    case FloorAccess::pio_read: return fmt::format("a read of port {:#x}", kFloorPort);
    case FloorAccess::mmio_write: return fmt::format("an MMIO write at {:#x}", kFloorMmioAddress);
    case FloorAccess::mmio_read: return fmt::format("an MMIO read at {:#x}", kFloorMmioAddress);
  }
  return "?";
}

// 64-bit mode with paging, at CPL0 or CPL3 as the bench guest runs its loops, built from KVM_SET_SREGS alone. The
// GDT mirrors the hidden segment state so that nothing changes if the backend ever reloads a descriptor.
constexpr uint16_t kKernelCodeSelector = 0x08;
constexpr uint16_t kKernelDataSelector = 0x10;
constexpr uint16_t kUserDataSelector = 0x18 | 3;
constexpr uint16_t kUserCodeSelector = 0x20 | 3;
constexpr uint16_t kTssSelector = 0x28;
constexpr uint32_t kTssIoBitmapOffset = 0x68;
constexpr uint32_t kTssLimit = kTssIoBitmapOffset + 0x10000 / 8;  // the bitmap covers every port, plus the 0xFF end byte

class ScratchVm {
 public:
  explicit ScratchVm(FloorAccess access) : memory_(std::vector<RamRange>{{0, kRamSize}}), vm_(system_) {
    const auto& region = memory_.regions().front();
    vm_.set_memory_region(0, region.gpa, region.size, region.host);
    vm_.set_tss_and_identity_map(0xfeffd000, 0xfeffc000);
    // As every machine has (iovmm's and QEMU's): an in-kernel LAPIC is work KVM does on every entry and exit.
    vm_.create_irqchip();
    vcpu_ = std::make_unique<kvm::Vcpu>(vm_, 0);
    set_vcpu_cpuid(*vcpu_, system_, 1);
    const std::vector<uint8_t> code = loop_code(access);
    if (!memory_.write(kCodeAddress, code.data(), code.size())) throw Error("raw floor: code not in RAM");
  }

  kvm::Vcpu& vcpu() { return *vcpu_; }
  GuestMemory& memory() { return memory_; }

 private:
  kvm::System system_;
  GuestMemory memory_;
  kvm::Vm vm_;
  std::unique_ptr<kvm::Vcpu> vcpu_;
};

kvm_segment flat_segment(uint16_t selector, bool code) {
  kvm_segment s{};
  s.selector = selector;
  s.limit = 0xffffffff;
  s.type = code ? 0xb : 0x3;
  s.present = 1;
  s.dpl = selector & 3;
  s.s = 1;
  s.l = code ? 1 : 0;
  s.db = code ? 0 : 1;
  s.g = 1;
  return s;
}

// The same paging and the same instructions at either privilege level: at CPL0 on kvm_pvm, KVM's emulator runs the
// loop and walks these page tables to fetch each instruction, as it does for the bench guest's CPL0 loops.
void enter_long_mode(ScratchVm& scratch, bool user) {
  GuestMemory& memory = scratch.memory();
  // Two 2 MiB user pages, identity-mapped through PML4 -> PDPT -> PD: RAM at 0, and the one holding the MMIO address
  // (a user page too: CPL3 must reach it). Flags: present, writable, user (+ page size; + PCD|PWT for the device page,
  // as a guest maps device memory).
  constexpr uint64_t kTableFlags = 0x7;
  constexpr uint64_t kLargePageFlags = 0x87;
  constexpr uint64_t kUncachedFlags = 0x18;
  constexpr uint64_t kLargePage = 1ull << 21;
  constexpr uint64_t kPdpt = kPml4Address + 0x1000;
  constexpr uint64_t kPdRam = kPml4Address + 0x2000;
  constexpr uint64_t kPdMmio = kPml4Address + 0x3000;
  constexpr uint64_t kMmioPage = kFloorMmioAddress & ~(kLargePage - 1);
  bool ok = memory.write_obj(kPml4Address, kPdpt + kTableFlags) && memory.write_obj(kPdpt, kPdRam + kTableFlags) &&
            memory.write_obj(kPdpt + 8 * (kFloorMmioAddress >> 30), kPdMmio + kTableFlags) &&
            memory.write_obj(kPdRam, uint64_t{0} + kLargePageFlags) &&
            memory.write_obj(kPdMmio + 8 * ((kFloorMmioAddress >> 21) & 0x1ff),
                             kMmioPage + kLargePageFlags + kUncachedFlags);
  // GDT: null, kernel code, kernel data, user data, user code, 16-byte TSS descriptor.
  const uint64_t tss_low = (kTssLimit & 0xffff) | ((kTssAddress & 0xffffff) << 16) | (uint64_t{0x8b} << 40) |
                           (uint64_t{(kTssLimit >> 16) & 0xf} << 48) | (((kTssAddress >> 24) & 0xff) << 56);
  const std::array<uint64_t, 7> gdt = {0, 0x00af9a000000ffff, 0x00cf92000000ffff, 0x00cff2000000ffff,
                                       0x00affa000000ffff, tss_low, kTssAddress >> 32};
  ok = ok && memory.write_obj(kGdtAddress, gdt);
  // TSS: the I/O bitmap starts right after the 104-byte TSS and allows every port (all zero), then 0xFF.
  std::vector<uint8_t> tss(kTssLimit + 1, 0);
  tss[0x66] = kTssIoBitmapOffset & 0xff;
  tss[0x67] = kTssIoBitmapOffset >> 8;
  tss[kTssLimit] = 0xff;
  ok = ok && memory.write(kTssAddress, tss.data(), tss.size());
  if (!ok) throw Error("raw floor: page tables, GDT or TSS not in RAM");

  kvm::Vcpu& vcpu = scratch.vcpu();
  kvm_sregs sregs = vcpu.sregs();
  sregs.cs = flat_segment(user ? kUserCodeSelector : kKernelCodeSelector, true);
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss =
      flat_segment(user ? kUserDataSelector : kKernelDataSelector, false);
  sregs.tr = kvm_segment{};
  sregs.tr.base = kTssAddress;
  sregs.tr.limit = kTssLimit;
  sregs.tr.selector = kTssSelector;
  sregs.tr.type = 0xb;  // busy 64-bit TSS
  sregs.tr.present = 1;
  sregs.gdt.base = kGdtAddress;
  sregs.gdt.limit = sizeof(gdt) - 1;
  sregs.cr0 = 0x80000011;  // PG | ET | PE
  sregs.cr3 = kPml4Address;
  sregs.cr4 = 0x20;        // PAE
  sregs.efer = 0x500;      // LME | LMA
  vcpu.set_sregs(sregs);

  kvm_regs regs{};
  regs.rip = kCodeAddress;
  regs.rsp = kStackTop;
  regs.rflags = 0x3002;  // IOPL 3 as well, for backends that honour it instead of the bitmap
  vcpu.set_regs(regs);
}

// Ends a KVM_RUN that never returns, so that a backend keeping an access to itself for ever (kvm_pvm does that with
// a CPL0 vmcall) makes the variant unavailable instead of hanging the bench: at the deadline it sets immediate_exit
// and sends the measuring thread the kick signal (its handler does nothing, without SA_RESTART), and KVM_RUN
// returns EINTR.
class KvmRunDeadline {
 public:
  KvmRunDeadline(kvm::Vcpu& vcpu, std::chrono::seconds limit) {
    VcpuRunner::install_kick_signal();
    const pthread_t measuring_thread = pthread_self();
    watchdog_ = std::thread([this, &vcpu, limit, measuring_thread] {
      std::unique_lock lock(mutex_);
      if (finished_.wait_for(lock, limit, [this] { return done_; })) return;
      expired_ = true;
      vcpu.set_immediate_exit(true);
      pthread_kill(measuring_thread, SIGUSR1);  // the kick signal install_kick_signal() gave a handler
    });
  }
  ~KvmRunDeadline() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    finished_.notify_one();
    watchdog_.join();
  }
  KvmRunDeadline(const KvmRunDeadline&) = delete;
  KvmRunDeadline& operator=(const KvmRunDeadline&) = delete;

  [[nodiscard]] bool expired() {
    std::lock_guard lock(mutex_);
    return expired_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable finished_;
  bool done_ = false;
  bool expired_ = false;
  std::thread watchdog_;
};

std::string describe_exit(const kvm_run& run) {
  std::string text = fmt::format("exit reason {} ({})", run.exit_reason, exit_reason_name(run.exit_reason));
  if (run.exit_reason == KVM_EXIT_IO) {
    text += fmt::format(": {} port {:#x}", run.io.direction == KVM_EXIT_IO_OUT ? "write to" : "read of", run.io.port);
  } else if (run.exit_reason == KVM_EXIT_MMIO) {
    text += fmt::format(": MMIO {} at {:#x}", run.mmio.is_write ? "write" : "read", run.mmio.phys_addr);
  } else if (run.exit_reason == KVM_EXIT_INTERNAL_ERROR) {
    text += fmt::format(", suberror {}", run.internal.suberror);
  }
  return text;
}

// One KVM_RUN and the host's answer to its exit; nullopt when it ended in the expected access, else what happened
// instead. Answering is part of the round trip: a read's value goes where KVM copies it into the guest register on
// the next KVM_RUN.
std::optional<std::string> round_trip(kvm::Vcpu& vcpu, FloorAccess access) {
  if (int err = vcpu.run(); err != 0) return fmt::format("KVM_RUN failed: {}", std::strerror(err));
  kvm_run& run = *vcpu.run_state();
  bool expected = false;
  switch (access) {
    case FloorAccess::pio_write:
    case FloorAccess::pio_read: {
      const uint8_t direction = access == FloorAccess::pio_write ? KVM_EXIT_IO_OUT : KVM_EXIT_IO_IN;
      expected = run.exit_reason == KVM_EXIT_IO && run.io.port == kFloorPort && run.io.direction == direction;
      if (expected && direction == KVM_EXIT_IO_IN) {
        std::memset(reinterpret_cast<uint8_t*>(&run) + run.io.data_offset, kFloorReadValue & 0xff,
                    size_t{run.io.size} * run.io.count);
      }
      break;
    }
    case FloorAccess::mmio_write:
    case FloorAccess::mmio_read: {
      const uint8_t is_write = access == FloorAccess::mmio_write ? 1 : 0;
      expected = run.exit_reason == KVM_EXIT_MMIO && run.mmio.phys_addr == kFloorMmioAddress &&
                 run.mmio.is_write == is_write && run.mmio.len <= sizeof(run.mmio.data);
      if (expected && !is_write) std::memcpy(run.mmio.data, &kFloorReadValue, std::min<size_t>(run.mmio.len, 4));
      break;
    }
  }
  if (expected) return std::nullopt;
  return fmt::format("the loop ended in {} instead of {}", describe_exit(run), expected_exit(access));
}

RawFloorResult measure_variant(FloorAccess access, const std::string& mode, uint64_t round_trips, int batches) {
  RawFloorResult result;
  result.access = access;
  result.mode = mode;
  result.round_trips_per_batch = round_trips;
  try {
    ScratchVm scratch(access);
    enter_long_mode(scratch, mode == "cpl3");
    kvm::Vcpu& vcpu = scratch.vcpu();
    KvmRunDeadline deadline(vcpu, kVariantDeadline);
    auto fail = [&](const std::string& error) {
      result.error = deadline.expired() ? fmt::format("KVM_RUN did not return within {} s (KVM kept the loop to "
                                                      "itself instead of exiting for {})",
                                                      kVariantDeadline.count(), expected_exit(access))
                                        : error;
      result.cycles_per_round_trip.clear();
    };
    for (int i = 0; i < kWarmupRoundTrips; ++i) {
      if (auto error = round_trip(vcpu, access)) {
        fail(*error);
        return result;
      }
    }
    for (int batch = 0; batch < batches; ++batch) {
      const uint64_t start = __rdtsc();
      for (uint64_t i = 0; i < round_trips; ++i) {
        if (auto error = round_trip(vcpu, access)) {
          fail(*error);
          return result;
        }
      }
      const uint64_t cycles = __rdtsc() - start;
      result.cycles_per_round_trip.push_back(static_cast<double>(cycles) / static_cast<double>(round_trips));
    }
  } catch (const std::exception& e) {
    result.error = e.what();
    result.cycles_per_round_trip.clear();
  }
  return result;
}

constexpr std::array kFloorAccesses = {FloorAccess::pio_write, FloorAccess::pio_read, FloorAccess::mmio_write,
                                       FloorAccess::mmio_read};

}  // namespace

double RawFloorResult::median() const {
  if (cycles_per_round_trip.empty()) return 0;
  std::vector<double> sorted = cycles_per_round_trip;
  std::sort(sorted.begin(), sorted.end());
  const size_t mid = sorted.size() / 2;
  return sorted.size() % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

double RawFloorResult::min() const {
  return cycles_per_round_trip.empty() ? 0 : *std::min_element(cycles_per_round_trip.begin(), cycles_per_round_trip.end());
}

double RawFloorResult::max() const {
  return cycles_per_round_trip.empty() ? 0 : *std::max_element(cycles_per_round_trip.begin(), cycles_per_round_trip.end());
}

std::string_view floor_access_name(FloorAccess access) {
  switch (access) {
    case FloorAccess::pio_write: return "pio_write";
    case FloorAccess::pio_read: return "pio_read";
    case FloorAccess::mmio_write: return "mmio_write";
    case FloorAccess::mmio_read: return "mmio_read";
  }
  return "?";
}

std::string RawFloorResult::variant() const {
  if (access == FloorAccess::pio_write) return mode;
  return fmt::format("{}_{}", mode, floor_access_name(access));
}

std::vector<RawFloorResult> measure_raw_floor(uint64_t round_trips, int batches) {
  std::vector<RawFloorResult> floors;
  for (const char* mode : {"cpl3", "cpl0"}) {
    for (FloorAccess access : kFloorAccesses) floors.push_back(measure_variant(access, mode, round_trips, batches));
  }
  return floors;
}

const RawFloorResult* find_raw_floor(const std::vector<RawFloorResult>& floors, FloorAccess access,
                                     std::string_view mode) {
  for (const auto& floor : floors) {
    if (floor.access == access && floor.mode == mode) return &floor;
  }
  return nullptr;
}

std::optional<uint64_t> kvm_tsc_khz() {
  try {
    ScratchVm scratch(FloorAccess::pio_write);
    const int khz = ::ioctl(scratch.vcpu().fd(), KVM_GET_TSC_KHZ, 0);
    if (khz > 0) return static_cast<uint64_t>(khz);
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

}  // namespace iovmm::cli
