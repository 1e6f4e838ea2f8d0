#include "cli/raw_floor.h"

#include <sys/ioctl.h>
#include <x86intrin.h>

#include <algorithm>
#include <array>
#include <memory>

#include "boot/entry_state.h"
#include "common/error.h"
#include "kvm/system.h"
#include "kvm/vcpu.h"
#include "kvm/vm.h"
#include "machine/cpu_setup.h"
#include "memory/guest_memory.h"

namespace iovmm::cli {
namespace {

constexpr uint64_t kRamSize = 2 << 20;
constexpr uint64_t kCodeAddress = 0x1000;
constexpr uint64_t kTssAddress = 0x3000;
constexpr uint64_t kStackTop = 0x8000;
constexpr uint64_t kPml4Address = 0x10000;  // then the PDPT and the page directory in the next two pages
constexpr uint64_t kGdtAddress = 0x20000;
constexpr uint16_t kFloorPort = 0x3000;     // no device anywhere: the host never looks it up
constexpr int kWarmupRoundTrips = 200;

// mov dx, 0x3000 ; 1: out dx, al ; jmp 1b   — the same bytes decode identically in 32- and 64-bit mode.
constexpr std::array<uint8_t, 7> kLoopCode = {0x66, 0xba, kFloorPort & 0xff, kFloorPort >> 8, 0xee, 0xeb, 0xfd};

// 64-bit user mode, built from KVM_SET_SREGS alone. The GDT mirrors the hidden segment state so that nothing
// changes if the backend ever reloads a descriptor.
constexpr uint16_t kUserDataSelector = 0x18 | 3;
constexpr uint16_t kUserCodeSelector = 0x20 | 3;
constexpr uint16_t kTssSelector = 0x28;
constexpr uint32_t kTssIoBitmapOffset = 0x68;
constexpr uint32_t kTssLimit = kTssIoBitmapOffset + 0x10000 / 8;  // the bitmap covers every port, plus the 0xFF end byte

class ScratchVm {
 public:
  ScratchVm() : memory_(std::vector<RamRange>{{0, kRamSize}}), vm_(system_) {
    const auto& region = memory_.regions().front();
    vm_.set_memory_region(0, region.gpa, region.size, region.host);
    vm_.set_tss_and_identity_map(0xfeffd000, 0xfeffc000);
    vcpu_ = std::make_unique<kvm::Vcpu>(vm_, 0);
    set_vcpu_cpuid(*vcpu_, system_, 1);
    if (!memory_.write(kCodeAddress, kLoopCode.data(), kLoopCode.size())) throw Error("raw floor: code not in RAM");
  }

  kvm::Vcpu& vcpu() { return *vcpu_; }
  GuestMemory& memory() { return memory_; }

