// Guest RAM: one memfd (so a device process can map the same pages later), mapped once into the VMM and cut into
// guest-physical ranges. Every access from device code goes through a bounds check; no caller ever does pointer
// arithmetic on a guest-controlled address.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

#include "common/fd.h"

namespace iovmm {

struct RamRange {
  uint64_t gpa = 0;
  uint64_t size = 0;
};

// One guest-physical range of an existing memfd, as another process's GuestMemory laid it out.
struct MemfdRange {
  uint64_t gpa = 0;
  uint64_t size = 0;
  uint64_t file_offset = 0;
};

class GuestMemory {
 public:
  struct Region {
    uint64_t gpa;
    uint64_t size;
    uint64_t file_offset;  // within memfd()
    uint8_t* host;
  };

  // Ranges must be page-aligned, non-empty and non-overlapping. Throws Error on failure.
  explicit GuestMemory(std::vector<RamRange> ranges);
  // Attaches to guest RAM another process created (an iovmm-device process mapping the VMM's memfd). The table
  // must be what that process's regions() says: page-aligned, non-overlapping in guest-physical space and in the
  // file, and covering the whole file. Takes `memfd`. Throws Error on any mismatch.
  GuestMemory(Fd memfd, std::vector<MemfdRange> table);
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;
  ~GuestMemory();

  [[nodiscard]] const std::vector<Region>& regions() const { return regions_; }
  [[nodiscard]] int memfd() const { return memfd_.get(); }
  [[nodiscard]] uint64_t total_size() const { return total_size_; }

  // True when [gpa, gpa+len) is RAM, possibly spanning adjacent regions.
  [[nodiscard]] bool contains(uint64_t gpa, uint64_t len) const;

  // Copies between guest RAM and host buffers; false (and nothing copied) when any byte is outside RAM.
  [[nodiscard]] bool read(uint64_t gpa, void* dst, size_t len) const;
  [[nodiscard]] bool write(uint64_t gpa, const void* src, size_t len);

  // Host view of [gpa, gpa+len) when it lies inside one region; empty span otherwise.
  [[nodiscard]] std::span<uint8_t> span(uint64_t gpa, uint64_t len);

  template <typename T>
  [[nodiscard]] std::optional<T> read_obj(uint64_t gpa) const {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    if (!read(gpa, &value, sizeof(T))) return std::nullopt;
    return value;
  }
  template <typename T>
  [[nodiscard]] bool write_obj(uint64_t gpa, const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    return write(gpa, &value, sizeof(T));
  }

 private:
  [[nodiscard]] const Region* find(uint64_t gpa) const;

  Fd memfd_;
  uint8_t* base_ = nullptr;
  uint64_t total_size_ = 0;
  std::vector<Region> regions_;  // sorted by gpa
};

}  // namespace iovmm
