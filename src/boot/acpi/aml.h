// An encoder for the subset of AML (ACPI 6.x chapter 20) our DSDT needs. Each function returns the encoded bytes of
// one term, and terms nest by value: scope("\\_SB", {device("COM1", {name("_HID", eisa_id("PNP0501"))})}).
// Resource descriptors (chapter 6.4) are built the same way and wrapped by resource_template().
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace iovmm::boot::aml {

using Bytes = std::vector<uint8_t>;

// PkgLength for a body of `body_size` bytes: the encoding counts itself, so it is 1 byte up to a 62-byte body,
// then 2, 3 or 4 bytes. Throws Error above the 4-byte limit (2^28 - 1).
[[nodiscard]] Bytes pkg_length(size_t body_size);

// One 4-character segment; shorter names are padded with '_'. Throws Error for characters AML does not allow.
[[nodiscard]] Bytes name_seg(std::string_view segment);
// "\\_SB.PCI0", "^FOO", "_HID": root and parent prefixes, then one, two (DualNamePrefix) or more (MultiNamePrefix)
// segments.
[[nodiscard]] Bytes name_string(std::string_view path);

// Smallest encoding: ZeroOp, OneOp, OnesOp (all bits set), then Byte/Word/DWord/QWord prefixes.
[[nodiscard]] Bytes integer(uint64_t value);
[[nodiscard]] Bytes dword(uint32_t value);  // always DWordPrefix, as EisaId compiles
// "PNP0A03" compressed to its 32-bit EISA id. Throws Error unless three letters and four hex digits.
[[nodiscard]] Bytes eisa_id(std::string_view id);
[[nodiscard]] Bytes string(std::string_view text);
[[nodiscard]] Bytes buffer(std::span<const uint8_t> contents);
[[nodiscard]] Bytes package(const std::vector<Bytes>& elements);

[[nodiscard]] Bytes name(std::string_view path, const Bytes& value);
[[nodiscard]] Bytes scope(std::string_view path, const std::vector<Bytes>& terms);
[[nodiscard]] Bytes device(std::string_view path, const std::vector<Bytes>& terms);
[[nodiscard]] Bytes method(std::string_view path, uint8_t arg_count, bool serialized, const std::vector<Bytes>& terms);
[[nodiscard]] Bytes return_value(const Bytes& value);

// Resource descriptors for _CRS.
namespace resource {
[[nodiscard]] Bytes io(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length);  // Decode16
[[nodiscard]] Bytes irq_no_flags(uint8_t irq);                                          // edge, active high
[[nodiscard]] Bytes memory32_fixed(uint32_t base, uint32_t length, bool writable);

struct InterruptFlags {
  bool level_triggered = false;
  bool active_low = false;
  bool shared = false;
};
[[nodiscard]] Bytes extended_interrupt(uint32_t irq, InterruptFlags flags);  // a ResourceConsumer

// Address space descriptors, all ResourceProducer, MinFixed, MaxFixed, PosDecode, translation 0; length is derived
// from [min, max].
[[nodiscard]] Bytes word_bus_number(uint16_t min, uint16_t max);
[[nodiscard]] Bytes word_io(uint16_t min, uint16_t max);  // EntireRange
[[nodiscard]] Bytes dword_memory(uint32_t min, uint32_t max, bool cacheable);  // ReadWrite
[[nodiscard]] Bytes qword_memory(uint64_t min, uint64_t max, bool cacheable);  // ReadWrite
}  // namespace resource

// A Buffer holding `descriptors` followed by an EndTag whose checksum makes the descriptor bytes sum to zero.
[[nodiscard]] Bytes resource_template(const std::vector<Bytes>& descriptors);

}  // namespace iovmm::boot::aml
