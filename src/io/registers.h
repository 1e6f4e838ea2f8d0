// A device's register table: each register declared once, with what an access to it does. The dispatch layer reads
// it to decide which paths are legal for a register (a latch may be coalesced, a doorbell may be an ioeventfd, a
// constant may be read without the device lock) and to name registers in statistics. The device's read/write code
// is the same whichever path carries the access.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace iovmm::io {

enum class Access : uint8_t { ro, wo, rw, w1c, w1s };

// What an access to the register does, which decides the paths it may take.
enum class Effect : uint8_t {
  latch,           // a write only stores a value that a later access acts on: coalescable
  doorbell,        // a write only signals work (the value is an index or ignored): may become an ioeventfd
  read_sensitive,  // a read changes state (clears an interrupt, pops a FIFO): reads must reach the device in order
  synchronous,     // an access acts at once and its effect may be observed by the very next access: exit only
  constant,        // reads return the same value for the device's lifetime: may be answered without the lock
};

// How an access reached the device.
enum class Path : uint8_t { exit, coalesced, ioeventfd, ioregionfd, hypercall, fastpath };
inline constexpr unsigned kPathCount = 6;

struct Register {
  std::string_view name;
  uint64_t offset;
  unsigned width;  // bytes covered by the register
  Access access;
  Effect effect;
  // The value after power-on or a device reset. A `constant` keeps it for the device's lifetime, which is what the
  // fastpath answers from the table without asking the device.
  uint64_t reset_value = 0;
  // The device answers reads of this register without its lock (atomics or a seqlock): `fastpath` is legal.
  bool lockless_read = false;
  // A doorbell bound to `ioeventfd` becomes one ioeventfd per value 0..n-1 (datamatch: virtio's QueueNotify, whose
  // value is the queue index) when n > 0, else one wildcard ioeventfd.
  uint16_t datamatch_values = 0;
  // What a wildcard doorbell's signals deliver as the written value: KVM does not keep the values it swallowed.
  uint64_t doorbell_value = 0;
  // The device's own tag for the row (a value of its register enum): what its read/write code switches on once the
  // row is found, so that offsets are written in the table and nowhere else.
  uint16_t id = 0;

  [[nodiscard]] constexpr bool covers(uint64_t off, unsigned size) const {
    return off >= offset && off - offset < width && size <= width - (off - offset);
  }
};

// The registers of one of a device's windows (`region` as in Device::read/write).
struct RegisterBlock {
  unsigned region;
  std::string_view name;  // "bar0", "mmio", "pio": names the window in --device options
  std::span<const Register> registers;
};

[[nodiscard]] constexpr std::string_view to_string(Path path) {
  constexpr std::string_view names[] = {"exit", "coalesced", "ioeventfd", "ioregionfd", "hypercall", "fastpath"};
  return names[static_cast<unsigned>(path)];
}
[[nodiscard]] std::optional<Path> path_from_string(std::string_view text);
[[nodiscard]] std::string_view to_string(Effect effect);

// The register of `block` that contains [offset, offset+size), if any.
[[nodiscard]] const Register* find_register(std::span<const Register> registers, uint64_t offset, unsigned size);

}  // namespace iovmm::io
