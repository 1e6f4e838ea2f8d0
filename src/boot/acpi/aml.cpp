#include "boot/acpi/aml.h"

#include <fmt/core.h>

#include <cctype>

#include "boot/acpi/append.h"
#include "common/error.h"

namespace iovmm::boot::aml {
namespace {

constexpr uint8_t kZeroOp = 0x00;
constexpr uint8_t kOneOp = 0x01;
constexpr uint8_t kNameOp = 0x08;
constexpr uint8_t kBytePrefix = 0x0A;
constexpr uint8_t kWordPrefix = 0x0B;
constexpr uint8_t kDWordPrefix = 0x0C;
constexpr uint8_t kStringPrefix = 0x0D;
constexpr uint8_t kQWordPrefix = 0x0E;
constexpr uint8_t kScopeOp = 0x10;
constexpr uint8_t kBufferOp = 0x11;
constexpr uint8_t kPackageOp = 0x12;
constexpr uint8_t kMethodOp = 0x14;
constexpr uint8_t kDualNamePrefix = 0x2E;
constexpr uint8_t kMultiNamePrefix = 0x2F;
constexpr uint8_t kExtOpPrefix = 0x5B;
constexpr uint8_t kDeviceOp = 0x82;  // after kExtOpPrefix
constexpr uint8_t kReturnOp = 0xA4;
constexpr uint8_t kOnesOp = 0xFF;

void append(Bytes& out, const Bytes& more) { append_bytes(out, more); }

template <typename T>
void append_le(Bytes& out, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

Bytes concat(const std::vector<Bytes>& parts) {
  Bytes out;
  for (const auto& p : parts) append(out, p);
  return out;
}

// opcode(s) PkgLength body: the shape of Scope, Device, Method, Package and Buffer.
Bytes with_pkg_length(const Bytes& opcode, const Bytes& body) {
  Bytes out = opcode;
  append(out, pkg_length(body.size()));
  append(out, body);
  return out;
}

// Large resource descriptors: tag, 16-bit length of what follows, then the data.
Bytes large_descriptor(uint8_t tag, const Bytes& data) {
  Bytes out{tag};
  append_le<uint16_t>(out, static_cast<uint16_t>(data.size()));
  append(out, data);
  return out;
}

constexpr uint8_t kAddressSpaceMemory = 0;
constexpr uint8_t kAddressSpaceIo = 1;
constexpr uint8_t kAddressSpaceBus = 2;
// General flags: MaxFixed (bit 3) | MinFixed (bit 2); PosDecode and ResourceProducer are the zero values.
constexpr uint8_t kProducerMinMaxFixed = 0x0C;

template <typename T>
Bytes address_space(uint8_t tag, uint8_t resource_type, uint8_t type_flags, T min, T max) {
  Bytes data{resource_type, kProducerMinMaxFixed, type_flags};
  append_le<T>(data, 0);                         // granularity
  append_le<T>(data, min);                       // range minimum
  append_le<T>(data, max);                       // range maximum
  append_le<T>(data, 0);                         // translation offset
  append_le<T>(data, static_cast<T>(max - min + 1));  // length
  return large_descriptor(tag, data);
}

}  // namespace

Bytes pkg_length(size_t body_size) {
  if (body_size + 1 <= 0x3F) return {static_cast<uint8_t>(body_size + 1)};
  // With n bytes, the low nibble goes in the lead byte and the rest in n-1 following bytes: 4 + 8(n-1) bits.
  for (size_t n = 2; n <= 4; ++n) {
    const uint64_t total = body_size + n;
    if (total < (uint64_t{1} << (4 + 8 * (n - 1)))) {
      Bytes out{static_cast<uint8_t>(((n - 1) << 6) | (total & 0xF))};
      for (size_t i = 1; i < n; ++i) out.push_back(static_cast<uint8_t>(total >> (4 + 8 * (i - 1))));
      return out;
    }
  }
  throw Error(fmt::format("AML: package of {} bytes exceeds the PkgLength limit", body_size));
}

Bytes name_seg(std::string_view segment) {
  if (segment.empty() || segment.size() > 4) throw Error(fmt::format("AML: bad name segment '{}'", segment));
  Bytes out;
  for (size_t i = 0; i < 4; ++i) {
    const char c = i < segment.size() ? segment[i] : '_';
    const bool lead_ok = (c >= 'A' && c <= 'Z') || c == '_';
    const bool ok = lead_ok || (i > 0 && c >= '0' && c <= '9');
    if (!ok) throw Error(fmt::format("AML: bad character in name segment '{}'", segment));
    out.push_back(static_cast<uint8_t>(c));
  }
  return out;
}

Bytes name_string(std::string_view path) {
  Bytes out;
  if (!path.empty() && path.front() == '\\') {
    out.push_back('\\');
    path.remove_prefix(1);
  }
  while (!path.empty() && path.front() == '^') {
    out.push_back('^');
    path.remove_prefix(1);
  }
  std::vector<Bytes> segments;
  while (!path.empty()) {
    const auto dot = path.find('.');
    segments.push_back(name_seg(path.substr(0, dot)));
    path = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
  }
  if (segments.size() == 0) {
    out.push_back(0x00);  // NullName
  } else if (segments.size() == 2) {
    out.push_back(kDualNamePrefix);
  } else if (segments.size() > 2) {
    if (segments.size() > 255) throw Error("AML: name path too long");
    out.push_back(kMultiNamePrefix);
    out.push_back(static_cast<uint8_t>(segments.size()));
  }
  append(out, concat(segments));
  return out;
}

Bytes integer(uint64_t value) {
  if (value == 0) return {kZeroOp};
  if (value == 1) return {kOneOp};
  if (value == UINT64_MAX) return {kOnesOp};
  Bytes out;
  if (value <= UINT8_MAX) {
    out.push_back(kBytePrefix);
    append_le<uint8_t>(out, static_cast<uint8_t>(value));
  } else if (value <= UINT16_MAX) {
    out.push_back(kWordPrefix);
    append_le<uint16_t>(out, static_cast<uint16_t>(value));
  } else if (value <= UINT32_MAX) {
    out.push_back(kDWordPrefix);
    append_le<uint32_t>(out, static_cast<uint32_t>(value));
  } else {
    out.push_back(kQWordPrefix);
    append_le<uint64_t>(out, value);
  }
  return out;
}

Bytes dword(uint32_t value) {
  Bytes out{kDWordPrefix};
  append_le<uint32_t>(out, value);
  return out;
}

Bytes eisa_id(std::string_view id) {
  auto is_letter = [](char c) { return c >= 'A' && c <= 'Z'; };
  if (id.size() != 7 || !is_letter(id[0]) || !is_letter(id[1]) || !is_letter(id[2])) {
    throw Error(fmt::format("AML: '{}' is not an EISA id", id));
  }
  uint32_t product = 0;
  for (size_t i = 3; i < 7; ++i) {
    if (!std::isxdigit(static_cast<unsigned char>(id[i]))) throw Error(fmt::format("AML: '{}' is not an EISA id", id));
    product = product << 4 | static_cast<uint32_t>(std::stoul(std::string(1, id[i]), nullptr, 16));
  }
  // Three 5-bit letters ('A' = 1) and the 16-bit product, stored big-endian in the DWord.
  const uint32_t vendor = static_cast<uint32_t>((id[0] - '@') << 10 | (id[1] - '@') << 5 | (id[2] - '@'));
  const uint32_t big_endian = vendor << 16 | product;
  return dword(__builtin_bswap32(big_endian));
}

Bytes string(std::string_view text) {
  Bytes out{kStringPrefix};
  for (char c : text) {
    if (c == '\0' || static_cast<unsigned char>(c) > 0x7F) throw Error("AML: strings must be ASCII without NUL");
    out.push_back(static_cast<uint8_t>(c));
  }
  out.push_back(0);
  return out;
}

Bytes buffer(std::span<const uint8_t> contents) {
  Bytes body = integer(contents.size());
  append_bytes(body, contents);
  return with_pkg_length({kBufferOp}, body);
}

Bytes package(const std::vector<Bytes>& elements) {
  if (elements.size() > 255) throw Error("AML: Package with more than 255 elements needs VarPackage");
  Bytes body{static_cast<uint8_t>(elements.size())};
  append(body, concat(elements));
  return with_pkg_length({kPackageOp}, body);
}

Bytes name(std::string_view path, const Bytes& value) {
  Bytes out{kNameOp};
  append(out, name_string(path));
  append(out, value);
  return out;
}

Bytes scope(std::string_view path, const std::vector<Bytes>& terms) {
  Bytes body = name_string(path);
  append(body, concat(terms));
  return with_pkg_length({kScopeOp}, body);
}

Bytes device(std::string_view path, const std::vector<Bytes>& terms) {
  Bytes body = name_string(path);
  append(body, concat(terms));
  return with_pkg_length({kExtOpPrefix, kDeviceOp}, body);
}

Bytes method(std::string_view path, uint8_t arg_count, bool serialized, const std::vector<Bytes>& terms) {
  if (arg_count > 7) throw Error("AML: a method takes at most 7 arguments");
  Bytes body = name_string(path);
  body.push_back(static_cast<uint8_t>(arg_count | (serialized ? 0x08 : 0)));
  append(body, concat(terms));
  return with_pkg_length({kMethodOp}, body);
}

Bytes return_value(const Bytes& value) {
  Bytes out{kReturnOp};
  append(out, value);
  return out;
}

namespace resource {

Bytes io(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length) {
  Bytes out{0x47, 0x01};  // small item 0x08, length 7; information: Decode16
  append_le<uint16_t>(out, min);
  append_le<uint16_t>(out, max);
  out.push_back(alignment);
  out.push_back(length);
  return out;
}

Bytes irq_no_flags(uint8_t irq) {
  if (irq > 15) throw Error(fmt::format("AML: IRQ descriptor cannot describe IRQ {}", irq));
  Bytes out{0x22};  // small item 0x04, length 2: no information byte
  append_le<uint16_t>(out, static_cast<uint16_t>(1u << irq));
  return out;
}

Bytes memory32_fixed(uint32_t base, uint32_t length, bool writable) {
  Bytes data{static_cast<uint8_t>(writable ? 1 : 0)};
  append_le<uint32_t>(data, base);
  append_le<uint32_t>(data, length);
  return large_descriptor(0x86, data);
}

Bytes extended_interrupt(uint32_t irq, InterruptFlags flags) {
  // Bit 0 consumer, bit 1 edge (1) / level (0), bit 2 active low, bit 3 shared.
  const uint8_t vector_flags = static_cast<uint8_t>(0x01 | (flags.level_triggered ? 0 : 0x02) |
                                                    (flags.active_low ? 0x04 : 0) | (flags.shared ? 0x08 : 0));
  Bytes data{vector_flags, 1};
  append_le<uint32_t>(data, irq);
  return large_descriptor(0x89, data);
}

Bytes word_bus_number(uint16_t min, uint16_t max) {
  return address_space<uint16_t>(0x88, kAddressSpaceBus, 0, min, max);
}

Bytes word_io(uint16_t min, uint16_t max) {
  constexpr uint8_t kEntireRange = 0x03;
  return address_space<uint16_t>(0x88, kAddressSpaceIo, kEntireRange, min, max);
}

// Memory type-specific flags: bit 0 read/write, bits 1-2 cacheability (0 non-cacheable, 1 cacheable).
Bytes dword_memory(uint32_t min, uint32_t max, bool cacheable) {
  return address_space<uint32_t>(0x87, kAddressSpaceMemory, static_cast<uint8_t>(0x01 | (cacheable ? 0x02 : 0)), min,
                                 max);
}

Bytes qword_memory(uint64_t min, uint64_t max, bool cacheable) {
  return address_space<uint64_t>(0x8A, kAddressSpaceMemory, static_cast<uint8_t>(0x01 | (cacheable ? 0x02 : 0)), min,
                                 max);
}

}  // namespace resource

Bytes resource_template(const std::vector<Bytes>& descriptors) {
  Bytes contents = concat(descriptors);
  contents.push_back(0x79);  // EndTag, small item 0x0F, length 1
  uint8_t sum = 0;
  for (uint8_t b : contents) sum = static_cast<uint8_t>(sum + b);
  contents.push_back(static_cast<uint8_t>(-sum));
  return buffer(contents);
}

}  // namespace iovmm::boot::aml
