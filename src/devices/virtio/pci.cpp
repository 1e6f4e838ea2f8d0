// virtio-pci: identity, BARs, capabilities, register tables, MSI-X/INTx routing and the PCI-configuration-access
// window. The BARs' register logic is in pci_bars.cpp.
#include "devices/virtio/pci.h"

#include <fmt/core.h>
#include <linux/pci_regs.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <utility>

#include "common/error.h"
#include "common/log.h"

namespace iovmm::devices::virtio {
namespace {

using io::Access;
using io::Effect;
using io::Register;

static_assert(std::endian::native == std::endian::little, "virtio-pci structures are copied as little-endian");

constexpr uint64_t kLegacyHeaderSize = VIRTIO_PCI_CONFIG_OFF(false);       // 20
constexpr uint64_t kLegacyMsixHeaderSize = VIRTIO_PCI_CONFIG_OFF(true);    // 24

const VirtioDevice& require(const std::string& name, const std::unique_ptr<VirtioDevice>& device) {
  if (!device) throw UsageError(fmt::format("{}: no virtio device type to carry", name));
  return *device;
}

// VIRTIO 1.2 4.1.2.3: the PCI device ids of transitional devices.
std::optional<uint16_t> transitional_device_id(uint32_t type) {
  switch (type) {
    case VIRTIO_ID_NET: return 0x1000;
    case VIRTIO_ID_BLOCK: return 0x1001;
    case VIRTIO_ID_BALLOON: return 0x1002;
    case VIRTIO_ID_CONSOLE: return 0x1003;
    case VIRTIO_ID_SCSI: return 0x1004;
    case VIRTIO_ID_RNG: return 0x1005;
    case VIRTIO_ID_9P: return 0x1009;
    default: return std::nullopt;
  }
}

// The class codes QEMU gives each type.
uint32_t class_code(uint32_t type) {
  switch (type) {
    case VIRTIO_ID_NET: return 0x020000;      // network controller, Ethernet
    case VIRTIO_ID_BLOCK: return 0x018000;    // mass storage, other
    case VIRTIO_ID_SCSI: return 0x010000;     // mass storage, SCSI
    case VIRTIO_ID_CONSOLE: return 0x078000;  // communication controller, other
    default: return 0x00ff00;                 // QEMU's PCI_CLASS_OTHERS
  }
}

PciIdentity identity(const std::string& name, const std::unique_ptr<VirtioDevice>& device,
                     const VirtioPciOptions& options) {
  uint32_t type = require(name, device).device_id();
  PciIdentity id{.vendor_id = VirtioPci::kVendorId, .class_code = class_code(type), .interrupt_pin = 1};
  if (options.legacy_io_bar) {
    auto transitional = transitional_device_id(type);
    if (!transitional) {
      throw UsageError(fmt::format("{}: {} has no transitional PCI device id; it cannot have a legacy I/O BAR", name,
                                   device->type_name()));
    }
    id.device_id = *transitional;
    id.revision = 0;
    id.subsystem_id = static_cast<uint16_t>(type);
  } else {
    if (type > 0xFFFFu - VirtioPci::kModernDeviceIdBase) {
      throw UsageError(fmt::format("{}: virtio device type {} has no PCI device id", name, type));
    }
    id.device_id = static_cast<uint16_t>(VirtioPci::kModernDeviceIdBase + type);
    id.revision = 1;
  }
  return id;
}

uint64_t legacy_bar_size(const std::string& name, const std::unique_ptr<VirtioDevice>& device,
                         const DeviceContext& context, const VirtioPciOptions& options) {
  uint32_t config_size = require(name, device).config_size();
  if (config_size > VirtioPci::kModernRegionSize) {
    throw UsageError(fmt::format("{}: {} has {} bytes of configuration; virtio-pci has room for {}", name,
                                 device->type_name(), config_size, VirtioPci::kModernRegionSize));
  }
  if (!options.legacy_io_bar) return 0;
  uint64_t header = context.msi ? kLegacyMsixHeaderSize : kLegacyHeaderSize;
  return std::max<uint64_t>(32, std::bit_ceil(header + config_size));  // as QEMU: a power of two
}

std::vector<BarSpec> bar_list(uint64_t legacy_size, const DeviceContext& context) {
  std::vector<BarSpec> list;
  if (legacy_size) list.push_back({.index = VirtioPci::kLegacyBar, .size = legacy_size, .kind = BarKind::io});
  if (context.msi) list.push_back({.index = VirtioPci::kMsixBar, .size = VirtioPci::kMsixBarSize});
  list.push_back(
      {.index = VirtioPci::kModernBar, .size = VirtioPci::kModernBarSize, .kind = BarKind::mem64, .prefetchable = true});
  return list;
}

// A capability's bytes after the two add_capability writes itself (ID and next pointer).
template <typename Cap>
std::vector<uint8_t> body(const Cap& cap) {
  std::vector<uint8_t> bytes(sizeof(Cap));
  std::memcpy(bytes.data(), &cap, sizeof(Cap));
  return {bytes.begin() + 2, bytes.end()};
}

virtio_pci_cap virtio_cap(uint8_t type, uint8_t bar, uint32_t offset, uint32_t length, uint8_t cap_len) {
  virtio_pci_cap cap{};
  cap.cap_vndr = PCI_CAP_ID_VNDR;
  cap.cap_len = cap_len;
  cap.cfg_type = type;
  cap.bar = bar;
  cap.offset = offset;
  cap.length = length;
  return cap;
}

constexpr bool overlaps(unsigned offset, unsigned size, unsigned start, unsigned length) {
  return offset < start + length && start < offset + size;
}

}  // namespace

VirtioPci::VirtioPci(std::string name, std::unique_ptr<VirtioDevice> device, const DeviceContext& context,
                     VirtioPciOptions options)
    : PciDevice(name, identity(name, device, options), bar_list(legacy_bar_size(name, device, context, options), context)),
      legacy_io_bar_(options.legacy_io_bar),
      legacy_bar_size_(legacy_bar_size(name, device, context, options)),
      transport_(this->name(), std::move(device), context, mutex(), *this),
      config_vector_(VIRTIO_MSI_NO_VECTOR),
      queue_vectors_(transport_.queue_count(), VIRTIO_MSI_NO_VECTOR) {
  if (context.msi) {
    unsigned entries = std::min(transport_.queue_count() + 1, kMaxMsixEntries);
    msix_ = std::make_unique<MsixTable>(this->name(), *context.msi, entries);
  }
  add_capabilities();
  build_register_tables();
}

VirtioPci::~VirtioPci() = default;

void VirtioPci::add_capabilities() {
  uint32_t config_size = transport_.device().config_size();
  auto add_virtio = [&](uint8_t type, uint64_t offset, uint32_t length) {
    add_capability(PCI_CAP_ID_VNDR, body(virtio_cap(type, kModernBar, static_cast<uint32_t>(offset), length,
                                                    sizeof(virtio_pci_cap))));
  };
  add_virtio(VIRTIO_PCI_CAP_COMMON_CFG, kCommonOffset, kModernRegionSize);
  add_virtio(VIRTIO_PCI_CAP_ISR_CFG, kIsrOffset, kModernRegionSize);
  if (config_size) add_virtio(VIRTIO_PCI_CAP_DEVICE_CFG, kDeviceOffset, kModernRegionSize);
  virtio_pci_notify_cap notify{};
  notify.cap = virtio_cap(VIRTIO_PCI_CAP_NOTIFY_CFG, kModernBar, kNotifyOffset, kModernRegionSize,
                          sizeof(virtio_pci_notify_cap));
  notify.notify_off_multiplier = 0;  // every queue at the same address: the value tells them apart
  add_capability(PCI_CAP_ID_VNDR, body(notify));

  // The access window: the driver writes bar, offset and length, then reads or writes pci_cfg_data.
  virtio_pci_cfg_cap window{};
  window.cap = virtio_cap(VIRTIO_PCI_CAP_PCI_CFG, 0, 0, 0, sizeof(virtio_pci_cfg_cap));
  std::vector<uint8_t> writable(sizeof(virtio_pci_cfg_cap) - 2, 0);
  auto open = [&](size_t field, size_t length) { std::fill_n(writable.begin() + field - 2, length, 0xFF); };
  open(offsetof(virtio_pci_cap, bar), 1);
  open(offsetof(virtio_pci_cap, offset), 4);
  open(offsetof(virtio_pci_cap, length), 4);
  open(offsetof(virtio_pci_cfg_cap, pci_cfg_data), 4);
  pci_cfg_cap_ = add_capability(PCI_CAP_ID_VNDR, body(window), writable);

  if (msix_) {
    // Message Control (table size - 1; Enable and Function Mask writable), Table and PBA offset/BIR.
    uint16_t control = static_cast<uint16_t>(msix_->size() - 1);
    uint32_t table = kMsixTableOffset | kMsixBar;
    uint32_t pba = kMsixPbaOffset | kMsixBar;
    std::vector<uint8_t> cap(PCI_CAP_MSIX_SIZEOF - 2, 0);
    std::memcpy(cap.data() + PCI_MSIX_FLAGS - 2, &control, 2);
    std::memcpy(cap.data() + PCI_MSIX_TABLE - 2, &table, 4);
    std::memcpy(cap.data() + PCI_MSIX_PBA - 2, &pba, 4);
    std::vector<uint8_t> mask(cap.size(), 0);
    mask[PCI_MSIX_FLAGS - 2 + 1] = (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8;
    msix_cap_ = add_capability(PCI_CAP_ID_MSIX, cap, mask);
  }
}

void VirtioPci::build_register_tables() {
  auto queues = static_cast<uint16_t>(transport_.queue_count());
  uint32_t config_size = transport_.device().config_size();
  auto reg = [](std::string_view name, Reg id, uint64_t offset, unsigned width, Access access, Effect effect,
                uint64_t reset = 0) {
    return Register{.name = name, .offset = offset, .width = width, .access = access, .effect = effect,
                    .reset_value = reset, .id = static_cast<uint16_t>(id)};
  };
  auto& m = modern_registers_;
  m = {
      reg("device_features_sel", Reg::device_features_sel, VIRTIO_PCI_COMMON_DFSELECT, 4, Access::rw, Effect::latch),
      reg("device_features", Reg::device_features, VIRTIO_PCI_COMMON_DF, 4, Access::ro, Effect::synchronous),
      reg("driver_features_sel", Reg::driver_features_sel, VIRTIO_PCI_COMMON_GFSELECT, 4, Access::rw, Effect::latch),
      reg("driver_features", Reg::driver_features, VIRTIO_PCI_COMMON_GF, 4, Access::rw, Effect::latch),
      reg("config_msix_vector", Reg::config_msix_vector, VIRTIO_PCI_COMMON_MSIX, 2, Access::rw, Effect::synchronous,
          VIRTIO_MSI_NO_VECTOR),
      reg("num_queues", Reg::num_queues, VIRTIO_PCI_COMMON_NUMQ, 2, Access::ro, Effect::constant, queues),
      reg("status", Reg::status, VIRTIO_PCI_COMMON_STATUS, 1, Access::rw, Effect::synchronous),
      reg("config_generation", Reg::config_generation, VIRTIO_PCI_COMMON_CFGGENERATION, 1, Access::ro,
          Effect::synchronous),
      reg("queue_sel", Reg::queue_sel, VIRTIO_PCI_COMMON_Q_SELECT, 2, Access::rw, Effect::latch),
      reg("queue_size", Reg::queue_size, VIRTIO_PCI_COMMON_Q_SIZE, 2, Access::rw, Effect::latch),
      reg("queue_msix_vector", Reg::queue_msix_vector, VIRTIO_PCI_COMMON_Q_MSIX, 2, Access::rw, Effect::synchronous,
          VIRTIO_MSI_NO_VECTOR),
      reg("queue_enable", Reg::queue_enable, VIRTIO_PCI_COMMON_Q_ENABLE, 2, Access::rw, Effect::synchronous),
      // With notify_off_multiplier 0, every queue shares one address.
      reg("queue_notify_off", Reg::queue_notify_off, VIRTIO_PCI_COMMON_Q_NOFF, 2, Access::ro, Effect::constant, 0),
      reg("queue_desc_lo", Reg::queue_desc_lo, VIRTIO_PCI_COMMON_Q_DESCLO, 4, Access::rw, Effect::latch),
      reg("queue_desc_hi", Reg::queue_desc_hi, VIRTIO_PCI_COMMON_Q_DESCHI, 4, Access::rw, Effect::latch),
      reg("queue_avail_lo", Reg::queue_avail_lo, VIRTIO_PCI_COMMON_Q_AVAILLO, 4, Access::rw, Effect::latch),
      reg("queue_avail_hi", Reg::queue_avail_hi, VIRTIO_PCI_COMMON_Q_AVAILHI, 4, Access::rw, Effect::latch),
      reg("queue_used_lo", Reg::queue_used_lo, VIRTIO_PCI_COMMON_Q_USEDLO, 4, Access::rw, Effect::latch),
      reg("queue_used_hi", Reg::queue_used_hi, VIRTIO_PCI_COMMON_Q_USEDHI, 4, Access::rw, Effect::latch),
      reg("isr", Reg::isr, kIsrOffset, 1, Access::ro, Effect::read_sensitive),
  };
  static_assert(VIRTIO_PCI_COMMON_Q_USEDHI + 4 == sizeof(virtio_pci_common_cfg),
                "the common configuration ends with queue_used_hi");
  if (config_size) m.push_back(reg("config", Reg::config, kDeviceOffset, config_size, Access::rw, Effect::synchronous));
  Register notify = reg("queue_notify", Reg::queue_notify, kNotifyOffset, 2, Access::wo, Effect::doorbell);
  notify.datamatch_values = queues;
  m.push_back(notify);
  modern_map_ = io::RegisterMap(modern_registers_);
  blocks_.push_back({.region = kModernBar, .name = "modern", .registers = modern_registers_});

  if (msix_) {
    msix_registers_ = {
        reg("msix_table", Reg::msix_table, kMsixTableOffset, static_cast<unsigned>(msix_->table_bytes()), Access::rw,
            Effect::synchronous),
        reg("msix_pba", Reg::msix_pba, kMsixPbaOffset, static_cast<unsigned>(msix_->pba_bytes()), Access::ro,
            Effect::synchronous),
    };
    msix_map_ = io::RegisterMap(msix_registers_);
    blocks_.push_back({.region = kMsixBar, .name = "msix", .registers = msix_registers_});
  }

  if (legacy_io_bar_) {
    auto& l = legacy_registers_;
    Register legacy_notify = reg("queue_notify", Reg::queue_notify, VIRTIO_PCI_QUEUE_NOTIFY, 2, Access::wo,
                                 Effect::doorbell);
    legacy_notify.datamatch_values = queues;
    l = {
        reg("device_features", Reg::device_features, VIRTIO_PCI_HOST_FEATURES, 4, Access::ro, Effect::constant,
            static_cast<uint32_t>(transport_.offered_features(Interface::legacy))),
        reg("driver_features", Reg::driver_features, VIRTIO_PCI_GUEST_FEATURES, 4, Access::rw, Effect::latch),
        reg("queue_pfn", Reg::queue_pfn, VIRTIO_PCI_QUEUE_PFN, 4, Access::rw, Effect::synchronous),
        reg("queue_size", Reg::queue_size, VIRTIO_PCI_QUEUE_NUM, 2, Access::ro, Effect::synchronous),
        reg("queue_sel", Reg::queue_sel, VIRTIO_PCI_QUEUE_SEL, 2, Access::rw, Effect::latch),
        legacy_notify,
        reg("status", Reg::status, VIRTIO_PCI_STATUS, 1, Access::rw, Effect::synchronous),
        reg("isr", Reg::isr, VIRTIO_PCI_ISR, 1, Access::ro, Effect::read_sensitive),
    };
    // With MSI-X present, bytes 20-23 are the vector registers while MSI-X is enabled and the first configuration
    // bytes while it is not; both are synchronous, so the table may name them as the vector registers.
    uint64_t config_offset = kLegacyHeaderSize;
    if (msix_) {
      l.push_back(reg("config_msix_vector", Reg::config_msix_vector, VIRTIO_MSI_CONFIG_VECTOR, 2, Access::rw,
                      Effect::synchronous, VIRTIO_MSI_NO_VECTOR));
      l.push_back(reg("queue_msix_vector", Reg::queue_msix_vector, VIRTIO_MSI_QUEUE_VECTOR, 2, Access::rw,
                      Effect::synchronous, VIRTIO_MSI_NO_VECTOR));
      config_offset = kLegacyMsixHeaderSize;
    }
    if (config_size) {
      l.push_back(reg("config", Reg::config, config_offset, config_size, Access::rw, Effect::synchronous));
    }
    legacy_map_ = io::RegisterMap(legacy_registers_);
    blocks_.push_back({.region = kLegacyBar, .name = "legacy", .registers = legacy_registers_});
  }
}

uint64_t VirtioPci::read_lockless(unsigned region, uint64_t offset, unsigned size) {
  std::lock_guard lock(mutex());
  return read(region, offset, size);
}

void VirtioPci::doorbell(unsigned region, uint64_t offset, unsigned size, uint64_t value, uint64_t count) {
  // However many writes the eventfd stands for, the device type needs one notify: it drains the queue.
  (void)count;
  const io::RegisterMap* map = region == kModernBar ? &modern_map_ : region == kLegacyBar ? &legacy_map_ : nullptr;
  const io::Register* row = map ? map->find(offset, 1) : nullptr;
  if (row && id(*row) == Reg::queue_notify && row->offset == offset) {
    transport_.notify(value);
    return;
  }
  write(region, offset, size, value);
}

void VirtioPci::quiesce() {
  std::lock_guard lock(mutex());
  transport_.quiesce();
  if (msix_) msix_->release();
}

// --- Interrupts ---

void VirtioPci::update_intx() { set_intx(!msix_enabled() && transport_.interrupt_status() != 0); }

void VirtioPci::raise(std::optional<unsigned> queue) {
  if (!msix_enabled()) {
    update_intx();
    return;
  }
  uint16_t vector = queue ? queue_vectors_[*queue] : config_vector_;
  if (vector != VIRTIO_MSI_NO_VECTOR) msix_->signal(vector);
}

void VirtioPci::interrupt_status_cleared() { update_intx(); }

void VirtioPci::transport_reset() {
  // A virtio reset forgets the vector choices (the MSI-X table itself is PCI state and stays).
  config_vector_ = VIRTIO_MSI_NO_VECTOR;
  std::fill(queue_vectors_.begin(), queue_vectors_.end(), VIRTIO_MSI_NO_VECTOR);
  update_intx();
}

uint16_t VirtioPci::checked_vector(uint32_t vector) const {
  if (vector == VIRTIO_MSI_NO_VECTOR) return VIRTIO_MSI_NO_VECTOR;
  if (!msix_ || vector >= msix_->size()) {
    IOVMM_LOG_RATELIMITED("{}: MSI-X vector {} is past the table: reads back as none", name(), vector);
    return VIRTIO_MSI_NO_VECTOR;  // 4.1.4.3: "the device returns NO_VECTOR" when it cannot use the vector
  }
  return static_cast<uint16_t>(vector);
}

void VirtioPci::write_config_vector(uint32_t vector) { config_vector_ = checked_vector(vector); }

void VirtioPci::write_queue_vector(uint32_t vector) {
  unsigned queue = transport_.queue_select();
  if (queue >= queue_vectors_.size()) {
    IOVMM_LOG_RATELIMITED("{}: MSI-X vector written for queue {}, which does not exist: ignored", name(), queue);
    return;
  }
  queue_vectors_[queue] = checked_vector(vector);
}

uint16_t VirtioPci::queue_vector() const {
  unsigned queue = transport_.queue_select();
  return queue < queue_vectors_.size() ? queue_vectors_[queue] : VIRTIO_MSI_NO_VECTOR;
}

// --- Configuration space: MSI-X control and the access window ---

void VirtioPci::msix_control_written() {
  auto& config = config_bytes();
  uint16_t control = static_cast<uint16_t>(config[msix_cap_ + PCI_MSIX_FLAGS] |
                                           (config[msix_cap_ + PCI_MSIX_FLAGS + 1] << 8));
  msix_->set_control(control & PCI_MSIX_FLAGS_ENABLE, control & PCI_MSIX_FLAGS_MASKALL);
  update_intx();
}

void VirtioPci::pci_cfg_access(bool is_write) {
  auto& config = config_bytes();
  auto field32 = [&](size_t field) {
    uint32_t value = 0;
    std::memcpy(&value, config.data() + pci_cfg_cap_ + field, 4);
    return value;
  };
  unsigned bar = config[pci_cfg_cap_ + offsetof(virtio_pci_cap, bar)];
  uint32_t offset = field32(offsetof(virtio_pci_cap, offset));
  uint32_t length = field32(offsetof(virtio_pci_cap, length));
  const BarSpec* spec = bar_spec(bar);
  bool valid = spec && (length == 1 || length == 2 || length == 4) && offset % length == 0 &&
               offset <= spec->size - length;
  if (!valid) {
    IOVMM_LOG_RATELIMITED("{}: PCI configuration access window: BAR {} offset {:#x} length {} is not valid", name(),
                          bar, offset, length);
    return;
  }
  uint8_t* data = config.data() + pci_cfg_cap_ + offsetof(virtio_pci_cfg_cap, pci_cfg_data);
  if (is_write) {
    uint32_t value = 0;
    std::memcpy(&value, data, 4);
    bar_write(bar, offset, length, value & static_cast<uint32_t>(io::size_mask(length)));
  } else {
    auto value = static_cast<uint32_t>(bar_read(bar, offset, length) & io::size_mask(length));
    std::memcpy(data, &value, length);
  }
}

uint32_t VirtioPci::config_read_extra(unsigned offset, unsigned size) {
  if (overlaps(offset, size, pci_cfg_cap_ + offsetof(virtio_pci_cfg_cap, pci_cfg_data), 4)) pci_cfg_access(false);
  return PciDevice::config_read_extra(offset, size);
}

void VirtioPci::config_write_extra(unsigned offset, unsigned size, uint32_t value) {
  PciDevice::config_write_extra(offset, size, value);
  if (msix_ && overlaps(offset, size, msix_cap_ + PCI_MSIX_FLAGS, 2)) msix_control_written();
  if (overlaps(offset, size, pci_cfg_cap_ + offsetof(virtio_pci_cfg_cap, pci_cfg_data), 4)) pci_cfg_access(true);
}

}  // namespace iovmm::devices::virtio
