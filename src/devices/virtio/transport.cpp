#define VIRTIO_RING_NO_LEGACY  // the legacy vring_init() is C that does not compile as C++
#include "devices/virtio/transport.h"

#include <fmt/core.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>

#include <bit>
#include <cstddef>
#include <exception>
#include <utility>

#include "common/error.h"
#include "common/log.h"

namespace iovmm::devices::virtio {
namespace {

constexpr uint64_t bit(unsigned n) { return uint64_t{1} << n; }

// Status bits a driver may set; NEEDS_RESET and the reserved bits belong to the device.
constexpr uint8_t kDriverStatusBits = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                                      VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK |
                                      VIRTIO_CONFIG_S_FAILED;

constexpr uint64_t align_up(uint64_t value, uint64_t align) { return (value + align - 1) & ~(align - 1); }

GuestMemory& require_memory(const std::string& name, const DeviceContext& context) {
  if (!context.memory) throw UsageError(fmt::format("{}: a virtio transport needs guest memory", name));
  return *context.memory;
}

io::FdWatcher& require_watcher(const std::string& name, const DeviceContext& context) {
  if (!context.watcher) throw UsageError(fmt::format("{}: a virtio transport needs an fd watcher", name));
  return *context.watcher;
}

}  // namespace

std::vector<Virtqueue> VirtioTransport::make_queues(const std::string& name, const VirtioDevice* device) {
  if (!device) throw UsageError(fmt::format("{}: no virtio device type to carry", name));
  unsigned count = device->queue_count();
  uint16_t max_size = device->queue_max_size();
  if (count == 0 || count > kMaxQueues) {
    throw UsageError(fmt::format("{}: {} queues: a virtio device here has 1 to {}", name, count, kMaxQueues));
  }
  if (!std::has_single_bit(max_size) || max_size > kMaxQueueSize) {
    throw UsageError(fmt::format("{}: queue size {} must be a power of two up to {}", name, max_size, kMaxQueueSize));
  }
  std::vector<Virtqueue> queues;
  queues.reserve(count);
  for (unsigned i = 0; i < count; ++i) queues.emplace_back(max_size);
  return queues;
}

VirtioTransport::VirtioTransport(std::string name, std::unique_ptr<VirtioDevice> device, const DeviceContext& context,
                                 std::mutex& lock, InterruptSink& sink)
    : name_(std::move(name)),
      device_(std::move(device)),
      watcher_(require_watcher(name_, context)),
      lock_(lock),
      sink_(sink),
      queues_(make_queues(name_, device_.get())),
      legacy_queues_(queues_.size()),
      context_{.memory = require_memory(name_, context),
               .queues = queues_,
               .used_buffers = [this](unsigned queue) { used_buffers(queue); },
               .fail = [this](std::string_view why) { fail(why); },
               .watch = [this](int fd, std::function<void()> handler) { watch(fd, std::move(handler)); },
               .unwatch = [this](int fd) { unwatch(fd); }} {}

VirtioTransport::~VirtioTransport() {
  // The machine quiesces devices before its watcher goes away; a transport destroyed without that (a unit test,
  // a failed build) still must not leave handlers pointing at it.
  std::lock_guard lock(lock_);
  unwatch_all();
}

template <typename F>
void VirtioTransport::guarded(const char* what, F&& call) {
  try {
    call();
  } catch (const std::exception& e) {
    fail(fmt::format("{}: {}", what, e.what()));
  }
}

uint64_t VirtioTransport::offered_features(Interface interface) const {
  uint64_t features = device_->device_features() | bit(VIRTIO_RING_F_INDIRECT_DESC) | bit(VIRTIO_RING_F_EVENT_IDX);
  if (interface == Interface::legacy) return features & 0xFFFF'FFFFull;  // one 32-bit word, no VERSION_1
  return features | bit(VIRTIO_F_VERSION_1);
}

uint32_t VirtioTransport::device_features_word(Interface interface) const {
  if (device_features_select_ > 1) return 0;
  return static_cast<uint32_t>(offered_features(interface) >> (32 * device_features_select_));
}

void VirtioTransport::write_driver_features_word(uint32_t value) {
  if ((status_ & VIRTIO_CONFIG_S_FEATURES_OK) || active_) {
    IOVMM_LOG_RATELIMITED("{}: driver features written after negotiation: ignored", name_);
    return;
  }
  if (driver_features_select_ > 1) return;
  unsigned shift = 32 * driver_features_select_;
  driver_features_ = (driver_features_ & ~(0xFFFF'FFFFull << shift)) | (uint64_t{value} << shift);
}

uint32_t VirtioTransport::driver_features_word() const {
  if (driver_features_select_ > 1) return 0;
  return static_cast<uint32_t>(driver_features_ >> (32 * driver_features_select_));
}

void VirtioTransport::write_legacy_driver_features(uint32_t value) {
  if ((status_ & VIRTIO_CONFIG_S_FEATURES_OK) || active_) {
    IOVMM_LOG_RATELIMITED("{}: driver features written after negotiation: ignored", name_);
    return;
  }
  driver_features_ = value;
}

bool VirtioTransport::features_acceptable(Interface interface) const {
  if (driver_features_ & ~offered_features(interface)) return false;
  return interface == Interface::legacy || (driver_features_ & bit(VIRTIO_F_VERSION_1));
}

void VirtioTransport::write_status(uint8_t value, Interface interface) {
  if (value == 0) {
    reset();
    return;
  }
  uint8_t added = value & kDriverStatusBits & static_cast<uint8_t>(~status_);
  if ((added & VIRTIO_CONFIG_S_FEATURES_OK) && !features_acceptable(interface)) {
    IOVMM_LOG_RATELIMITED("{}: driver features {:#x} refused (offered {:#x}): FEATURES_OK stays clear", name_,
                          driver_features_, offered_features(interface));
    added &= static_cast<uint8_t>(~VIRTIO_CONFIG_S_FEATURES_OK);
  }
  if ((added & VIRTIO_CONFIG_S_DRIVER_OK) && interface == Interface::modern &&
      !((status_ | added) & VIRTIO_CONFIG_S_FEATURES_OK)) {
    IOVMM_LOG_RATELIMITED("{}: DRIVER_OK without FEATURES_OK: refused", name_);
    added &= static_cast<uint8_t>(~VIRTIO_CONFIG_S_DRIVER_OK);
  }
  status_ |= added;
  if (added & VIRTIO_CONFIG_S_DRIVER_OK) activate(interface);
}

void VirtioTransport::activate(Interface interface) {
  if (interface == Interface::legacy) driver_features_ &= offered_features(interface);  // legacy: no refusal
  bool event_idx = driver_features_ & bit(VIRTIO_RING_F_EVENT_IDX);
  bool indirect = driver_features_ & bit(VIRTIO_RING_F_INDIRECT_DESC);
  for (auto& queue : queues_) queue.set_features(event_idx, indirect);
  active_ = true;
  guarded("activate", [&] { device_->activate(context_, driver_features_); });
}

void VirtioTransport::acknowledge_interrupt(uint32_t bits) {
  interrupt_status_.fetch_and(static_cast<uint8_t>(~bits), std::memory_order_acq_rel);
  sink_.interrupt_status_cleared();
}

uint8_t VirtioTransport::take_interrupt_status() {
  uint8_t bits = interrupt_status_.exchange(0, std::memory_order_acq_rel);
  if (bits) sink_.interrupt_status_cleared();
  return bits;
}

void VirtioTransport::raise(std::optional<unsigned> queue) {
  if (quiesced_) return;
  interrupt_status_.fetch_or(queue ? VIRTIO_MMIO_INT_VRING : VIRTIO_MMIO_INT_CONFIG, std::memory_order_acq_rel);
  sink_.raise(queue);
}

Virtqueue* VirtioTransport::selected_queue() {
  return queue_select_ < queues_.size() ? &queues_[queue_select_] : nullptr;
}

const Virtqueue* VirtioTransport::selected_queue() const {
  return queue_select_ < queues_.size() ? &queues_[queue_select_] : nullptr;
}

uint16_t VirtioTransport::queue_max_size() const {
  const Virtqueue* queue = selected_queue();
  return queue ? queue->max_size() : 0;
}

uint16_t VirtioTransport::queue_size() const {
  const Virtqueue* queue = selected_queue();
  return queue ? queue->size() : 0;
}

bool VirtioTransport::queue_locked(const char* what) const {
  const Virtqueue* queue = selected_queue();
  if (!queue) {
    IOVMM_LOG_RATELIMITED("{}: {} for queue {}, which does not exist: ignored", name_, what, queue_select_);
    return true;
  }
  if (queue->ready()) {
    IOVMM_LOG_RATELIMITED("{}: {} for queue {} while it is ready: ignored", name_, what, queue_select_);
    return true;
  }
  return false;
}

void VirtioTransport::set_queue_size(uint32_t size) {
  if (queue_locked("queue size written")) return;
  Virtqueue& queue = queues_[queue_select_];
  if (size == 0 || size > queue.max_size() || !std::has_single_bit(size)) {
    IOVMM_LOG_RATELIMITED("{}: queue {} size {} is not a power of two up to {}: ignored", name_, queue_select_, size,
                          queue.max_size());
    return;
  }
  queue.set_size(static_cast<uint16_t>(size));
  apply_legacy_layout(queue_select_);
}

void VirtioTransport::set_queue_address_half(Ring ring, bool high, uint32_t value) {
  if (queue_locked("ring address written")) return;
  Virtqueue& queue = queues_[queue_select_];
  uint64_t current = ring == Ring::desc ? queue.desc_addr() : ring == Ring::avail ? queue.avail_addr()
                                                                                    : queue.used_addr();
  uint64_t updated = high ? (current & 0xFFFF'FFFFull) | (uint64_t{value} << 32)
                          : (current & ~0xFFFF'FFFFull) | value;
  switch (ring) {
    case Ring::desc: queue.set_desc_addr(updated); break;
    case Ring::avail: queue.set_avail_addr(updated); break;
    case Ring::used: queue.set_used_addr(updated); break;
  }
}

uint32_t VirtioTransport::queue_address_half(Ring ring, bool high) const {
  const Virtqueue* queue = selected_queue();
  if (!queue) return 0;
  uint64_t address = ring == Ring::desc ? queue->desc_addr() : ring == Ring::avail ? queue->avail_addr()
                                                                                    : queue->used_addr();
  return static_cast<uint32_t>(high ? address >> 32 : address);
}

bool VirtioTransport::queue_ready() const {
  const Virtqueue* queue = selected_queue();
  return queue && queue->ready();
}

void VirtioTransport::set_queue_ready(bool ready) {
  Virtqueue* queue = selected_queue();
  if (!queue) {
    IOVMM_LOG_RATELIMITED("{}: queue {} does not exist; it cannot be made ready", name_, queue_select_);
    return;
  }
  queue->set_ready(ready);
}

void VirtioTransport::set_legacy_page_size(uint32_t size) {
  // As QEMU: the lowest set bit is the page size (a driver writes a power of two; 0 means byte-granular PFNs).
  legacy_page_size_ = size ? uint32_t{1} << std::countr_zero(size) : 1;
}

void VirtioTransport::set_legacy_queue_align(uint32_t align) {
  if (queue_locked("QueueAlign written")) return;
  if (!std::has_single_bit(align)) {
    IOVMM_LOG_RATELIMITED("{}: QueueAlign {:#x} is not a power of two: ignored", name_, align);
    return;
  }
  legacy_queues_[queue_select_].align = align;
  apply_legacy_layout(queue_select_);
}

void VirtioTransport::set_legacy_queue_pfn(uint32_t pfn) {
  Virtqueue* queue = selected_queue();
  if (!queue) {
    IOVMM_LOG_RATELIMITED("{}: QueuePFN written for queue {}, which does not exist: ignored", name_, queue_select_);
    return;
  }
  legacy_queues_[queue_select_].pfn = pfn;
  if (pfn == 0) {  // the driver stops using the queue
    queue->set_desc_addr(0);
    queue->set_avail_addr(0);
    queue->set_used_addr(0);
  }
  apply_legacy_layout(queue_select_);
  queue->set_ready(pfn != 0);
}

uint32_t VirtioTransport::legacy_queue_pfn() const {
  return queue_select_ < queues_.size() ? legacy_queues_[queue_select_].pfn : 0;
}

void VirtioTransport::apply_legacy_layout(unsigned index) {
  const LegacyQueue& legacy = legacy_queues_[index];
  Virtqueue& queue = queues_[index];
  if (legacy.pfn == 0) return;  // no legacy ring here (a modern driver's addresses stay)
  // 32-bit PFN times a page of at most 2^31 bytes, plus at most 2^20 bytes of rings: no overflow.
  uint64_t desc = uint64_t{legacy.pfn} * legacy_page_size_;
  // The legacy layout (VIRTIO 1.2 2.7.2): descriptors, then the available ring with its used_event slot, then the
  // used ring at the next multiple of the alignment.
  uint64_t avail = desc + sizeof(vring_desc) * queue.size();
  uint64_t used = align_up(avail + offsetof(vring_avail, ring) + sizeof(__virtio16) * (queue.size() + 1), legacy.align);
  queue.set_desc_addr(desc);
  queue.set_avail_addr(avail);
  queue.set_used_addr(used);
}

uint64_t VirtioTransport::read_config(uint64_t offset, unsigned size) {
  uint32_t config_size = device_->config_size();
  if (offset < config_size && size <= config_size - offset) return device_->config_read(offset, size) & io::size_mask(size);
  uint64_t value = 0;  // partly or wholly past the end: the bytes inside, zeros beyond
  for (unsigned i = 0; i < size; ++i) {
    if (offset + i < config_size) value |= (device_->config_read(offset + i, 1) & 0xFF) << (8 * i);
  }
  return value;
}

void VirtioTransport::write_config(uint64_t offset, unsigned size, uint64_t value) {
  uint32_t config_size = device_->config_size();
  if (offset >= config_size || size > config_size - offset) {
    IOVMM_LOG_RATELIMITED("{}: {}-byte configuration write at {:#x} runs past its {} bytes: ignored", name_, size,
                          offset, config_size);
    return;
  }
  device_->config_write(offset, size, value & io::size_mask(size));
}

void VirtioTransport::notify(uint64_t queue) {
  if (queue >= queues_.size()) {
    IOVMM_LOG_RATELIMITED("{}: notify for queue {}, which does not exist: ignored", name_, queue);
    return;
  }
  if (!active_ || failed_) return;  // the device type ignores notifies before activate() and after fail()
  guarded("queue notify", [&] { device_->queue_notify(static_cast<unsigned>(queue)); });
}

void VirtioTransport::used_buffers(unsigned queue) {
  if (queue >= queues_.size() || !active_) return;
  bool wanted = true;
  try {
    wanted = queues_[queue].needs_interrupt(context_.memory);
  } catch (const QueueError& e) {
    fail(e.what());
    return;
  }
  if (wanted) raise(queue);
}

void VirtioTransport::fail(std::string_view why) {
  if (failed_) return;
  failed_ = true;
  status_ |= VIRTIO_CONFIG_S_NEEDS_RESET;
  IOVMM_LOG_RATELIMITED("{}: {} needs a reset: {}", name_, device_->type_name(), why);
  raise(std::nullopt);
}

void VirtioTransport::watch(int fd, std::function<void()> handler) {
  if (quiesced_) return;
  if (watches_.contains(fd)) watcher_.unwatch(fd);
  uint64_t generation = ++watch_generation_;
  watches_[fd] = generation;
  watcher_.watch(fd, [this, fd, generation, handler = std::move(handler)] {
    std::lock_guard lock(lock_);
    auto it = watches_.find(fd);
    if (quiesced_ || it == watches_.end() || it->second != generation) return;  // fetched before unwatch
    guarded("completion", handler);
  });
}

void VirtioTransport::unwatch(int fd) {
  if (watches_.erase(fd)) watcher_.unwatch(fd);
}

void VirtioTransport::unwatch_all() {
  for (const auto& [fd, generation] : watches_) watcher_.unwatch(fd);
  watches_.clear();
}

void VirtioTransport::reset() {
  try {
    device_->reset();
  } catch (const std::exception& e) {
    IOVMM_LOG_RATELIMITED("{}: {} reset failed: {}", name_, device_->type_name(), e.what());
  }
  unwatch_all();  // what the device type left behind
  for (auto& queue : queues_) queue.reset();
  for (auto& legacy : legacy_queues_) legacy = LegacyQueue{};
  status_ = 0;
  active_ = false;
  failed_ = false;
  device_features_select_ = 0;
  driver_features_select_ = 0;
  driver_features_ = 0;
  queue_select_ = 0;
  legacy_page_size_ = kLegacyPageSize;
  interrupt_status_.store(0, std::memory_order_release);
  sink_.transport_reset();
}

void VirtioTransport::quiesce() {
  reset();
  quiesced_ = true;
}

}  // namespace iovmm::devices::virtio
