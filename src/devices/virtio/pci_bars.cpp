// virtio-pci's BAR register logic: the modern BAR (common configuration, ISR, device configuration, notify), the
// MSI-X BAR and the legacy I/O BAR. Layout and access rules: pci.h.
#include <linux/virtio_pci.h>

#include "common/log.h"
#include "devices/virtio/pci.h"

namespace iovmm::devices::virtio {
namespace {

// The row that starts exactly at `offset` and is `size` bytes wide: the only writes a common-configuration or
// legacy-header register takes.
const io::Register* exact(const io::RegisterMap& map, uint64_t offset, unsigned size) {
  const io::Register* row = map.find(offset, size);
  return row && row->offset == offset && row->width == size ? row : nullptr;
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
  if ((offset & (kModernRegionSize - 1)) + size > kModernRegionSize) {
    IOVMM_LOG_RATELIMITED("{}: {}-byte read at {:#x} straddles two regions: reads 0", name(), size, offset);
    return 0;
  }
  // The device configuration is the device type's to take apart: it gets the access whole.
  const io::Register* first = modern_map_.find(offset, 1);
  if (first && id(*first) == Reg::config) return transport_.read_config(offset - first->offset, size);
  return io::compose(modern_map_, offset, size, [this](const io::Register& row) { return modern_field(row); });
}

void VirtioPci::modern_write(uint64_t offset, unsigned size, uint64_t value) {
  if ((offset & (kModernRegionSize - 1)) + size > kModernRegionSize) {
    IOVMM_LOG_RATELIMITED("{}: {}-byte write at {:#x} straddles two regions: ignored", name(), size, offset);
    return;
  }
  const io::Register* row = modern_map_.find(offset, 1);
  if (!row) {
    IOVMM_LOG_RATELIMITED("{}: {}-byte write at {:#x} reaches no register: ignored", name(), size, offset);
    return;
  }
  switch (id(*row)) {
    case Reg::config:
      transport_.write_config(offset - row->offset, size, value);
      return;
    case Reg::queue_notify:
      if (offset == row->offset) {
        transport_.notify(value);
      } else {
        IOVMM_LOG_RATELIMITED("{}: notify write at {:#x}: queues notify at {:#x}; ignored", name(), offset,
                              row->offset);
      }
      return;
    case Reg::isr:
      IOVMM_LOG_RATELIMITED("{}: write to read-only ISR at {:#x}: ignored", name(), offset);
      return;
    default:
      write_common(offset, size, value);
      return;
  }
}

uint32_t VirtioPci::modern_field(const io::Register& row) {
  using Ring = VirtioTransport::Ring;
  switch (id(row)) {
    case Reg::device_features_sel: return transport_.device_features_select();
    case Reg::device_features: return transport_.device_features_word(Interface::modern);
    case Reg::driver_features_sel: return transport_.driver_features_select();
    case Reg::driver_features: return transport_.driver_features_word();
    case Reg::config_msix_vector: return config_vector_;
    case Reg::status: return transport_.status();
    case Reg::config_generation: return transport_.config_generation() & 0xFF;
    case Reg::queue_sel: return transport_.queue_select() & 0xFFFF;
    case Reg::queue_size: return transport_.queue_size();
    case Reg::queue_msix_vector: return queue_vector();
    case Reg::queue_enable: return transport_.queue_ready() ? 1 : 0;
    case Reg::queue_desc_lo: return transport_.queue_address_half(Ring::desc, false);
    case Reg::queue_desc_hi: return transport_.queue_address_half(Ring::desc, true);
    case Reg::queue_avail_lo: return transport_.queue_address_half(Ring::avail, false);
    case Reg::queue_avail_hi: return transport_.queue_address_half(Ring::avail, true);
    case Reg::queue_used_lo: return transport_.queue_address_half(Ring::used, false);
    case Reg::queue_used_hi: return transport_.queue_address_half(Ring::used, true);
    case Reg::isr: return transport_.take_interrupt_status();
    default:
      // Constants (num_queues, queue_notify_off) read what the table says, as the fastpath does; queue_notify is
      // write-only.
      return row.effect == io::Effect::constant ? static_cast<uint32_t>(row.reset_value) : 0;
  }
}

void VirtioPci::write_common(uint64_t offset, unsigned size, uint64_t value) {
  if (const io::Register* field = exact(modern_map_, offset, size)) {
    write_common_field(*field, static_cast<uint32_t>(value));
    return;
  }
  // A 64-bit write of an address (or of the two feature registers) is two 32-bit writes, low half first.
  const io::Register* low = exact(modern_map_, offset, 4);
  const io::Register* high = size == 8 ? exact(modern_map_, offset + 4, 4) : nullptr;
  if (low && high) {
    write_common_field(*low, static_cast<uint32_t>(value));
    write_common_field(*high, static_cast<uint32_t>(value >> 32));
    return;
  }
  IOVMM_LOG_RATELIMITED("{}: {}-byte write at common configuration {:#x} matches no field: ignored", name(), size,
                        offset);
}

void VirtioPci::write_common_field(const io::Register& row, uint32_t value) {
  using Ring = VirtioTransport::Ring;
  switch (id(row)) {
    case Reg::device_features_sel: transport_.set_device_features_select(value); break;
    case Reg::driver_features_sel: transport_.set_driver_features_select(value); break;
    case Reg::driver_features: transport_.write_driver_features_word(value); break;
    case Reg::config_msix_vector: write_config_vector(value); break;
    case Reg::status: transport_.write_status(static_cast<uint8_t>(value), Interface::modern); break;
    case Reg::queue_sel: transport_.set_queue_select(value); break;
    case Reg::queue_size: transport_.set_queue_size(value); break;
    case Reg::queue_msix_vector: write_queue_vector(value); break;
    case Reg::queue_enable:
      if (value == 1) {
        transport_.set_queue_ready(true);
      } else {
        IOVMM_LOG_RATELIMITED("{}: queue_enable written with {}: only 1 is allowed; ignored", name(), value);
      }
      break;
    case Reg::queue_desc_lo: transport_.set_queue_address_half(Ring::desc, false, value); break;
    case Reg::queue_desc_hi: transport_.set_queue_address_half(Ring::desc, true, value); break;
    case Reg::queue_avail_lo: transport_.set_queue_address_half(Ring::avail, false, value); break;
    case Reg::queue_avail_hi: transport_.set_queue_address_half(Ring::avail, true, value); break;
    case Reg::queue_used_lo: transport_.set_queue_address_half(Ring::used, false, value); break;
    case Reg::queue_used_hi: transport_.set_queue_address_half(Ring::used, true, value); break;
    default:
      IOVMM_LOG_RATELIMITED("{}: write of {:#x} to read-only common configuration field {}: ignored", name(),
                            value, row.name);
      break;
  }
}

// --- BAR1: MSI-X ---

uint64_t VirtioPci::msix_read(uint64_t offset, unsigned size) const {
  const io::Register* row = msix_map_.find(offset, 1);
  const io::Register* last = msix_map_.find(offset + size - 1, 1);
  if (!row || (last && last != row)) return 0;  // between the two, or straddling table and PBA
  return id(*row) == Reg::msix_pba ? msix_->read_pba(offset - row->offset, size)
                                   : msix_->read_table(offset - row->offset, size);
}

void VirtioPci::msix_write(uint64_t offset, unsigned size, uint64_t value) {
  const io::Register* row = msix_map_.find(offset, 1);
  const io::Register* last = msix_map_.find(offset + size - 1, 1);
  if (row && id(*row) == Reg::msix_table && (!last || last == row)) {
    msix_->write_table(offset - row->offset, size, value);
    return;
  }
  IOVMM_LOG_RATELIMITED("{}: {}-byte write at MSI-X BAR {:#x} reaches no table entry or the read-only PBA; ignored",
                        name(), size, offset);
}

// --- BAR0: legacy header and device configuration ---

uint64_t VirtioPci::legacy_header_size() const {
  return VIRTIO_PCI_CONFIG_OFF(msix_enabled());
}

// The header ends where MSI-X says (VIRTIO_PCI_CONFIG_OFF), not where the table puts `config`: while MSI-X is off,
// the bytes the table names as vector registers are configuration. Below the end, only header rows lie.
uint64_t VirtioPci::legacy_read(uint64_t offset, unsigned size) {
  uint64_t header = legacy_header_size();
  if (offset >= header) return transport_.read_config(offset - header, size);
  if (offset + size > header) {
    IOVMM_LOG_RATELIMITED("{}: {}-byte legacy read at {:#x} straddles header and configuration: reads 0", name(), size,
                          offset);
    return 0;
  }
  return io::compose(legacy_map_, offset, size, [this](const io::Register& row) { return legacy_field(row); });
}

void VirtioPci::legacy_write(uint64_t offset, unsigned size, uint64_t value) {
  uint64_t header = legacy_header_size();
  if (offset >= header) {
    transport_.write_config(offset - header, size, value);
    return;
  }
  const io::Register* row = exact(legacy_map_, offset, size);
  if (!row) {
    IOVMM_LOG_RATELIMITED("{}: {}-byte legacy write at {:#x} matches no register: ignored", name(), size, offset);
    return;
  }
  write_legacy_field(*row, static_cast<uint32_t>(value));
}

uint32_t VirtioPci::legacy_field(const io::Register& row) {
  switch (id(row)) {
    case Reg::driver_features: return static_cast<uint32_t>(transport_.driver_features());
    case Reg::queue_pfn: return transport_.legacy_queue_pfn();
    case Reg::queue_size: return transport_.queue_size();
    case Reg::queue_sel: return transport_.queue_select() & 0xFFFF;
    case Reg::status: return transport_.status();
    case Reg::isr: return transport_.take_interrupt_status();
    case Reg::config_msix_vector: return config_vector_;
    case Reg::queue_msix_vector: return queue_vector();
    default:
      // device_features is a constant: the table's value, as the fastpath reads it; queue_notify is write-only.
      return row.effect == io::Effect::constant ? static_cast<uint32_t>(row.reset_value) : 0;
  }
}

void VirtioPci::write_legacy_field(const io::Register& row, uint32_t value) {
  switch (id(row)) {
    case Reg::driver_features: transport_.write_legacy_driver_features(value); break;
    case Reg::queue_pfn: transport_.set_legacy_queue_pfn(value); break;
    case Reg::queue_sel: transport_.set_queue_select(value); break;
    case Reg::queue_notify: transport_.notify(value); break;
    case Reg::status: transport_.write_status(static_cast<uint8_t>(value), Interface::legacy); break;
    case Reg::config_msix_vector: write_config_vector(value); break;
    case Reg::queue_msix_vector: write_queue_vector(value); break;
    default:
      IOVMM_LOG_RATELIMITED("{}: write of {:#x} to read-only legacy register {}: ignored", name(), value, row.name);
      break;
  }
}

}  // namespace iovmm::devices::virtio
