#include "devices/virtio/blk_request.h"

#include <fmt/core.h>

#include <algorithm>

namespace iovmm::devices::virtio {
namespace {

// Appends the bytes of `ranges` from `skip` on to `out`.
void append_from(std::span<const GuestRange> ranges, uint64_t skip, std::vector<GuestRange>& out) {
  for (const auto& range : ranges) {
    if (skip >= range.len) {
      skip -= range.len;
      continue;
    }
    out.push_back({range.gpa + skip, range.len - skip});
    skip = 0;
  }
}

}  // namespace

BlkRequestLayout split_blk_request(const GuestMemory& memory, const DescriptorChain& chain) {
  BlkRequestLayout layout;
  std::vector<GuestRange> readable;
  std::vector<GuestRange> writable;
  bool readable_after_writable = false;
  for (const auto& desc : chain.descriptors) {
    if (desc.len == 0) continue;  // carries no bytes, so it cannot break the order either
    if (desc.device_writable) {
      writable.push_back({desc.addr, desc.len});
      layout.writable_bytes += desc.len;
    } else {
      if (!writable.empty()) readable_after_writable = true;
      readable.push_back({desc.addr, desc.len});
      layout.readable_bytes += desc.len;
    }
  }

  if (!writable.empty()) {
    GuestRange& last = writable.back();
    layout.status_gpa = last.gpa + last.len - 1;
    if (--last.len == 0) writable.pop_back();
    --layout.writable_bytes;
  }
  layout.writable_data = std::move(writable);

  if (readable_after_writable) {
    layout.problem = "a device-readable descriptor follows a device-writable one";
    return layout;
  }
  virtio_blk_outhdr header{};
  if (layout.readable_bytes < sizeof(header) || !gather_guest_ranges(memory, readable, &header, sizeof(header))) {
    layout.problem =
        fmt::format("{} device-readable bytes, fewer than the {}-byte header", layout.readable_bytes, sizeof(header));
    return layout;
  }
  layout.header = header;
  layout.readable_bytes -= sizeof(header);
  append_from(readable, sizeof(header), layout.readable_data);
  return layout;
}

bool map_guest_ranges(GuestMemory& memory, std::span<const GuestRange> ranges, size_t max_iovecs,
                      std::vector<iovec>& out) {
  const auto& regions = memory.regions();
  for (const auto& range : ranges) {
    uint64_t gpa = range.gpa;
    uint64_t len = range.len;
    while (len > 0) {
      // The region holding gpa: the last one starting at or below it.
      auto it = std::upper_bound(regions.begin(), regions.end(), gpa,
                                 [](uint64_t addr, const GuestMemory::Region& r) { return addr < r.gpa; });
      if (it == regions.begin()) return false;
      --it;
      if (gpa - it->gpa >= it->size) return false;
      const uint64_t chunk = std::min(len, it->size - (gpa - it->gpa));
      const auto view = memory.span(gpa, chunk);
      if (view.empty() || out.size() == max_iovecs) return false;
      out.push_back(iovec{view.data(), view.size()});
      gpa += chunk;
      len -= chunk;
    }
  }
  return true;
}

bool gather_guest_ranges(const GuestMemory& memory, std::span<const GuestRange> ranges, void* dst, uint64_t len) {
  auto* out = static_cast<uint8_t*>(dst);
  for (const auto& range : ranges) {
    if (len == 0) break;
    const uint64_t chunk = std::min(len, range.len);
    if (!memory.read(range.gpa, out, chunk)) return false;
    out += chunk;
    len -= chunk;
  }
  return len == 0;
}

bool scatter_guest_ranges(GuestMemory& memory, std::span<const GuestRange> ranges, const void* src, uint64_t len) {
  const auto* in = static_cast<const uint8_t*>(src);
  for (const auto& range : ranges) {
    if (len == 0) break;
    const uint64_t chunk = std::min(len, range.len);
    if (!memory.write(range.gpa, in, chunk)) return false;
    in += chunk;
    len -= chunk;
  }
  return len == 0;
}

}  // namespace iovmm::devices::virtio
