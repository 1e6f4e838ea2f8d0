// The input format of fuzz_platform_registers, shared with the seed writer so seeds and target cannot drift apart.
// An input is a sequence of fixed-size records (a short tail is ignored); fixed size keeps libFuzzer's mutations and
// crossovers meaningful (a record stays a record).
#pragma once

#include <cstddef>
#include <cstdint>

namespace iovmm::fuzz {

// What a record aims at. Device targets are relative to the device window's current base, so the fuzzer does not
// have to rediscover addresses (and PCI BAR targets follow the BAR when the guest moves it).
enum Target : uint8_t {
  kUart = 0,       // pio 0x3F8
  kDebugExit,      // pio 0xF4
  kFwCfg,          // pio 0x510
  kAcpiPm,         // pio 0x600
  kPciConfig,      // pio 0xCF8
  kBarIo,          // test device BAR0 (I/O)
  kBarMem32,       // test device BAR1 (32-bit memory)
  kBarMem64,       // test device BAR2 (64-bit prefetchable memory)
  kBarSmall,       // test device BAR4 (16-byte 32-bit memory)
  kRawPio,         // pio address = offset (the whole 32-bit field: ports beyond 0xFFFF must be unmapped too)
  kRawMmio,        // mmio address = high << 32 | offset
  kHostUartInput,  // host side: the console feeds the value's low `repeat` bytes to COM1 (interleaves with the guest)
  kHostPowerButton,  // host side: the power button is pressed
  kTargetCount,
};

struct Record {
  uint8_t target;  // % kTargetCount
  uint8_t op;      // bit 0: write; bits 1..4: index into kWidths; bits 5..7: repeat count - 1 (rep ins/outs)
  uint8_t tick;    // advance the fake clock by tick * kTickNs before the access (the ACPI PM timer reads it)
  uint8_t high;    // kRawMmio: address bits 32..39
  int32_t offset;  // from the target's base (may be negative or past the window's end)
  uint64_t value;  // written value (low bytes), or the bytes of host input
};
static_assert(sizeof(Record) == 16);

// Widths as the bus sees them: KVM gives 1, 2 or 4 for port I/O and 1..8 for MMIO; the rest must be refused cleanly.
inline constexpr unsigned kWidths[16] = {1, 2, 4, 8, 1, 2, 4, 1, 0, 3, 5, 6, 7, 9, 16, 0x80000000u};
inline constexpr uint64_t kTickNs = 10'000'000;  // 255 ticks > 2.34 s, one flip of the PM timer's bit 23

[[nodiscard]] constexpr uint8_t make_op(bool write, unsigned width_index, unsigned repeat = 1) {
  return static_cast<uint8_t>((write ? 1 : 0) | (width_index & 0xF) << 1 | ((repeat - 1) & 7) << 5);
}
[[nodiscard]] constexpr bool op_is_write(uint8_t op) { return op & 1; }
[[nodiscard]] constexpr unsigned op_width(uint8_t op) { return kWidths[(op >> 1) & 0xF]; }
[[nodiscard]] constexpr unsigned op_repeat(uint8_t op) { return ((op >> 5) & 7) + 1; }

// Width indices with the usual meaning, for seeds.
inline constexpr unsigned kW1 = 0, kW2 = 1, kW4 = 2, kW8 = 3, kW0 = 8, kW3 = 9, kW16 = 14;

// The test device's slot, so seeds can address its configuration space through 0xCF8.
inline constexpr unsigned kTestDeviceSlot = 3;
[[nodiscard]] constexpr uint32_t config_address(unsigned slot, unsigned function, unsigned reg) {
  return 0x80000000u | slot << 11 | function << 8 | (reg & 0xFC);
}

}  // namespace iovmm::fuzz
