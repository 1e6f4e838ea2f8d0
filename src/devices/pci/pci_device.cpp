#include "devices/pci/pci_device.h"

#include <fmt/core.h>

#include <bit>
#include <mutex>

#include "common/error.h"
#include "common/log.h"

namespace iovmm::devices {

using namespace pci_config;

namespace {

constexpr unsigned kBarRegionEnd = kBar0 + 4 * kBarCount;  // 0x28
constexpr uint64_t kIoSpaceEnd = 0x10000;                  // x86 port space: 64 KiB
constexpr uint32_t kBarIoIndicator = 0x1;
constexpr uint32_t kBarMem64Indicator = 0x4;
constexpr uint32_t kBarPrefetchable = 0x8;

void put_le(std::array<uint8_t, kSize>& bytes, unsigned offset, uint64_t value, unsigned width) {
  for (unsigned i = 0; i < width; ++i) bytes[offset + i] = static_cast<uint8_t>(value >> (8 * i));
}

[[nodiscard]] bool valid_config_access(unsigned offset, unsigned size) {
  return (size == 1 || size == 2 || size == 4) && offset < kSize && size <= kSize - offset;
}

void validate_bars(const std::string& name, const std::vector<BarSpec>& bars) {
  std::array<bool, kBarCount> used{};
  for (const auto& bar : bars) {
    unsigned slots = bar.kind == BarKind::mem64 ? 2 : 1;
    if (bar.index + slots > kBarCount) {
      throw Error(fmt::format("{}: BAR {} does not fit in six slots", name, bar.index));
    }
    for (unsigned s = bar.index; s < bar.index + slots; ++s) {
      if (used[s]) throw Error(fmt::format("{}: BAR slot {} declared twice", name, s));
      used[s] = true;
    }
    uint64_t min_size = bar.kind == BarKind::io ? 4 : 16;
    uint64_t max_size = bar.kind == BarKind::io ? 0x10000 : bar.kind == BarKind::mem32 ? (1ull << 31) : (1ull << 63);
    if (!std::has_single_bit(bar.size) || bar.size < min_size || bar.size > max_size) {
      throw Error(fmt::format("{}: BAR {} size {:#x} must be a power of two in [{:#x}, {:#x}]", name, bar.index,
                              bar.size, min_size, max_size));
    }
    if (bar.kind == BarKind::io && bar.prefetchable) {
      throw Error(fmt::format("{}: I/O BAR {} cannot be prefetchable", name, bar.index));
    }
  }
}

}  // namespace

PciDevice::PciDevice(std::string name, const PciIdentity& identity, std::vector<BarSpec> bars)
    : io::Device(std::move(name)), bars_(std::move(bars)) {
  validate_bars(this->name(), bars_);
  put_le(config_, kVendorId, identity.vendor_id, 2);
  put_le(config_, kDeviceId, identity.device_id, 2);
  put_le(config_, kStatus, identity.status & static_cast<uint16_t>(~kStatusWriteOneToClear), 2);
  config_[kRevision] = identity.revision;
  put_le(config_, kClassCode, identity.class_code, 3);
  put_le(config_, kSubsystemVendorId, identity.subsystem_vendor_id, 2);
  put_le(config_, kSubsystemId, identity.subsystem_id, 2);
  config_[kInterruptPin] = identity.interrupt_pin;

  put_le(writable_, kCommand, kCommandWritable, 2);
  writable_[kCacheLineSize] = 0xFF;
  writable_[kInterruptLine] = 0xFF;
}

const BarSpec* PciDevice::bar_spec(unsigned bar) const {
  for (const auto& spec : bars_) {
    if (spec.index == bar) return &spec;
  }
  return nullptr;
}

uint64_t PciDevice::bar_address(unsigned bar) const { return bar < kBarCount ? bar_address_[bar] : 0; }

std::optional<uint64_t> PciDevice::bar_decode_base(unsigned bar) const {
  const BarSpec* spec = bar_spec(bar);
  if (!spec) return std::nullopt;
  uint16_t command = static_cast<uint16_t>(config_[kCommand] | (config_[kCommand + 1] << 8));
  uint16_t decode_bit = spec->kind == BarKind::io ? kCommandIo : kCommandMemory;
  if (!(command & decode_bit)) return std::nullopt;
  uint64_t base = bar_address_[bar];
  uint64_t last = base + spec->size - 1;
  // Address 0 means "not assigned"; a BAR reaching the top of its space holds a sizing pattern, not an address
  // (the same rule QEMU applies, so a guest sizing a live BAR never maps it over the top of memory).
  if (base == 0 || last < base) return std::nullopt;
  switch (spec->kind) {
    case BarKind::io:
      if (last >= kIoSpaceEnd) return std::nullopt;
      break;
    case BarKind::mem32:
      if (last >= UINT32_MAX) return std::nullopt;
      break;
    case BarKind::mem64:
      if (last == UINT64_MAX) return std::nullopt;
      break;
  }
  return base;
}

uint32_t PciDevice::class_code() const {
  return config_[kClassCode] | (config_[kClassCode + 1] << 8) | (config_[kClassCode + 2] << 16);
}

int PciDevice::bar_slot_owner(unsigned slot) const {
  for (const auto& spec : bars_) {
    if (spec.index == slot || (spec.kind == BarKind::mem64 && spec.index + 1 == slot)) {
      return static_cast<int>(spec.index);
    }
  }
  return -1;
}

uint8_t PciDevice::bar_register_byte(unsigned offset) const {
  unsigned slot = (offset - kBar0) / 4;
  int owner = bar_slot_owner(slot);
  if (owner < 0) return 0;  // unimplemented BAR: hardwired to zero, so sizing reports "no BAR"
  const BarSpec& spec = *bar_spec(static_cast<unsigned>(owner));
  uint64_t address = bar_address_[spec.index];
  uint32_t reg = 0;
  if (slot == spec.index + 1) {
    reg = static_cast<uint32_t>(address >> 32);
  } else if (spec.kind == BarKind::io) {
    reg = static_cast<uint32_t>(address) | kBarIoIndicator;
  } else {
    reg = static_cast<uint32_t>(address) | (spec.kind == BarKind::mem64 ? kBarMem64Indicator : 0) |
          (spec.prefetchable ? kBarPrefetchable : 0);
  }
  return static_cast<uint8_t>(reg >> (8 * (offset % 4)));
}

void PciDevice::write_bar_register_bytes(unsigned dword_offset, uint32_t value, uint32_t byte_mask) {
  unsigned slot = (dword_offset - kBar0) / 4;
  int owner = bar_slot_owner(slot);
  if (owner < 0) return;
  const BarSpec& spec = *bar_spec(static_cast<unsigned>(owner));
  uint32_t current = 0;
  for (unsigned i = 0; i < 4; ++i) current |= uint32_t{bar_register_byte(dword_offset + i)} << (8 * i);
  uint32_t merged = (current & ~byte_mask) | (value & byte_mask);
  // The low address bits below the BAR's size are hardwired to zero: that is what makes all-ones sizing work.
  uint64_t address_mask = ~(spec.size - 1);
  uint64_t& address = bar_address_[spec.index];
  if (slot == spec.index + 1) {
    address = ((uint64_t{merged} << 32) & address_mask) | (address & 0xFFFFFFFFull);
  } else {
    uint32_t flag_bits = spec.kind == BarKind::io ? 0x3u : 0xFu;
    uint64_t low = merged & ~flag_bits & address_mask & 0xFFFFFFFFull;
    address = (spec.kind == BarKind::mem64 ? (address & ~0xFFFFFFFFull) : 0) | low;
  }
}

uint32_t PciDevice::read_header(unsigned offset, unsigned size) const {
  uint32_t value = 0;
  for (unsigned i = 0; i < size; ++i) {
    unsigned byte_offset = offset + i;
    uint8_t byte = (byte_offset >= kBar0 && byte_offset < kBarRegionEnd) ? bar_register_byte(byte_offset)
                                                                         : config_[byte_offset];
    value |= uint32_t{byte} << (8 * i);
  }
  return value;
}

void PciDevice::write_header(unsigned offset, unsigned size, uint32_t value) {
  bool decode_may_change = false;
  std::array<uint32_t, kBarCount> bar_values{};
  std::array<uint32_t, kBarCount> bar_masks{};
  for (unsigned i = 0; i < size; ++i) {
    unsigned byte_offset = offset + i;
    auto byte = static_cast<uint8_t>(value >> (8 * i));
    if (byte_offset >= kBar0 && byte_offset < kBarRegionEnd) {
      unsigned slot = (byte_offset - kBar0) / 4;
      unsigned lane = byte_offset % 4;
      bar_values[slot] |= uint32_t{byte} << (8 * lane);
      bar_masks[slot] |= 0xFFu << (8 * lane);
      decode_may_change = true;
    } else if (byte_offset == kStatus || byte_offset == kStatus + 1) {
      uint8_t clearable = static_cast<uint8_t>(kStatusWriteOneToClear >> (8 * (byte_offset - kStatus)));
      config_[byte_offset] &= static_cast<uint8_t>(~(byte & clearable));
    } else {
      uint8_t writable = writable_[byte_offset];
      config_[byte_offset] = static_cast<uint8_t>((config_[byte_offset] & ~writable) | (byte & writable));
      if (byte_offset == kCommand || byte_offset == kCommand + 1) decode_may_change = true;
    }
  }
  for (unsigned slot = 0; slot < kBarCount; ++slot) {
    if (bar_masks[slot]) write_bar_register_bytes(kBar0 + 4 * slot, bar_values[slot], bar_masks[slot]);
  }
  if (decode_may_change) {
    publish_bar_changes();
    update_intx();
  }
}

void PciDevice::connect_intx(std::shared_ptr<io::IrqLine> line, uint8_t gsi) {
  std::lock_guard lock(mutex());
  intx_line_ = std::move(line);
  config_[kInterruptLine] = gsi;
  update_intx();
}

void PciDevice::set_intx(bool pending) {
  intx_pending_ = pending;
  update_intx();
}

void PciDevice::update_intx() {
  if (intx_pending_) {
    config_[kStatus] |= kStatusInterrupt;
  } else {
    config_[kStatus] &= static_cast<uint8_t>(~kStatusInterrupt);
  }
  uint16_t command = static_cast<uint16_t>(config_[kCommand] | (config_[kCommand + 1] << 8));
  bool assert_pin = intx_pending_ && !(command & kCommandIntxDisable) && config_[kInterruptPin] != 0;
  if (assert_pin != intx_asserted_ && intx_line_) intx_line_->set_level(assert_pin);
  intx_asserted_ = assert_pin;
}

uint32_t PciDevice::config_read(unsigned offset, unsigned size) {
  if (!valid_config_access(offset, size)) {
    IOVMM_LOG_RATELIMITED("{}: config read of {} bytes at {:#x} is invalid: all-ones", name(), size, offset);
    return size >= 4 ? 0xFFFFFFFFu : static_cast<uint32_t>(io::size_mask(size));
  }
  if (offset + size <= kDeviceSpecific) return read_header(offset, size);
  if (offset >= kDeviceSpecific) return config_read_extra(offset, size) & static_cast<uint32_t>(io::size_mask(size));
  // Straddles the end of the header (only possible for direct callers): byte by byte.
  uint32_t value = 0;
  for (unsigned i = 0; i < size; ++i) value |= config_read(offset + i, 1) << (8 * i);
  return value;
}

void PciDevice::config_write(unsigned offset, unsigned size, uint32_t value) {
  if (!valid_config_access(offset, size)) {
    IOVMM_LOG_RATELIMITED("{}: config write of {} bytes at {:#x} is invalid: ignored", name(), size, offset);
    return;
  }
  value &= static_cast<uint32_t>(io::size_mask(size));
  if (offset + size <= kDeviceSpecific) return write_header(offset, size, value);
  if (offset >= kDeviceSpecific) return config_write_extra(offset, size, value);
  for (unsigned i = 0; i < size; ++i) config_write(offset + i, 1, (value >> (8 * i)) & 0xFF);
}

uint32_t PciDevice::config_read_extra(unsigned offset, unsigned size) {
  uint32_t value = 0;
  for (unsigned i = 0; i < size; ++i) value |= uint32_t{config_[offset + i]} << (8 * i);
  return value;
}

void PciDevice::config_write_extra(unsigned offset, unsigned size, uint32_t value) {
  for (unsigned i = 0; i < size; ++i) {
    auto byte = static_cast<uint8_t>(value >> (8 * i));
    uint8_t writable = writable_[offset + i];
    config_[offset + i] = static_cast<uint8_t>((config_[offset + i] & ~writable) | (byte & writable));
  }
}

uint8_t PciDevice::add_capability(uint8_t id, std::span<const uint8_t> body, std::span<const uint8_t> writable_mask) {
  if (!writable_mask.empty() && writable_mask.size() != body.size()) {
    throw Error(fmt::format("{}: capability {:#x}: writable mask length differs from the body", name(), id));
  }
  std::lock_guard lock(mutex());
  unsigned offset = next_capability_offset_;
  if (offset + 2 + body.size() > kSize) {
    throw Error(fmt::format("{}: no room for capability {:#x} ({} bytes) in configuration space", name(), id,
                            body.size() + 2));
  }
  config_[offset] = id;
  config_[offset + 1] = 0;  // end of list until another capability follows
  for (size_t i = 0; i < body.size(); ++i) {
    config_[offset + 2 + i] = body[i];
    writable_[offset + 2 + i] = writable_mask.empty() ? 0 : writable_mask[i];
  }
  if (last_capability_ == 0) {
    config_[kCapabilitiesPointer] = static_cast<uint8_t>(offset);
  } else {
    config_[last_capability_ + 1] = static_cast<uint8_t>(offset);
  }
  config_[kStatus] |= kStatusCapabilityList;
  last_capability_ = static_cast<uint8_t>(offset);
  // Capabilities start on dword boundaries (the low two bits of every pointer are reserved).
  next_capability_offset_ = static_cast<uint16_t>((offset + 2 + body.size() + 3) & ~size_t{3});
  return static_cast<uint8_t>(offset);
}

void PciDevice::set_bar_observer(BarObserver observer) {
  std::lock_guard lock(mutex());
  observer_ = std::move(observer);
  if (!observer_) return;
  // Bring a late observer up to date with BARs that already decode.
  for (const auto& spec : bars_) {
    if (published_[spec.index]) observer_(*this, spec.index, std::nullopt, published_[spec.index]);
  }
}

void PciDevice::set_multifunction(bool multifunction) {
  std::lock_guard lock(mutex());
  if (multifunction) {
    config_[kHeaderType] |= kHeaderTypeMultiFunction;
  } else {
    config_[kHeaderType] &= static_cast<uint8_t>(~kHeaderTypeMultiFunction);
  }
}

void PciDevice::publish_bar_changes() {
  for (const auto& spec : bars_) {
    std::optional<uint64_t> now = bar_decode_base(spec.index);
    std::optional<uint64_t> before = published_[spec.index];
    if (now == before) continue;
    published_[spec.index] = now;
    if (observer_) observer_(*this, spec.index, before, now);
  }
}

uint64_t PciDevice::read(unsigned region, uint64_t offset, unsigned size) {
  if (region < pci_config::kBarCount && !bar_spec(region)) return ~0ull;
  return bar_read(region, offset, size);
}

void PciDevice::write(unsigned region, uint64_t offset, unsigned size, uint64_t value) {
  if (region < pci_config::kBarCount && !bar_spec(region)) return;
  bar_write(region, offset, size, value);
}

uint64_t PciDevice::bar_read(unsigned, uint64_t, unsigned) { return ~0ull; }
void PciDevice::bar_write(unsigned, uint64_t, unsigned, uint64_t) {}

}  // namespace iovmm::devices
