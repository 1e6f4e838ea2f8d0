#include "memory/guest_memory.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fmt/core.h>

#include "common/error.h"

namespace iovmm {
namespace {
constexpr uint64_t kPageSize = 4096;
}

GuestMemory::GuestMemory(std::vector<RamRange> ranges) {
  std::sort(ranges.begin(), ranges.end(), [](const RamRange& a, const RamRange& b) { return a.gpa < b.gpa; });
  uint64_t previous_end = 0;
  for (const auto& r : ranges) {
    if (r.size == 0 || r.gpa % kPageSize || r.size % kPageSize || r.gpa < previous_end || r.gpa + r.size < r.gpa) {
      throw Error(fmt::format("guest memory: bad RAM range {:#x}+{:#x}", r.gpa, r.size));
    }
    previous_end = r.gpa + r.size;
    total_size_ += r.size;
  }
  if (total_size_ == 0) throw Error("guest memory: no RAM");

  memfd_ = Fd(::memfd_create("iovmm-guest-ram", MFD_CLOEXEC));
  if (!memfd_) throw_errno("guest memory: memfd_create");
  if (::ftruncate(memfd_.get(), static_cast<off_t>(total_size_)) != 0) {
    throw_errno(fmt::format("guest memory: ftruncate to {} bytes", total_size_));
  }
  void* map = ::mmap(nullptr, total_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, memfd_.get(), 0);
  if (map == MAP_FAILED) throw_errno(fmt::format("guest memory: mmap of {} bytes", total_size_));
  base_ = static_cast<uint8_t*>(map);

  uint64_t offset = 0;
  for (const auto& r : ranges) {
    regions_.push_back(Region{r.gpa, r.size, offset, base_ + offset});
    offset += r.size;
  }
}

GuestMemory::GuestMemory(Fd memfd, std::vector<MemfdRange> table) : memfd_(std::move(memfd)) {
  struct stat st {};
  if (::fstat(memfd_.get(), &st) != 0) throw_errno("guest memory: fstat of the inherited memfd");
  const auto file_size = static_cast<uint64_t>(st.st_size);
  if (table.empty()) throw Error("guest memory: empty region table");
  // Checked in file order (no two ranges share bytes of the file, together they cover it) and in guest order.
  std::sort(table.begin(), table.end(),
            [](const MemfdRange& a, const MemfdRange& b) { return a.file_offset < b.file_offset; });
  uint64_t file_end = 0;
  for (const auto& r : table) {
    if (r.size == 0 || r.gpa % kPageSize || r.size % kPageSize || r.file_offset % kPageSize ||
        r.gpa + r.size < r.gpa || r.file_offset != file_end || r.size > file_size - r.file_offset) {
      throw Error(fmt::format("guest memory: region {:#x}+{:#x} at file offset {:#x} does not fit a {}-byte memfd "
                              "laid out contiguously",
                              r.gpa, r.size, r.file_offset, file_size));
    }
    file_end += r.size;
  }
  if (file_end != file_size) {
    throw Error(fmt::format("guest memory: regions cover {} bytes of a {}-byte memfd", file_end, file_size));
  }
  std::sort(table.begin(), table.end(), [](const MemfdRange& a, const MemfdRange& b) { return a.gpa < b.gpa; });
  for (size_t i = 1; i < table.size(); ++i) {
    if (table[i].gpa < table[i - 1].gpa + table[i - 1].size) {
      throw Error(fmt::format("guest memory: regions at {:#x} and {:#x} overlap", table[i - 1].gpa, table[i].gpa));
    }
  }
  total_size_ = file_size;
  void* map = ::mmap(nullptr, total_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, memfd_.get(), 0);
  if (map == MAP_FAILED) throw_errno(fmt::format("guest memory: mmap of the inherited {}-byte memfd", total_size_));
  base_ = static_cast<uint8_t*>(map);
  for (const auto& r : table) regions_.push_back(Region{r.gpa, r.size, r.file_offset, base_ + r.file_offset});
}

GuestMemory::~GuestMemory() {
  if (base_) ::munmap(base_, total_size_);
}

const GuestMemory::Region* GuestMemory::find(uint64_t gpa) const {
  auto it = std::upper_bound(regions_.begin(), regions_.end(), gpa,
                             [](uint64_t addr, const Region& r) { return addr < r.gpa; });
  if (it == regions_.begin()) return nullptr;
  --it;
  return gpa - it->gpa < it->size ? &*it : nullptr;
}

bool GuestMemory::contains(uint64_t gpa, uint64_t len) const {
  while (len > 0) {
    const Region* r = find(gpa);
    if (!r) return false;
    uint64_t chunk = std::min(len, r->size - (gpa - r->gpa));
    gpa += chunk;
    len -= chunk;
  }
  return true;
}

bool GuestMemory::read(uint64_t gpa, void* dst, size_t len) const {
  if (!contains(gpa, len)) return false;
  auto* out = static_cast<uint8_t*>(dst);
  while (len > 0) {
    const Region* r = find(gpa);
    uint64_t chunk = std::min<uint64_t>(len, r->size - (gpa - r->gpa));
    std::memcpy(out, r->host + (gpa - r->gpa), chunk);
    out += chunk;
    gpa += chunk;
    len -= chunk;
  }
  return true;
}

bool GuestMemory::write(uint64_t gpa, const void* src, size_t len) {
  if (!contains(gpa, len)) return false;
  const auto* in = static_cast<const uint8_t*>(src);
  while (len > 0) {
    const Region* r = find(gpa);
    uint64_t chunk = std::min<uint64_t>(len, r->size - (gpa - r->gpa));
    std::memcpy(r->host + (gpa - r->gpa), in, chunk);
    in += chunk;
    gpa += chunk;
    len -= chunk;
  }
  return true;
}

std::span<uint8_t> GuestMemory::span(uint64_t gpa, uint64_t len) {
  const Region* r = find(gpa);
  if (!r || len > r->size - (gpa - r->gpa)) return {};
  return {r->host + (gpa - r->gpa), len};
}

}  // namespace iovmm
