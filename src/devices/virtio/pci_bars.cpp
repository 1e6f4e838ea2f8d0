// virtio-pci's BAR register logic: the modern BAR (common configuration, ISR, device configuration, notify), the
// MSI-X BAR and the legacy I/O BAR. Layout and access rules: pci.h.
#include <linux/virtio_pci.h>

#include <array>
#include <span>

#include "common/log.h"
#include "devices/virtio/pci.h"

namespace iovmm::devices::virtio {
namespace {

// A register as a byte range; reads of any width compose bytes from the fields they touch.
struct Field {
  uint16_t offset;
  uint8_t width;
};

constexpr std::array<Field, 19> kCommonFields = {{
    {VIRTIO_PCI_COMMON_DFSELECT, 4}, {VIRTIO_PCI_COMMON_DF, 4},        {VIRTIO_PCI_COMMON_GFSELECT, 4},
    {VIRTIO_PCI_COMMON_GF, 4},       {VIRTIO_PCI_COMMON_MSIX, 2},      {VIRTIO_PCI_COMMON_NUMQ, 2},
    {VIRTIO_PCI_COMMON_STATUS, 1},   {VIRTIO_PCI_COMMON_CFGGENERATION, 1}, {VIRTIO_PCI_COMMON_Q_SELECT, 2},
    {VIRTIO_PCI_COMMON_Q_SIZE, 2},   {VIRTIO_PCI_COMMON_Q_MSIX, 2},    {VIRTIO_PCI_COMMON_Q_ENABLE, 2},
    {VIRTIO_PCI_COMMON_Q_NOFF, 2},   {VIRTIO_PCI_COMMON_Q_DESCLO, 4},  {VIRTIO_PCI_COMMON_Q_DESCHI, 4},
    {VIRTIO_PCI_COMMON_Q_AVAILLO, 4}, {VIRTIO_PCI_COMMON_Q_AVAILHI, 4}, {VIRTIO_PCI_COMMON_Q_USEDLO, 4},
    {VIRTIO_PCI_COMMON_Q_USEDHI, 4},
}};
static_assert(VIRTIO_PCI_COMMON_Q_USEDHI + 4 == sizeof(virtio_pci_common_cfg));

constexpr std::array<Field, 10> kLegacyFields = {{
    {VIRTIO_PCI_HOST_FEATURES, 4}, {VIRTIO_PCI_GUEST_FEATURES, 4}, {VIRTIO_PCI_QUEUE_PFN, 4},
    {VIRTIO_PCI_QUEUE_NUM, 2},     {VIRTIO_PCI_QUEUE_SEL, 2},      {VIRTIO_PCI_QUEUE_NOTIFY, 2},
    {VIRTIO_PCI_STATUS, 1},        {VIRTIO_PCI_ISR, 1},            {VIRTIO_MSI_CONFIG_VECTOR, 2},
    {VIRTIO_MSI_QUEUE_VECTOR, 2},
}};

const Field* field_at(std::span<const Field> fields, uint64_t byte) {
  for (const auto& field : fields) {
    if (byte >= field.offset && byte < uint64_t{field.offset} + field.width) return &field;
  }
  return nullptr;
}

// Reads [offset, offset+size) byte by byte, calling `read_field` once for each field it touches.
template <typename ReadField>
uint64_t compose(std::span<const Field> fields, uint64_t offset, unsigned size, ReadField&& read_field) {
  uint64_t value = 0;
  const Field* current = nullptr;
  uint64_t current_value = 0;
  for (unsigned i = 0; i < size; ++i) {
    const Field* field = field_at(fields, offset + i);
    if (!field) continue;
    if (field != current) {
      current = field;
      current_value = read_field(field->offset);
    }
    value |= ((current_value >> (8 * (offset + i - field->offset))) & 0xFF) << (8 * i);
  }
  return value;
}

const Field* exact_field(std::span<const Field> fields, uint64_t offset, unsigned size) {
  const Field* field = field_at(fields, offset);
  return field && field->offset == offset && field->width == size ? field : nullptr;
}

}  // namespace

uint64_t VirtioPci::bar_read(unsigned bar, uint64_t offset, unsigned size) {
  const BarSpec* spec = bar_spec(bar);
  if (!spec || !io::valid_access_size(size) || offset >= spec->size || size > spec->size - offset) {
    return io::size_mask(size);
  }
  switch (bar) {
    case kModernBar: return modern_read(offset, size);
    case kMsixBar: return msix_read(offset, size);
    case kLegacyBar: return legacy_read(offset, size);
    default: return io::size_mask(size);
  }
}

void VirtioPci::bar_write(unsigned bar, uint64_t offset, unsigned size, uint64_t value) {
  const BarSpec* spec = bar_spec(bar);
  if (!spec || !io::valid_access_size(size) || offset >= spec->size || size > spec->size - offset) return;
  value &= io::size_mask(size);
  switch (bar) {
    case kModernBar: modern_write(offset, size, value); break;
    case kMsixBar: msix_write(offset, size, value); break;
    case kLegacyBar: legacy_write(offset, size, value); break;
    default: break;
  }
}

// --- BAR4: common configuration, ISR, device configuration, notify ---

uint64_t VirtioPci::modern_read(uint64_t offset, unsigned size) {
  uint64_t region = offset & ~(kModernRegionSize - 1);
  uint64_t within = offset - region;
  if (within + size > kModernRegionSize) {
    IOVMM_LOG_RATELIMITED("{}: {}-byte read at {:#x} straddles two regions: reads 0", name(), size, offset);
    return 0;
  }
  switch (region) {
    case kCommonOffset:
      return compose(kCommonFields, within, size, [this](uint64_t field) { return common_field(field); });
    case kIsrOffset:
      return within == 0 ? transport_.take_interrupt_status() : 0;
    case kDeviceOffset:
      return transport_.read_config(within, size);
    default:
      return 0;  // notify: write-only
  }
}

void VirtioPci::modern_write(uint64_t offset, unsigned size, uint64_t value) {
  uint64_t region = offset & ~(kModernRegionSize - 1);
  uint64_t within = offset - region;
  if (within + size > kModernRegionSize) {
    IOVMM_LOG_RATELIMITED("{}: {}-byte write at {:#x} straddles two regions: ignored", name(), size, offset);
    return;
  }
  switch (region) {
    case kCommonOffset: {
      if (const Field* field = exact_field(kCommonFields, within, size)) {
        write_common_field(field->offset, static_cast<uint32_t>(value));
        return;
      }
      // A 64-bit write of an address (or of the two feature registers) is two 32-bit writes, low half first.
      const Field* low = exact_field(kCommonFields, within, 4);
      const Field* high = size == 8 ? exact_field(kCommonFields, within + 4, 4) : nullptr;
      if (low && high) {
        write_common_field(low->offset, static_cast<uint32_t>(value));
        write_common_field(high->offset, static_cast<uint32_t>(value >> 32));
        return;
      }
      IOVMM_LOG_RATELIMITED("{}: {}-byte write at common configuration {:#x} matches no field: ignored", name(),
                            size, within);
      return;
    }
    case kDeviceOffset:
      transport_.write_config(within, size, value);
      return;
    case kNotifyOffset:
      if (within == 0) {
        transport_.notify(value);
      } else {
        IOVMM_LOG_RATELIMITED("{}: notify write at {:#x}: queues notify at {:#x}; ignored", name(), offset,
                              kNotifyOffset);
      }
      return;
    default:
      IOVMM_LOG_RATELIMITED("{}: write to read-only ISR at {:#x}: ignored", name(), offset);
      return;
  }
}

uint32_t VirtioPci::common_field(uint64_t field) {
  using Ring = VirtioTransport::Ring;
  switch (field) {
    case VIRTIO_PCI_COMMON_DFSELECT: return transport_.device_features_select();
    case VIRTIO_PCI_COMMON_DF: return transport_.device_features_word(Interface::modern);
    case VIRTIO_PCI_COMMON_GFSELECT: return transport_.driver_features_select();
    case VIRTIO_PCI_COMMON_GF: return transport_.driver_features_word();
    case VIRTIO_PCI_COMMON_MSIX: return config_vector_;
    case VIRTIO_PCI_COMMON_NUMQ: return transport_.queue_count();
    case VIRTIO_PCI_COMMON_STATUS: return transport_.status();
    case VIRTIO_PCI_COMMON_CFGGENERATION: return transport_.config_generation() & 0xFF;
    case VIRTIO_PCI_COMMON_Q_SELECT: return transport_.queue_select() & 0xFFFF;
    case VIRTIO_PCI_COMMON_Q_SIZE: return transport_.queue_size();
    case VIRTIO_PCI_COMMON_Q_MSIX: return queue_vector();
    case VIRTIO_PCI_COMMON_Q_ENABLE: return transport_.queue_ready() ? 1 : 0;
    case VIRTIO_PCI_COMMON_Q_NOFF: return 0;  // with notify_off_multiplier 0, every queue shares one address
    case VIRTIO_PCI_COMMON_Q_DESCLO: return transport_.queue_address_half(Ring::desc, false);
    case VIRTIO_PCI_COMMON_Q_DESCHI: return transport_.queue_address_half(Ring::desc, true);
    case VIRTIO_PCI_COMMON_Q_AVAILLO: return transport_.queue_address_half(Ring::avail, false);
    case VIRTIO_PCI_COMMON_Q_AVAILHI: return transport_.queue_address_half(Ring::avail, true);
    case VIRTIO_PCI_COMMON_Q_USEDLO: return transport_.queue_address_half(Ring::used, false);
    case VIRTIO_PCI_COMMON_Q_USEDHI: return transport_.queue_address_half(Ring::used, true);
    default: return 0;
  }
}

void VirtioPci::write_common_field(uint64_t field, uint32_t value) {
  using Ring = VirtioTransport::Ring;
  switch (field) {
    case VIRTIO_PCI_COMMON_DFSELECT: transport_.set_device_features_select(value); break;
    case VIRTIO_PCI_COMMON_GFSELECT: transport_.set_driver_features_select(value); break;
    case VIRTIO_PCI_COMMON_GF: transport_.write_driver_features_word(value); break;
    case VIRTIO_PCI_COMMON_MSIX: write_config_vector(value); break;
    case VIRTIO_PCI_COMMON_STATUS: transport_.write_status(static_cast<uint8_t>(value), Interface::modern); break;
    case VIRTIO_PCI_COMMON_Q_SELECT: transport_.set_queue_select(value); break;
    case VIRTIO_PCI_COMMON_Q_SIZE: transport_.set_queue_size(value); break;
    case VIRTIO_PCI_COMMON_Q_MSIX: write_queue_vector(value); break;
    case VIRTIO_PCI_COMMON_Q_ENABLE:
      if (value == 1) {
        transport_.set_queue_ready(true);
      } else {
        IOVMM_LOG_RATELIMITED("{}: queue_enable written with {}: only 1 is allowed; ignored", name(), value);
      }
      break;
    case VIRTIO_PCI_COMMON_Q_DESCLO: transport_.set_queue_address_half(Ring::desc, false, value); break;
    case VIRTIO_PCI_COMMON_Q_DESCHI: transport_.set_queue_address_half(Ring::desc, true, value); break;
    case VIRTIO_PCI_COMMON_Q_AVAILLO: transport_.set_queue_address_half(Ring::avail, false, value); break;
    case VIRTIO_PCI_COMMON_Q_AVAILHI: transport_.set_queue_address_half(Ring::avail, true, value); break;
    case VIRTIO_PCI_COMMON_Q_USEDLO: transport_.set_queue_address_half(Ring::used, false, value); break;
    case VIRTIO_PCI_COMMON_Q_USEDHI: transport_.set_queue_address_half(Ring::used, true, value); break;
    default:
      IOVMM_LOG_RATELIMITED("{}: write of {:#x} to read-only common configuration field {:#x}: ignored", name(),
                            value, field);
      break;
  }
}

// --- BAR1: MSI-X ---

uint64_t VirtioPci::msix_read(uint64_t offset, unsigned size) const {
  if (offset >= kMsixPbaOffset) return msix_->read_pba(offset - kMsixPbaOffset, size);
  if (offset + size > kMsixPbaOffset) return 0;  // straddles table and PBA
  return msix_->read_table(offset - kMsixTableOffset, size);
}

void VirtioPci::msix_write(uint64_t offset, unsigned size, uint64_t value) {
  if (offset + size > kMsixPbaOffset) {
    IOVMM_LOG_RATELIMITED("{}: {}-byte write at MSI-X BAR {:#x}: the PBA is read-only; ignored", name(), size, offset);
    return;
  }
  msix_->write_table(offset - kMsixTableOffset, size, value);
}

// --- BAR0: legacy header and device configuration ---

uint64_t VirtioPci::legacy_header_size() const {
  return VIRTIO_PCI_CONFIG_OFF(msix_enabled());
}

uint64_t VirtioPci::legacy_read(uint64_t offset, unsigned size) {
  uint64_t header = legacy_header_size();
  if (offset >= header) return transport_.read_config(offset - header, size);
  if (offset + size > header) {
    IOVMM_LOG_RATELIMITED("{}: {}-byte legacy read at {:#x} straddles header and configuration: reads 0", name(), size,
                          offset);
    return 0;
  }
  return compose(std::span(kLegacyFields).first(msix_enabled() ? 10 : 8), offset, size,
                 [this](uint64_t field) { return legacy_field(field); });
}

void VirtioPci::legacy_write(uint64_t offset, unsigned size, uint64_t value) {
  uint64_t header = legacy_header_size();
  if (offset >= header) {
    transport_.write_config(offset - header, size, value);
    return;
  }
  const Field* field = exact_field(std::span(kLegacyFields).first(msix_enabled() ? 10 : 8), offset, size);
  if (!field) {
    IOVMM_LOG_RATELIMITED("{}: {}-byte legacy write at {:#x} matches no register: ignored", name(), size, offset);
    return;
  }
  write_legacy_field(field->offset, static_cast<uint32_t>(value));
}

uint32_t VirtioPci::legacy_field(uint64_t field) {
  switch (field) {
    case VIRTIO_PCI_HOST_FEATURES: return static_cast<uint32_t>(transport_.offered_features(Interface::legacy));
    case VIRTIO_PCI_GUEST_FEATURES: return static_cast<uint32_t>(transport_.driver_features());
    case VIRTIO_PCI_QUEUE_PFN: return transport_.legacy_queue_pfn();
    case VIRTIO_PCI_QUEUE_NUM: return transport_.queue_size();
    case VIRTIO_PCI_QUEUE_SEL: return transport_.queue_select() & 0xFFFF;
    case VIRTIO_PCI_STATUS: return transport_.status();
    case VIRTIO_PCI_ISR: return transport_.take_interrupt_status();
    case VIRTIO_MSI_CONFIG_VECTOR: return config_vector_;
    case VIRTIO_MSI_QUEUE_VECTOR: return queue_vector();
    default: return 0;  // queue_notify: write-only
  }
}

void VirtioPci::write_legacy_field(uint64_t field, uint32_t value) {
  switch (field) {
    case VIRTIO_PCI_GUEST_FEATURES: transport_.write_legacy_driver_features(value); break;
    case VIRTIO_PCI_QUEUE_PFN: transport_.set_legacy_queue_pfn(value); break;
    case VIRTIO_PCI_QUEUE_SEL: transport_.set_queue_select(value); break;
    case VIRTIO_PCI_QUEUE_NOTIFY: transport_.notify(value); break;
    case VIRTIO_PCI_STATUS: transport_.write_status(static_cast<uint8_t>(value), Interface::legacy); break;
    case VIRTIO_MSI_CONFIG_VECTOR: write_config_vector(value); break;
    case VIRTIO_MSI_QUEUE_VECTOR: write_queue_vector(value); break;
    default:
      IOVMM_LOG_RATELIMITED("{}: write of {:#x} to read-only legacy register {:#x}: ignored", name(), value, field);
      break;
  }
}

}  // namespace iovmm::devices::virtio
