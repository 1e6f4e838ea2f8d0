// KVM's binary statistics (KVM_GET_STATS_FD), for a VM or a vCPU: read without any lock on the VM or vCPU, so
// another thread can watch a vCPU that is inside KVM_RUN.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/fd.h"

namespace iovmm::kvm {

class Stats {
 public:
  struct Descriptor {
    std::string name;
    uint32_t flags;
    uint32_t offset;  // bytes into the data block
    uint16_t count;   // number of u64 values (histograms have several)
  };
  struct Value {
    std::string name;
    uint64_t value;  // histograms are summed
  };

  // `owner_fd` is a VM or vCPU fd.
  explicit Stats(int owner_fd);

  [[nodiscard]] const std::vector<Descriptor>& descriptors() const { return descriptors_; }
  // Index of `name` in descriptors(), or -1.
  [[nodiscard]] int find(const std::string& name) const;
  // One pread of a single value; 0 if index is -1.
  [[nodiscard]] uint64_t read(int index) const;
  [[nodiscard]] std::vector<Value> read_all() const;

 private:
  Fd fd_;
  uint32_t data_offset_ = 0;
  std::vector<Descriptor> descriptors_;
};

}  // namespace iovmm::kvm
