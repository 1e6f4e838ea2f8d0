// How a virtio-blk request's descriptor chain divides into header, data and status (VIRTIO 1.2, section 5.2.6).
// VIRTIO_F_VERSION_1 implies VIRTIO_F_ANY_LAYOUT (§2.6.4), so nothing here assumes framing: the 16-byte header is
// the first 16 bytes of the device-readable prefix wherever its descriptors split it, the status is the last byte of
// the device-writable suffix (it may share a descriptor with data), and the data is what lies in between, split the
// same way. The chain's buffers were checked to be guest RAM when it was popped.
#pragma once

#include <linux/virtio_blk.h>
#include <sys/uio.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "devices/virtio/queue.h"
#include "memory/guest_memory.h"

namespace iovmm::devices::virtio {

struct GuestRange {
  uint64_t gpa = 0;
  uint64_t len = 0;
};

struct BlkRequestLayout {
  // The last device-writable byte. Without one the device cannot answer at all (the chain goes back with 0 bytes).
  std::optional<uint64_t> status_gpa;
  // Host copy of the header, read once. Empty when the layout is broken; `problem` says how (for the log).
  std::optional<virtio_blk_outhdr> header;
  std::string problem;
  std::vector<GuestRange> readable_data;  // device-readable bytes after the header
  std::vector<GuestRange> writable_data;  // device-writable bytes before the status byte
  uint64_t readable_bytes = 0;
  uint64_t writable_bytes = 0;
};

// Splits `chain`. A device-readable descriptor after a device-writable one (§2.7.4.2), or fewer than 16 readable
// bytes, is a broken layout.
[[nodiscard]] BlkRequestLayout split_blk_request(const GuestMemory& memory, const DescriptorChain& chain);

// Host views of `ranges`, one iovec per piece that lies in one RAM region (GuestMemory::span works per region), for
// zero-copy I/O straight into guest memory. False when that takes more than `max_iovecs` (or a range is not RAM).
[[nodiscard]] bool map_guest_ranges(GuestMemory& memory, std::span<const GuestRange> ranges, size_t max_iovecs,
                                    std::vector<iovec>& out);

// Copies the first `len` bytes of `ranges` to `dst`; false when they hold fewer.
[[nodiscard]] bool gather_guest_ranges(const GuestMemory& memory, std::span<const GuestRange> ranges, void* dst,
                                       uint64_t len);

// Copies `len` bytes from `src` into the start of `ranges`; false when they hold fewer.
[[nodiscard]] bool scatter_guest_ranges(GuestMemory& memory, std::span<const GuestRange> ranges, const void* src,
                                        uint64_t len);

}  // namespace iovmm::devices::virtio
