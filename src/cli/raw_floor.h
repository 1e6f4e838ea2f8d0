// The raw KVM_RUN floors of `iovmm bench exits`: what one user-space exit costs with nothing around it, for each
// kind of guest access the bench's user-space rows make. A scratch VM runs the bench guest's own loop (`access;
// dec ecx; jnz back`); the host answers each exit (for a read, the value goes into kvm_run) and calls KVM_RUN again,
// with no bus lookup, no device, no statistics. Cycles per round trip, timed with the host TSC (the same constant TSC the guest reads), is
// the least any VMM's exit path can cost for that access: iovmm's user-space paths are compared against it.
//
// Accesses: a port write (`out %al,%dx`), a port read (`in %dx,%al`), an MMIO write (`mov %al,(%rbx)`) and an MMIO
// read (`mov (%rbx),%eax`) at a guest-physical address in no memory slot. Modes: CPL0 and CPL3, both in 64-bit mode
// with paging as the bench guest runs its loops, set up directly through KVM_SET_SREGS (user pages for the code and
// the MMIO address, a TSS whose I/O bitmap allows the port; no guest set-up code at all). On kvm_pvm the CPL0 loop
// runs in KVM's instruction emulator, which walks the page tables for every instruction it fetches: a floor without
// paging would be cheaper than any paged guest's loop. A variant that does not work on this KVM is reported with the reason instead of a
// number.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace iovmm::cli {

enum class FloorAccess { pio_write, pio_read, mmio_write, mmio_read };

// "pio_write", "pio_read", "mmio_write", "mmio_read".
[[nodiscard]] std::string_view floor_access_name(FloorAccess access);

struct RawFloorResult {
  FloorAccess access = FloorAccess::pio_write;
  std::string mode;                   // "cpl0" or "cpl3"
  std::optional<std::string> error;   // why this variant could not be measured
  uint64_t round_trips_per_batch = 0;
  std::vector<double> cycles_per_round_trip;  // one figure per batch
  // The variant's name in reports: the port-write floor keeps the name the only floor once had ("cpl3", "cpl0");
  // the others are "cpl3_mmio_read" and so on.
  [[nodiscard]] std::string variant() const;
  [[nodiscard]] double median() const;
  [[nodiscard]] double min() const;
  [[nodiscard]] double max() const;
};

// Measures `batches` batches of `round_trips` exits for every access in both modes: CPL3 first, then CPL0, each in
// FloorAccess order.
[[nodiscard]] std::vector<RawFloorResult> measure_raw_floor(uint64_t round_trips, int batches);

// The floor for (access, mode) among `floors`, measured or not; null if it is not there at all.
[[nodiscard]] const RawFloorResult* find_raw_floor(const std::vector<RawFloorResult>& floors, FloorAccess access,
                                                   std::string_view mode);

// The guest TSC frequency KVM reports (KVM_GET_TSC_KHZ on a scratch vCPU), or nullopt if KVM will not say.
[[nodiscard]] std::optional<uint64_t> kvm_tsc_khz();

}  // namespace iovmm::cli
