// Fuzz target: virtio-mmio driven by a hostile driver. The first byte picks the layout (bit 0: version 1); then each
// 8-byte record is one event (at most 4096):
//   op % 8 = 0 read, 1 write (offset le16 % 0x240, width 1/2/4/8 from byte 3, value le32 from bytes 4-7),
//            2 write a register of the table (byte 1 picks it; byte 2 bit 0: the value is byte 4 alone, so that
//              small selectors and sizes come up often),
//            3 doorbell (QueueNotify as an eventfd delivers it: value byte 4, count byte 5),
//            4 a well-behaved bring-up (features from bytes 4-7, queue rings inside RAM, DRIVER_OK),
//            5 make a descriptor (fields from the record) available on queue byte 1 % 2,
//            6 device-type events: fail, watch, unwatch, run a fetched watch handler, config generation bump,
//            7 a lock-free read (the fastpath).
// A fake device type pops and pushes every available chain on notify and from its watch handler (so the real
// Virtqueue walks whatever the fuzzer wrote). Nothing may crash or throw; after every event: the line's level
// equals InterruptStatus != 0, reads have nothing above their width, and a device type is only active between an
// accepted DRIVER_OK and a reset.
#define VIRTIO_RING_NO_LEGACY
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "devices/virtio/mmio.h"
#include "virtio_fuzz_fakes.h"

namespace iovmm::fuzz {
namespace {

using devices::DeviceContext;
using namespace devices::virtio;

constexpr uint64_t kRam = 0x40000;
constexpr unsigned kRecord = 8;
constexpr size_t kMaxRecords = 4096;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_virtio_mmio: %s\n", what);
  std::abort();
}

class Device final : public VirtioDevice {
 public:
  [[nodiscard]] uint32_t device_id() const override { return 2; }
  [[nodiscard]] uint64_t device_features() const override { return (1ull << 1) | (1ull << 9) | (1ull << 50); }
  [[nodiscard]] unsigned queue_count() const override { return 2; }
  [[nodiscard]] uint16_t queue_max_size() const override { return 16; }
  [[nodiscard]] uint32_t config_size() const override { return sizeof(config_); }
  [[nodiscard]] uint64_t config_read(uint64_t offset, unsigned size) override {
    if (offset >= sizeof(config_) || size > sizeof(config_) - offset) fail("config read past config_size");
    uint64_t value = 0;
    for (unsigned i = 0; i < size; ++i) value |= uint64_t{config_[offset + i]} << (8 * i);
    return value;
  }
  void config_write(uint64_t offset, unsigned size, uint64_t value) override {
    if (offset >= sizeof(config_) || size > sizeof(config_) - offset) fail("config write past config_size");
    for (unsigned i = 0; i < size; ++i) config_[offset + i] = static_cast<uint8_t>(value >> (8 * i));
  }
  [[nodiscard]] uint32_t config_generation() const override { return generation; }
  void activate(VirtioContext& context, uint64_t) override {
    if (context_) fail("activated twice without a reset");
    context_ = &context;
  }
  void queue_notify(unsigned queue) override {
    if (!context_) fail("notified while inactive");
    if (queue >= 2) fail("notify for a queue past the count");
    drain(queue);
  }
  void reset() override { context_ = nullptr; }
  [[nodiscard]] std::string_view type_name() const override { return "fuzz"; }

  void drain(unsigned queue) {
    Virtqueue& q = context_->queues[queue];
    if (!q.ready()) return;
    while (auto chain = q.pop(context_->memory)) q.push(context_->memory, chain->head, 1);
    context_->used_buffers(queue);
  }
  [[nodiscard]] VirtioContext* context() const { return context_; }
  uint32_t generation = 0;

 private:
  VirtioContext* context_ = nullptr;
  uint8_t config_[20] = {};
};

uint32_t le32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t{p[3]} << 24); }

class Harness {
 public:
  explicit Harness(bool legacy) {
    auto device = std::make_unique<Device>();
    device_ = device.get();
    DeviceContext context;
    context.memory = &memory_;
    context.watcher = &watcher_;
    mmio_ = std::make_unique<VirtioMmio>("fuzz-mmio", std::move(device), context, VirtioMmioOptions{.legacy = legacy});
    mmio_->connect_irq(line_);
    legacy_ = legacy;
  }

  void run(const uint8_t* r) {
    static constexpr unsigned kSizes[] = {1, 2, 4, 8};
    uint64_t offset = (r[1] | (r[2] << 8)) % 0x240;
    unsigned size = kSizes[r[3] & 3];
    uint32_t value = le32(r + 4);
    switch (r[0] % 8) {
      case 0: checked_read(offset, size, false); break;
      case 1: write(offset, size, value); break;
      case 2: {
        auto registers = mmio_->register_blocks()[0].registers;
        const io::Register& reg = registers[r[1] % registers.size()];
        write(reg.offset, 4, (r[2] & 1) ? r[4] : value);
        break;
      }
      case 3: {
        std::lock_guard lock(mmio_->mutex());
        mmio_->doorbell(0, VIRTIO_MMIO_QUEUE_NOTIFY, 4, r[4], r[5] + 1);
        break;
      }
      case 4: bring_up(value, r[1]); break;
      case 5: make_available(r); break;
      case 6: device_event(r); break;
      default: checked_read(offset, size, true); break;
    }
    check();
  }