 private:
  kvm::System system_;
  GuestMemory memory_;
  kvm::Vm vm_;
  std::unique_ptr<kvm::Vcpu> vcpu_;
};

void enter_cpl0(ScratchVm& scratch) {
  apply_entry_state(scratch.vcpu(), boot::setup_protected_mode_entry(scratch.memory(), kCodeAddress, 0, 0));
}

kvm_segment user_segment(uint16_t selector, bool code) {
  kvm_segment s{};
  s.selector = selector;
  s.limit = 0xffffffff;
  s.type = code ? 0xb : 0x3;
  s.present = 1;
  s.dpl = 3;
  s.s = 1;
  s.l = code ? 1 : 0;
  s.db = code ? 0 : 1;
  s.g = 1;
  return s;
}

void enter_cpl3(ScratchVm& scratch) {
  GuestMemory& memory = scratch.memory();
  // One 2 MiB user page at 0, through PML4 -> PDPT -> PD. Flags: present, writable, user (+ page size).
  constexpr uint64_t kTableFlags = 0x7;
  constexpr uint64_t kLargePageFlags = 0x87;
  bool ok = memory.write_obj(kPml4Address, kPml4Address + 0x1000 + kTableFlags) &&
            memory.write_obj(kPml4Address + 0x1000, kPml4Address + 0x2000 + kTableFlags) &&
            memory.write_obj(kPml4Address + 0x2000, uint64_t{0} + kLargePageFlags);
  // GDT: null, kernel code, kernel data, user data, user code, 16-byte TSS descriptor.
  const uint64_t tss_low = (kTssLimit & 0xffff) | ((kTssAddress & 0xffffff) << 16) | (uint64_t{0x8b} << 40) |
                           (uint64_t{(kTssLimit >> 16) & 0xf} << 48) | (((kTssAddress >> 24) & 0xff) << 56);
  const std::array<uint64_t, 7> gdt = {0, 0x00209a0000000000, 0x0000920000000000, 0x00cff2000000ffff,
                                       0x00affa000000ffff, tss_low, kTssAddress >> 32};
  ok = ok && memory.write_obj(kGdtAddress, gdt);
  // TSS: the I/O bitmap starts right after the 104-byte TSS and allows every port (all zero), then 0xFF.
  std::vector<uint8_t> tss(kTssLimit + 1, 0);
  tss[0x66] = kTssIoBitmapOffset & 0xff;
  tss[0x67] = kTssIoBitmapOffset >> 8;
  tss[kTssLimit] = 0xff;
  ok = ok && memory.write(kTssAddress, tss.data(), tss.size());
  if (!ok) throw Error("raw floor: CPL3 tables not in RAM");

  kvm::Vcpu& vcpu = scratch.vcpu();
  kvm_sregs sregs = vcpu.sregs();
  sregs.cs = user_segment(kUserCodeSelector, true);
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = user_segment(kUserDataSelector, false);
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

// One KVM_RUN; nullopt when it ended in the expected port write, else what happened instead.
std::optional<std::string> round_trip(kvm::Vcpu& vcpu) {
  if (int err = vcpu.run(); err != 0) return "KVM_RUN failed: errno " + std::to_string(err);
  const kvm_run* run = vcpu.run_state();
  if (run->exit_reason != KVM_EXIT_IO || run->io.port != kFloorPort || run->io.direction != KVM_EXIT_IO_OUT) {
    return "the loop ended in exit reason " + std::to_string(run->exit_reason) + " instead of a write to port 0x3000";
  }
  return std::nullopt;
}

RawFloorResult measure_mode(const std::string& mode, uint64_t round_trips, int batches) {
  RawFloorResult result;
  result.mode = mode;
  result.round_trips_per_batch = round_trips;
  try {
    ScratchVm scratch;
    if (mode == "cpl3") {
      enter_cpl3(scratch);
    } else {
      enter_cpl0(scratch);
    }
    kvm::Vcpu& vcpu = scratch.vcpu();
    for (int i = 0; i < kWarmupRoundTrips; ++i) {
      if (auto error = round_trip(vcpu)) {
        result.error = *error;
        return result;
      }
    }
    for (int batch = 0; batch < batches; ++batch) {
      const uint64_t start = __rdtsc();
      for (uint64_t i = 0; i < round_trips; ++i) {
        if (auto error = round_trip(vcpu)) {
          result.error = *error;
          return result;
        }
      }
      const uint64_t cycles = __rdtsc() - start;
      result.cycles_per_round_trip.push_back(static_cast<double>(cycles) / static_cast<double>(round_trips));
    }
  } catch (const std::exception& e) {
    result.error = e.what();
  }
  return result;
}

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

std::vector<RawFloorResult> measure_raw_floor(uint64_t round_trips, int batches) {
  return {measure_mode("cpl3", round_trips, batches), measure_mode("cpl0", round_trips, batches)};
}

std::optional<uint64_t> kvm_tsc_khz() {
  try {
    ScratchVm scratch;
    const int khz = ::ioctl(scratch.vcpu().fd(), KVM_GET_TSC_KHZ, 0);
    if (khz > 0) return static_cast<uint64_t>(khz);
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

}  // namespace iovmm::cli
