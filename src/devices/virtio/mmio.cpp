#include "devices/virtio/mmio.h"

#include <fmt/core.h>
#include <linux/virtio_mmio.h>

#include <mutex>
#include <utility>

#include "common/error.h"
#include "common/log.h"

namespace iovmm::devices::virtio {
namespace {

using io::Access;
using io::Effect;
using io::Register;

constexpr uint32_t kMagic = 0x74726976;  // "virt"
constexpr uint64_t kConfigSpaceSize = VirtioMmio::kWindowSize - VIRTIO_MMIO_CONFIG;

constexpr Register reg(std::string_view name, uint64_t offset, Access access, Effect effect, uint64_t reset = 0) {
  return Register{.name = name, .offset = offset, .width = 4, .access = access, .effect = effect, .reset = reset};
}

std::unique_ptr<VirtioDevice> checked(const std::string& name, std::unique_ptr<VirtioDevice> device) {
  if (device && device->config_size() > kConfigSpaceSize) {
    throw UsageError(fmt::format("{}: {} has {} bytes of configuration; virtio-mmio has room for {}", name,
                                 device->type_name(), device->config_size(), kConfigSpaceSize));
  }
  return device;
}

}  // namespace

VirtioMmio::VirtioMmio(std::string name, std::unique_ptr<VirtioDevice> device, const DeviceContext& context,
                       VirtioMmioOptions options)
    : io::Device(std::move(name)),
      legacy_(options.legacy),
      transport_(this->name(), checked(this->name(), std::move(device)), context, mutex(), *this),
      registers_(build_registers()) {
  blocks_.push_back(io::RegisterBlock{.region = 0, .name = "mmio", .registers = registers_});
}

VirtioMmio::~VirtioMmio() = default;

std::vector<io::Register> VirtioMmio::build_registers() const {
  const auto queues = static_cast<uint16_t>(transport_.queue_count());
  std::vector<Register> r = {
      reg("magic_value", VIRTIO_MMIO_MAGIC_VALUE, Access::ro, Effect::constant, kMagic),
      reg("version", VIRTIO_MMIO_VERSION, Access::ro, Effect::constant, legacy_ ? 1 : 2),
      reg("device_id", VIRTIO_MMIO_DEVICE_ID, Access::ro, Effect::constant, transport_.device().device_id()),
      reg("vendor_id", VIRTIO_MMIO_VENDOR_ID, Access::ro, Effect::constant, kVendorId),
      reg("device_features", VIRTIO_MMIO_DEVICE_FEATURES, Access::ro, Effect::synchronous),
      reg("device_features_sel", VIRTIO_MMIO_DEVICE_FEATURES_SEL, Access::wo, Effect::latch),
      reg("driver_features", VIRTIO_MMIO_DRIVER_FEATURES, Access::wo, Effect::latch),
      reg("driver_features_sel", VIRTIO_MMIO_DRIVER_FEATURES_SEL, Access::wo, Effect::latch),
      reg("queue_sel", VIRTIO_MMIO_QUEUE_SEL, Access::wo, Effect::latch),
      reg("queue_num_max", VIRTIO_MMIO_QUEUE_NUM_MAX, Access::ro, Effect::synchronous),
      reg("queue_num", VIRTIO_MMIO_QUEUE_NUM, Access::wo, Effect::latch),
  };
  if (legacy_) {
    r.push_back(reg("guest_page_size", VIRTIO_MMIO_GUEST_PAGE_SIZE, Access::wo, Effect::latch));
    r.push_back(reg("queue_align", VIRTIO_MMIO_QUEUE_ALIGN, Access::wo, Effect::latch));
    r.push_back(reg("queue_pfn", VIRTIO_MMIO_QUEUE_PFN, Access::rw, Effect::synchronous));
  } else {
    r.push_back(reg("queue_ready", VIRTIO_MMIO_QUEUE_READY, Access::rw, Effect::synchronous));
  }
  Register notify = reg("queue_notify", VIRTIO_MMIO_QUEUE_NOTIFY, Access::wo, Effect::doorbell);
  notify.datamatch_values = queues;
  r.push_back(notify);
  Register interrupt_status = reg("interrupt_status", VIRTIO_MMIO_INTERRUPT_STATUS, Access::ro, Effect::synchronous);
  interrupt_status.lockless_read = true;
  r.push_back(interrupt_status);
  r.push_back(reg("interrupt_ack", VIRTIO_MMIO_INTERRUPT_ACK, Access::wo, Effect::synchronous));
  r.push_back(reg("status", VIRTIO_MMIO_STATUS, Access::rw, Effect::synchronous));
  if (!legacy_) {
    r.push_back(reg("queue_desc_low", VIRTIO_MMIO_QUEUE_DESC_LOW, Access::wo, Effect::latch));
    r.push_back(reg("queue_desc_high", VIRTIO_MMIO_QUEUE_DESC_HIGH, Access::wo, Effect::latch));
    r.push_back(reg("queue_avail_low", VIRTIO_MMIO_QUEUE_AVAIL_LOW, Access::wo, Effect::latch));
    r.push_back(reg("queue_avail_high", VIRTIO_MMIO_QUEUE_AVAIL_HIGH, Access::wo, Effect::latch));
    r.push_back(reg("queue_used_low", VIRTIO_MMIO_QUEUE_USED_LOW, Access::wo, Effect::latch));
    r.push_back(reg("queue_used_high", VIRTIO_MMIO_QUEUE_USED_HIGH, Access::wo, Effect::latch));
    r.push_back(reg("shm_sel", VIRTIO_MMIO_SHM_SEL, Access::wo, Effect::latch));
    r.push_back(reg("shm_len_low", VIRTIO_MMIO_SHM_LEN_LOW, Access::ro, Effect::constant, 0xFFFF'FFFF));
    r.push_back(reg("shm_len_high", VIRTIO_MMIO_SHM_LEN_HIGH, Access::ro, Effect::constant, 0xFFFF'FFFF));
    r.push_back(reg("shm_base_low", VIRTIO_MMIO_SHM_BASE_LOW, Access::ro, Effect::constant, 0xFFFF'FFFF));
    r.push_back(reg("shm_base_high", VIRTIO_MMIO_SHM_BASE_HIGH, Access::ro, Effect::constant, 0xFFFF'FFFF));
    r.push_back(reg("config_generation", VIRTIO_MMIO_CONFIG_GENERATION, Access::ro, Effect::synchronous));
  }
  uint32_t config_size = transport_.device().config_size();
  if (config_size > 0) {
    r.push_back(Register{.name = "config", .offset = VIRTIO_MMIO_CONFIG, .width = config_size, .access = Access::rw,
                         .effect = Effect::synchronous});
  }
  return r;
}

void VirtioMmio::connect_irq(std::shared_ptr<io::IrqLine> line) {
  std::lock_guard lock(mutex());
  line_ = std::move(line);
  line_level_ = false;
  if (line_) line_->set_level(false);
  update_line();
}

uint64_t VirtioMmio::read(unsigned region, uint64_t offset, unsigned size) {
  if (region != 0 || !io::valid_access_size(size) || offset >= kWindowSize || size > kWindowSize - offset) {
    return io::size_mask(size);
  }
  if (offset >= VIRTIO_MMIO_CONFIG) return transport_.read_config(offset - VIRTIO_MMIO_CONFIG, size);
  if (size != 4 || offset % 4 != 0) {
    IOVMM_LOG_RATELIMITED("{}: {}-byte read at {:#x}: registers take aligned 32-bit accesses; reads 0", name(), size,
                          offset);
    return 0;
  }
  return read_register(offset);
}

uint64_t VirtioMmio::read_lockless(unsigned region, uint64_t offset, unsigned size) {
  if (region == 0 && offset == VIRTIO_MMIO_INTERRUPT_STATUS && size == 4) return transport_.interrupt_status();
  std::lock_guard lock(mutex());
  return read(region, offset, size);
}

uint32_t VirtioMmio::read_register(uint64_t offset) {
  // Constants come from the table, which the fastpath answers from too.
  const Register* declared = io::find_register(registers_, offset, 4);
  if (declared && declared->effect == Effect::constant) return static_cast<uint32_t>(declared->reset);
  if (!declared || declared->access == Access::wo) {
    IOVMM_LOG_RATELIMITED("{}: read of {} register {:#x}: reads 0", name(), declared ? "write-only" : "unknown",
                          offset);
    return 0;
  }
  switch (offset) {
    case VIRTIO_MMIO_DEVICE_FEATURES: return transport_.device_features_word(interface());
    case VIRTIO_MMIO_QUEUE_NUM_MAX: return transport_.queue_max_size();
    case VIRTIO_MMIO_QUEUE_READY: return transport_.queue_ready() ? 1 : 0;
    case VIRTIO_MMIO_QUEUE_PFN: return transport_.legacy_queue_pfn();
    case VIRTIO_MMIO_INTERRUPT_STATUS: return transport_.interrupt_status();
    case VIRTIO_MMIO_STATUS: return transport_.status();
    case VIRTIO_MMIO_CONFIG_GENERATION: return transport_.config_generation();
    default: return 0;
  }
}

void VirtioMmio::write(unsigned region, uint64_t offset, unsigned size, uint64_t value) {
  if (region != 0 || !io::valid_access_size(size) || offset >= kWindowSize || size > kWindowSize - offset) return;
  if (offset >= VIRTIO_MMIO_CONFIG) {
    transport_.write_config(offset - VIRTIO_MMIO_CONFIG, size, value);
    return;
  }
  if (size != 4 || offset % 4 != 0) {
    IOVMM_LOG_RATELIMITED("{}: {}-byte write at {:#x}: registers take aligned 32-bit accesses; ignored", name(), size,
                          offset);
    return;
  }
  write_register(offset, static_cast<uint32_t>(value));
}

void VirtioMmio::write_register(uint64_t offset, uint32_t value) {
  const Register* declared = io::find_register(registers_, offset, 4);
  if (!declared || declared->access == Access::ro) {
    IOVMM_LOG_RATELIMITED("{}: write of {:#x} to {} register {:#x}: ignored", name(), value,
                          declared ? "read-only" : "unknown", offset);
    return;
  }
  using Ring = VirtioTransport::Ring;
  switch (offset) {
    case VIRTIO_MMIO_DEVICE_FEATURES_SEL: transport_.set_device_features_select(value); break;
    case VIRTIO_MMIO_DRIVER_FEATURES: transport_.write_driver_features_word(value); break;
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL: transport_.set_driver_features_select(value); break;
    case VIRTIO_MMIO_GUEST_PAGE_SIZE: transport_.set_legacy_page_size(value); break;
    case VIRTIO_MMIO_QUEUE_SEL: transport_.set_queue_select(value); break;
    case VIRTIO_MMIO_QUEUE_NUM: transport_.set_queue_size(value); break;
    case VIRTIO_MMIO_QUEUE_ALIGN: transport_.set_legacy_queue_align(value); break;
    case VIRTIO_MMIO_QUEUE_PFN: transport_.set_legacy_queue_pfn(value); break;
    case VIRTIO_MMIO_QUEUE_READY: transport_.set_queue_ready(value & 1); break;
    case VIRTIO_MMIO_QUEUE_NOTIFY: transport_.notify(value); break;
    case VIRTIO_MMIO_INTERRUPT_ACK: transport_.acknowledge_interrupt(value); break;
    case VIRTIO_MMIO_STATUS: transport_.write_status(static_cast<uint8_t>(value), interface()); break;
    case VIRTIO_MMIO_QUEUE_DESC_LOW: transport_.set_queue_address_half(Ring::desc, false, value); break;
    case VIRTIO_MMIO_QUEUE_DESC_HIGH: transport_.set_queue_address_half(Ring::desc, true, value); break;
    case VIRTIO_MMIO_QUEUE_AVAIL_LOW: transport_.set_queue_address_half(Ring::avail, false, value); break;
    case VIRTIO_MMIO_QUEUE_AVAIL_HIGH: transport_.set_queue_address_half(Ring::avail, true, value); break;
    case VIRTIO_MMIO_QUEUE_USED_LOW: transport_.set_queue_address_half(Ring::used, false, value); break;
    case VIRTIO_MMIO_QUEUE_USED_HIGH: transport_.set_queue_address_half(Ring::used, true, value); break;
    default: break;  // shm_sel: no regions to select
  }
}

void VirtioMmio::doorbell(unsigned region, uint64_t offset, unsigned size, uint64_t value, uint64_t count) {
  // However many writes the eventfd stands for, the device type needs one notify: it drains the queue.
  (void)count;
  if (region == 0 && offset == VIRTIO_MMIO_QUEUE_NOTIFY) {
    transport_.notify(value);
    return;
  }
  write(region, offset, size, value);
}

void VirtioMmio::update_line() {
  bool level = transport_.interrupt_status() != 0;
  if (level == line_level_) return;
  line_level_ = level;
  if (line_) line_->set_level(level);
}

void VirtioMmio::raise(std::optional<unsigned>) { update_line(); }
void VirtioMmio::interrupt_status_cleared() { update_line(); }
void VirtioMmio::transport_reset() { update_line(); }

void VirtioMmio::quiesce() {
  std::lock_guard lock(mutex());
  transport_.quiesce();
  line_.reset();
}

}  // namespace iovmm::devices::virtio