 private:
  void write(uint64_t offset, unsigned size, uint64_t value) {
    if (offset + size > VirtioMmio::kWindowSize) return;  // the bus refuses it before the device
    std::lock_guard lock(mmio_->mutex());
    mmio_->write(0, offset, size, value & io::size_mask(size));
  }
  uint64_t read(uint64_t offset) {
    std::lock_guard lock(mmio_->mutex());
    return mmio_->read(0, offset, 4);
  }
  void checked_read(uint64_t offset, unsigned size, bool lockless) {
    if (offset + size > VirtioMmio::kWindowSize) return;
    uint64_t value = 0;
    if (lockless) {
      value = mmio_->read_lockless(0, offset, size);
    } else {
      std::lock_guard lock(mmio_->mutex());
      value = mmio_->read(0, offset, size);
    }
    if (value & ~io::size_mask(size)) fail("a read returned bits above its width");
  }

  void bring_up(uint32_t features, uint8_t sizes) {
    write(VIRTIO_MMIO_STATUS, 4, 0);
    write(VIRTIO_MMIO_STATUS, 4, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 4, 0);
    write(VIRTIO_MMIO_DRIVER_FEATURES, 4, features);
    write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 4, 1);
    write(VIRTIO_MMIO_DRIVER_FEATURES, 4, legacy_ ? 0 : 1);  // VERSION_1
    write(VIRTIO_MMIO_STATUS, 4, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    for (unsigned q = 0; q < 2; ++q) {
      uint16_t size = static_cast<uint16_t>(1u << ((sizes >> (4 * q)) % 5));
      sizes_[q] = size;
      write(VIRTIO_MMIO_QUEUE_SEL, 4, q);
      write(VIRTIO_MMIO_QUEUE_NUM, 4, size);
      if (legacy_) {
        write(VIRTIO_MMIO_GUEST_PAGE_SIZE, 4, 0x1000);
        write(VIRTIO_MMIO_QUEUE_ALIGN, 4, 0x1000);
        write(VIRTIO_MMIO_QUEUE_PFN, 4, 0x10 + 2 * q);
      } else {
        write(VIRTIO_MMIO_QUEUE_DESC_LOW, 4, ring(q));
        write(VIRTIO_MMIO_QUEUE_AVAIL_LOW, 4, ring(q) + 0x400);
        write(VIRTIO_MMIO_QUEUE_USED_LOW, 4, ring(q) + 0x800);
        write(VIRTIO_MMIO_QUEUE_READY, 4, 1);
      }
    }
    write(VIRTIO_MMIO_STATUS, 4,
          VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
              VIRTIO_CONFIG_S_DRIVER_OK);
  }
  static uint32_t ring(unsigned q) { return 0x10000 + 0x2000 * q; }

  // Writes one descriptor and publishes it; the layout matches bring_up's for either version.
  void make_available(const uint8_t* r) {
    unsigned q = r[1] % 2;
    uint16_t size = sizes_[q];
    uint64_t desc = ring(q);
    uint64_t avail = legacy_ ? desc + 16ull * size : desc + 0x400;
    uint16_t slot = r[2] % size;
    vring_desc d{.addr = (uint64_t{r[4]} << 10) | r[5], .len = uint32_t{r[6]} << 4,
                 .flags = static_cast<uint16_t>(r[3] & 7), .next = static_cast<uint16_t>(r[7] % (size + 1))};
    (void)memory_.write_obj(desc + 16ull * slot, d);
    uint16_t index = memory_.read_obj<uint16_t>(avail + 2).value_or(0);
    (void)memory_.write_obj<uint16_t>(avail + 4 + 2ull * (index % size), slot);
    (void)memory_.write_obj<uint16_t>(avail + 2, static_cast<uint16_t>(index + 1 + (r[7] == 0xFF ? 100 : 0)));
  }

  void device_event(const uint8_t* r) {
    std::lock_guard lock(mmio_->mutex());
    VirtioContext* context = device_->context();
    switch (r[1] % 5) {
      case 0:
        if (context) context->fail("fuzz");
        break;
      case 1:
        if (context) context->watch(r[2] % 4, [this, q = r[3] % 2] { device_->drain(q); });
        break;
      case 2:
        if (context) context->unwatch(r[2] % 4);
        break;
      case 3: {
        auto it = watcher_.handlers.find(r[2] % 4);
        if (it != watcher_.handlers.end()) fetched_ = it->second;
        break;
      }
      default:
        ++device_->generation;
        break;
    }
    if (r[1] % 5 == 3 && fetched_) {
      // The event loop runs a handler it fetched earlier, perhaps after unwatch or reset: without our lock.
      mmio_->mutex().unlock();
      fetched_();
      mmio_->mutex().lock();
    }
  }

  void check() {
    bool pending = mmio_->transport().interrupt_status() != 0;
    if (line_->level != pending) fail("the line does not follow InterruptStatus");
    if (mmio_->transport().active() != (device_->context() != nullptr)) fail("active without activate (or after reset)");
  }

  GuestMemory memory_{{RamRange{0, kRam}}};
  Watcher watcher_;
  std::shared_ptr<Line> line_ = std::make_shared<Line>();
  Device* device_ = nullptr;
  std::unique_ptr<VirtioMmio> mmio_;
  bool legacy_ = false;
  uint16_t sizes_[2] = {1, 1};
  std::function<void()> fetched_;
};

}  // namespace
}  // namespace iovmm::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  iovmm::fuzz::Harness harness(data[0] & 1);
  size_t records = std::min((size - 1) / iovmm::fuzz::kRecord, iovmm::fuzz::kMaxRecords);
  for (size_t i = 0; i < records; ++i) harness.run(data + 1 + i * iovmm::fuzz::kRecord);
  return 0;
}
