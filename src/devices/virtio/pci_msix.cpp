#include "devices/virtio/pci_msix.h"

#include <linux/pci_regs.h>

#include <exception>
#include <utility>

#include "common/log.h"

namespace iovmm::devices::virtio {

MsixTable::MsixTable(std::string name, io::MsiAllocator& allocator, unsigned entries)
    : name_(std::move(name)), allocator_(&allocator), entries_(entries) {}

uint32_t MsixTable::dword(const Entry& entry, unsigned index) const {
  uint32_t value = 0;
  for (unsigned i = 0; i < 4; ++i) value |= uint32_t{entry.bytes[4 * index + i]} << (8 * i);
  return value;
}

bool MsixTable::masked(unsigned entry) const {
  if (entry >= entries_.size()) return true;
  return function_masked_ || (dword(entries_[entry], PCI_MSIX_ENTRY_VECTOR_CTRL / 4) & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

bool MsixTable::pending(unsigned entry) const { return entry < entries_.size() && entries_[entry].pending; }

uint64_t MsixTable::read_table(uint64_t offset, unsigned size) const {
  uint64_t value = 0;
  for (unsigned i = 0; i < size; ++i) {
    uint64_t byte = offset + i;
    if (byte >= table_bytes()) break;
    value |= uint64_t{entries_[byte / 16].bytes[byte % 16]} << (8 * i);
  }
  return value;
}

void MsixTable::write_table(uint64_t offset, unsigned size, uint64_t value) {
  if (offset >= table_bytes()) return;
  unsigned first = static_cast<unsigned>(offset / 16);
  unsigned last = first;
  for (unsigned i = 0; i < size; ++i) {
    uint64_t byte = offset + i;
    if (byte >= table_bytes()) break;
    unsigned within = static_cast<unsigned>(byte % 16);
    auto data = static_cast<uint8_t>(value >> (8 * i));
    // Vector Control: only the mask bit exists; the rest is reserved and reads 0.
    if (within >= PCI_MSIX_ENTRY_VECTOR_CTRL) data = within == PCI_MSIX_ENTRY_VECTOR_CTRL ? (data & 1) : 0;
    entries_[byte / 16].bytes[within] = data;
    last = static_cast<unsigned>(byte / 16);
  }
  for (unsigned index = first; index <= last; ++index) update(index);
}

uint64_t MsixTable::read_pba(uint64_t offset, unsigned size) const {
  uint64_t value = 0;
  for (unsigned i = 0; i < size; ++i) {
    uint64_t byte = offset + i;
    if (byte >= pba_bytes()) break;
    uint8_t bits = 0;
    for (unsigned b = 0; b < 8; ++b) {
      uint64_t entry = byte * 8 + b;
      if (entry < entries_.size() && entries_[entry].pending) bits |= static_cast<uint8_t>(1u << b);
    }
    value |= uint64_t{bits} << (8 * i);
  }
  return value;
}

void MsixTable::set_control(bool enabled, bool function_masked) {
  if (enabled == enabled_ && function_masked == function_masked_) return;
  enabled_ = enabled;
  function_masked_ = function_masked;
  for (unsigned index = 0; index < entries_.size(); ++index) update(index);
}

bool MsixTable::ensure_vector(unsigned index) {
  Entry& entry = entries_[index];
  if (entry.vector) return true;
  if (!allocator_) return false;
  try {
    entry.vector = allocator_->allocate();
  } catch (const std::exception& e) {
    IOVMM_LOG_RATELIMITED("{}: MSI-X entry {} gets no interrupt: {}", name_, index, e.what());
    return false;
  }
  return entry.vector != nullptr;
}

void MsixTable::update(unsigned index) {
  if (!enabled_ || masked(index)) return;
  if (!ensure_vector(index)) return;
  Entry& entry = entries_[index];
  uint64_t address = dword(entry, PCI_MSIX_ENTRY_LOWER_ADDR / 4) |
                     (uint64_t{dword(entry, PCI_MSIX_ENTRY_UPPER_ADDR / 4)} << 32);
  uint32_t data = dword(entry, PCI_MSIX_ENTRY_DATA / 4);
  if (entry.programmed != std::pair{address, data}) {
    entry.vector->set_message(address, data);
    entry.programmed = std::pair{address, data};
  }
  if (entry.pending) {
    entry.pending = false;
    entry.vector->signal();
  }
}

void MsixTable::signal(unsigned index) {
  if (!enabled_ || index >= entries_.size() || !allocator_) return;
  if (masked(index)) {
    entries_[index].pending = true;
    return;
  }
  update(index);  // programs the vector if this is its first use
  if (entries_[index].vector) entries_[index].vector->signal();
}

void MsixTable::release() {
  for (auto& entry : entries_) {
    entry.vector.reset();
    entry.programmed.reset();
    entry.pending = false;
  }
  allocator_ = nullptr;
}

}  // namespace iovmm::devices::virtio
