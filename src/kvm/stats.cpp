#include "kvm/stats.h"

#include "kvm/uapi.h"
#include <unistd.h>

#include <cstddef>
#include <cstring>

#include "kvm/ioctl.h"

namespace iovmm::kvm {
namespace {
constexpr size_t kDescriptorFixedSize = sizeof(kvm_stats_desc);  // the name follows
}  // namespace

Stats::Stats(int owner_fd) : fd_(IOVMM_KVM_IOCTL(owner_fd, KVM_GET_STATS_FD, nullptr)) {
  kvm_stats_header header{};
  if (::pread(fd_.get(), &header, sizeof header, 0) != sizeof header) throw_errno("KVM stats: reading header");
  data_offset_ = header.data_offset;
  size_t stride = kDescriptorFixedSize + header.name_size;
  std::vector<uint8_t> raw(stride * header.num_desc);
  if (::pread(fd_.get(), raw.data(), raw.size(), header.desc_offset) != static_cast<ssize_t>(raw.size())) {
    throw_errno("KVM stats: reading descriptors");
  }
  for (uint32_t i = 0; i < header.num_desc; ++i) {
    const uint8_t* entry = raw.data() + i * stride;
    kvm_stats_desc fixed;
    std::memcpy(&fixed, entry, kDescriptorFixedSize);
    const char* name = reinterpret_cast<const char*>(entry + kDescriptorFixedSize);
    descriptors_.push_back(
        Descriptor{std::string(name, strnlen(name, header.name_size)), fixed.flags, fixed.offset, fixed.size});
  }
}

int Stats::find(const std::string& name) const {
  for (size_t i = 0; i < descriptors_.size(); ++i) {
    if (descriptors_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

uint64_t Stats::read(int index) const {
  if (index < 0) return 0;
  uint64_t value = 0;
  if (::pread(fd_.get(), &value, sizeof value, data_offset_ + descriptors_[index].offset) != sizeof value) return 0;
  return value;
}

std::vector<Stats::Value> Stats::read_all() const {
  std::vector<Stats::Value> values;
  for (const auto& d : descriptors_) {
    std::vector<uint64_t> data(d.count);
    uint64_t sum = 0;
    if (::pread(fd_.get(), data.data(), data.size() * 8, data_offset_ + d.offset) ==
        static_cast<ssize_t>(data.size() * 8)) {
      for (uint64_t v : data) sum += v;
    }
    values.push_back(Value{d.name, sum});
  }
  return values;
}

}  // namespace iovmm::kvm
