// An MSI-X table and pending-bit array (PCI Local Bus Specification 3.0, section 6.8.2) as a PCI function's BAR
// exposes them, with the capability's two control bits (MSI-X Enable, Function Mask). Each table entry is an
// io::MsiVector, allocated the first time the entry is unmasked while MSI-X is enabled; the vector gets the entry's
// message whenever it changes while unmasked. A signal for a masked entry sets its pending bit and is delivered
// when the entry is unmasked (or the function mask cleared).
//
// The table is plain memory to the guest: reads of any width compose its bytes, writes of any width change them
// (only the mask bit of Vector Control is writable; the reserved bits read 0). The PBA is read-only. Accesses past
// the table or the PBA read 0 and are not written.
// Not thread-safe: the owning device calls everything with its mutex held.
// Leaves out: MSI (the older capability), per-vector masking capability bits (PCIe), FLR.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "io/msi.h"

namespace iovmm::devices::virtio {

class MsixTable {
 public:
  // The PBA holds one bit per entry in 64-bit words.
  MsixTable(std::string name, io::MsiAllocator& allocator, unsigned entries);

  [[nodiscard]] unsigned size() const { return static_cast<unsigned>(entries_.size()); }
  [[nodiscard]] uint64_t table_bytes() const { return uint64_t{16} * entries_.size(); }
  [[nodiscard]] uint64_t pba_bytes() const { return uint64_t{8} * ((entries_.size() + 63) / 64); }

  // Offsets relative to the table's and the PBA's start.
  [[nodiscard]] uint64_t read_table(uint64_t offset, unsigned size) const;
  void write_table(uint64_t offset, unsigned size, uint64_t value);
  [[nodiscard]] uint64_t read_pba(uint64_t offset, unsigned size) const;

  // From the capability's Message Control register.
  void set_control(bool enabled, bool function_masked);
  [[nodiscard]] bool enabled() const { return enabled_; }
  [[nodiscard]] bool function_masked() const { return function_masked_; }

  // Raises `entry`'s interrupt, or marks it pending while masked. Ignored when MSI-X is disabled or `entry` is past
  // the table (the caller checks both to decide on INTx).
  void signal(unsigned entry);
  [[nodiscard]] bool pending(unsigned entry) const;
  [[nodiscard]] bool masked(unsigned entry) const;

  // Drops every vector (the machine is going away); later signals are ignored.
  void release();

 private:
  struct Entry {
    uint8_t bytes[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};  // Vector Control: masked from reset
    bool pending = false;
    std::unique_ptr<io::MsiVector> vector;
    std::optional<std::pair<uint64_t, uint32_t>> programmed;  // the message the vector holds
  };

  [[nodiscard]] uint32_t dword(const Entry& entry, unsigned index) const;
  // Brings entry `index`'s vector up to date with the table and delivers its pending interrupt if it may.
  void update(unsigned index);
  [[nodiscard]] bool ensure_vector(unsigned index);

  std::string name_;
  io::MsiAllocator* allocator_;  // null after release()
  std::vector<Entry> entries_;
  bool enabled_ = false;
  bool function_masked_ = false;
};

}  // namespace iovmm::devices::virtio
