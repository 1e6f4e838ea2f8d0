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
constexpr uint32_t kNoShm = 0xFFFF'FFFF;  // the length and base of a shared memory region that does not exist
constexpr uint64_t kConfigSpaceSize = VirtioMmio::kWindowSize - VIRTIO_MMIO_CONFIG;

// The rows' ids (io::Register::id): what read_register and write_register switch on once the map found the row.
enum class Reg : uint16_t {
  magic_value, version, device_id, vendor_id, device_features, device_features_sel, driver_features,
  driver_features_sel, queue_sel, queue_num_max, queue_num, guest_page_size, queue_align, queue_pfn, queue_ready,
  queue_notify, interrupt_status, interrupt_ack, status, queue_desc_low, queue_desc_high, queue_avail_low,
  queue_avail_high, queue_used_low, queue_used_high, shm_sel, shm_len_low, shm_len_high, shm_base_low, shm_base_high,
  config_generation, config,
};
Reg id(const Register& row) { return static_cast<Reg>(row.id); }

constexpr Register reg(std::string_view name, Reg id, uint64_t offset, Access access, Effect effect,
                       uint64_t reset = 0) {
  return Register{.name = name, .offset = offset, .width = 4, .access = access, .effect = effect,
                  .reset_value = reset, .id = static_cast<uint16_t>(id)};
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
      registers_(build_registers()),
      map_(registers_) {
  blocks_.push_back(io::RegisterBlock{.region = 0, .name = "mmio", .registers = registers_});
}

VirtioMmio::~VirtioMmio() = default;

std::vector<io::Register> VirtioMmio::build_registers() const {
  const auto queues = static_cast<uint16_t>(transport_.queue_count());
  std::vector<Register> r = {
      reg("magic_value", Reg::magic_value, VIRTIO_MMIO_MAGIC_VALUE, Access::ro, Effect::constant, kMagic),
      reg("version", Reg::version, VIRTIO_MMIO_VERSION, Access::ro, Effect::constant, legacy_ ? 1 : 2),
      reg("device_id", Reg::device_id, VIRTIO_MMIO_DEVICE_ID, Access::ro, Effect::constant,
          transport_.device().device_id()),
      reg("vendor_id", Reg::vendor_id, VIRTIO_MMIO_VENDOR_ID, Access::ro, Effect::constant, kVendorId),
      reg("device_features", Reg::device_features, VIRTIO_MMIO_DEVICE_FEATURES, Access::ro, Effect::synchronous),
      reg("device_features_sel", Reg::device_features_sel, VIRTIO_MMIO_DEVICE_FEATURES_SEL, Access::wo,
          Effect::latch),
      reg("driver_features", Reg::driver_features, VIRTIO_MMIO_DRIVER_FEATURES, Access::wo, Effect::latch),
      reg("driver_features_sel", Reg::driver_features_sel, VIRTIO_MMIO_DRIVER_FEATURES_SEL, Access::wo,
          Effect::latch),
      reg("queue_sel", Reg::queue_sel, VIRTIO_MMIO_QUEUE_SEL, Access::wo, Effect::latch),
      reg("queue_num_max", Reg::queue_num_max, VIRTIO_MMIO_QUEUE_NUM_MAX, Access::ro, Effect::synchronous),
      reg("queue_num", Reg::queue_num, VIRTIO_MMIO_QUEUE_NUM, Access::wo, Effect::latch),
  };
  if (legacy_) {
    r.push_back(reg("guest_page_size", Reg::guest_page_size, VIRTIO_MMIO_GUEST_PAGE_SIZE, Access::wo, Effect::latch));
    r.push_back(reg("queue_align", Reg::queue_align, VIRTIO_MMIO_QUEUE_ALIGN, Access::wo, Effect::latch));
    r.push_back(reg("queue_pfn", Reg::queue_pfn, VIRTIO_MMIO_QUEUE_PFN, Access::rw, Effect::synchronous));
  } else {
    r.push_back(reg("queue_ready", Reg::queue_ready, VIRTIO_MMIO_QUEUE_READY, Access::rw, Effect::synchronous));
  }
  Register notify = reg("queue_notify", Reg::queue_notify, VIRTIO_MMIO_QUEUE_NOTIFY, Access::wo, Effect::doorbell);
  notify.datamatch_values = queues;
  r.push_back(notify);
  Register interrupt_status = reg("interrupt_status", Reg::interrupt_status, VIRTIO_MMIO_INTERRUPT_STATUS,
                                  Access::ro, Effect::synchronous);
  interrupt_status.lockless_read = true;
  r.push_back(interrupt_status);
  r.push_back(reg("interrupt_ack", Reg::interrupt_ack, VIRTIO_MMIO_INTERRUPT_ACK, Access::wo, Effect::synchronous));
  r.push_back(reg("status", Reg::status, VIRTIO_MMIO_STATUS, Access::rw, Effect::synchronous));
  if (!legacy_) {
    r.push_back(reg("queue_desc_low", Reg::queue_desc_low, VIRTIO_MMIO_QUEUE_DESC_LOW, Access::wo, Effect::latch));
    r.push_back(reg("queue_desc_high", Reg::queue_desc_high, VIRTIO_MMIO_QUEUE_DESC_HIGH, Access::wo, Effect::latch));
    r.push_back(reg("queue_avail_low", Reg::queue_avail_low, VIRTIO_MMIO_QUEUE_AVAIL_LOW, Access::wo, Effect::latch));
    r.push_back(
        reg("queue_avail_high", Reg::queue_avail_high, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, Access::wo, Effect::latch));
    r.push_back(reg("queue_used_low", Reg::queue_used_low, VIRTIO_MMIO_QUEUE_USED_LOW, Access::wo, Effect::latch));
    r.push_back(reg("queue_used_high", Reg::queue_used_high, VIRTIO_MMIO_QUEUE_USED_HIGH, Access::wo, Effect::latch));
    r.push_back(reg("shm_sel", Reg::shm_sel, VIRTIO_MMIO_SHM_SEL, Access::wo, Effect::latch));
    r.push_back(reg("shm_len_low", Reg::shm_len_low, VIRTIO_MMIO_SHM_LEN_LOW, Access::ro, Effect::constant, kNoShm));
    r.push_back(reg("shm_len_high", Reg::shm_len_high, VIRTIO_MMIO_SHM_LEN_HIGH, Access::ro, Effect::constant, kNoShm));
    r.push_back(reg("shm_base_low", Reg::shm_base_low, VIRTIO_MMIO_SHM_BASE_LOW, Access::ro, Effect::constant, kNoShm));
    r.push_back(
        reg("shm_base_high", Reg::shm_base_high, VIRTIO_MMIO_SHM_BASE_HIGH, Access::ro, Effect::constant, kNoShm));
    r.push_back(reg("config_generation", Reg::config_generation, VIRTIO_MMIO_CONFIG_GENERATION, Access::ro,
                    Effect::synchronous));
  }
  uint32_t config_size = transport_.device().config_size();
  if (config_size > 0) {
    r.push_back(Register{.name = "config", .offset = VIRTIO_MMIO_CONFIG, .width = config_size, .access = Access::rw,
                         .effect = Effect::synchronous, .id = static_cast<uint16_t>(Reg::config)});
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
  // The configuration space takes any access; the device type sees it whole.
  const Register* row = map_.find(offset, 1);
  if (row && id(*row) == Reg::config) return transport_.read_config(offset - row->offset, size);
  if (size != 4 || offset % 4 != 0) {
    IOVMM_LOG_RATELIMITED("{}: {}-byte read at {:#x}: registers take aligned 32-bit accesses; reads 0", name(), size,
                          offset);
    return 0;
  }
  if (!row || row->access == Access::wo) {
    IOVMM_LOG_RATELIMITED("{}: read of {} register {:#x}: reads 0", name(), row ? "write-only" : "unknown", offset);
    return 0;
  }
  return read_register(*row);
}

uint64_t VirtioMmio::read_lockless(unsigned region, uint64_t offset, unsigned size) {
  const Register* row = region == 0 ? map_.find(offset, size) : nullptr;
  if (row && id(*row) == Reg::interrupt_status && row->offset == offset && row->width == size) {
    return transport_.interrupt_status();
  }
  std::lock_guard lock(mutex());
  return read(region, offset, size);
}

uint32_t VirtioMmio::read_register(const Register& row) {
  // Constants come from the table, which the fastpath answers from too.
  if (row.effect == Effect::constant) return static_cast<uint32_t>(row.reset_value);
  switch (id(row)) {
    case Reg::device_features: return transport_.device_features_word(interface());
    case Reg::queue_num_max: return transport_.queue_max_size();
    case Reg::queue_ready: return transport_.queue_ready() ? 1 : 0;
    case Reg::queue_pfn: return transport_.legacy_queue_pfn();
    case Reg::interrupt_status: return transport_.interrupt_status();
    case Reg::status: return transport_.status();
    case Reg::config_generation: return transport_.config_generation();
    default: return 0;
  }
}

void VirtioMmio::write(unsigned region, uint64_t offset, unsigned size, uint64_t value) {
  if (region != 0 || !io::valid_access_size(size) || offset >= kWindowSize || size > kWindowSize - offset) return;
  const Register* row = map_.find(offset, 1);
  if (row && id(*row) == Reg::config) {
    transport_.write_config(offset - row->offset, size, value);
    return;
  }
  if (size != 4 || offset % 4 != 0) {
    IOVMM_LOG_RATELIMITED("{}: {}-byte write at {:#x}: registers take aligned 32-bit accesses; ignored", name(), size,
                          offset);
    return;
  }
  if (!row || row->access == Access::ro) {
    IOVMM_LOG_RATELIMITED("{}: write of {:#x} to {} register {:#x}: ignored", name(), value,
                          row ? "read-only" : "unknown", offset);
    return;
  }
  write_register(*row, static_cast<uint32_t>(value));
}

void VirtioMmio::write_register(const Register& row, uint32_t value) {
  using Ring = VirtioTransport::Ring;
  switch (id(row)) {
    case Reg::device_features_sel: transport_.set_device_features_select(value); break;
    case Reg::driver_features: transport_.write_driver_features_word(value); break;
    case Reg::driver_features_sel: transport_.set_driver_features_select(value); break;
    case Reg::guest_page_size: transport_.set_legacy_page_size(value); break;
    case Reg::queue_sel: transport_.set_queue_select(value); break;
    case Reg::queue_num: transport_.set_queue_size(value); break;
    case Reg::queue_align: transport_.set_legacy_queue_align(value); break;
    case Reg::queue_pfn: transport_.set_legacy_queue_pfn(value); break;
    case Reg::queue_ready: transport_.set_queue_ready(value & 1); break;
    case Reg::queue_notify: transport_.notify(value); break;
    case Reg::interrupt_ack: transport_.acknowledge_interrupt(value); break;
    case Reg::status: transport_.write_status(static_cast<uint8_t>(value), interface()); break;
    case Reg::queue_desc_low: transport_.set_queue_address_half(Ring::desc, false, value); break;
    case Reg::queue_desc_high: transport_.set_queue_address_half(Ring::desc, true, value); break;
    case Reg::queue_avail_low: transport_.set_queue_address_half(Ring::avail, false, value); break;
    case Reg::queue_avail_high: transport_.set_queue_address_half(Ring::avail, true, value); break;
    case Reg::queue_used_low: transport_.set_queue_address_half(Ring::used, false, value); break;
    case Reg::queue_used_high: transport_.set_queue_address_half(Ring::used, true, value); break;
    default: break;  // shm_sel: no regions to select
  }
}

void VirtioMmio::doorbell(unsigned region, uint64_t offset, unsigned size, uint64_t value, uint64_t count) {
  // However many writes the eventfd stands for, the device type needs one notify: it drains the queue.
  (void)count;
  const Register* row = region == 0 ? map_.find(offset, 1) : nullptr;
  if (row && id(*row) == Reg::queue_notify && row->offset == offset) {
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
