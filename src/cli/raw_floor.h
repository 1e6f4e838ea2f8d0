// The raw KVM_RUN floor of `iovmm bench exits`: what one user-space port-I/O exit costs with nothing around it.
// A scratch VM runs `out %al,%dx; jmp back` forever; the host answers each KVM_EXIT_IO by calling KVM_RUN again,
// with no bus lookup, no device, no statistics. Cycles per round trip, timed with the host TSC (the same constant
// TSC the guest reads), is the least any VMM's exit path can cost: iovmm's `exit` path is compared against it.
//
// Two variants: CPL0 (32-bit protected mode; on kvm_pvm the loop itself runs in KVM's instruction emulator) and
// CPL3 (64-bit user mode set up directly through KVM_SET_SREGS: paging with user pages, a TSS whose I/O bitmap
// allows the port; no guest set-up code at all). A variant that does not work on this KVM is reported with the
// reason instead of a number.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace iovmm::cli {

struct RawFloorResult {
  std::string mode;                   // "cpl0" or "cpl3"
  std::optional<std::string> error;   // why this variant could not be measured
  uint64_t round_trips_per_batch = 0;
  std::vector<double> cycles_per_round_trip;  // one figure per batch
  [[nodiscard]] double median() const;
  [[nodiscard]] double min() const;
  [[nodiscard]] double max() const;
};

// Measures `batches` batches of `round_trips` exits in each mode.
[[nodiscard]] std::vector<RawFloorResult> measure_raw_floor(uint64_t round_trips, int batches);

// The guest TSC frequency KVM reports (KVM_GET_TSC_KHZ on a scratch vCPU), or nullopt if KVM will not say.
[[nodiscard]] std::optional<uint64_t> kvm_tsc_khz();

}  // namespace iovmm::cli
