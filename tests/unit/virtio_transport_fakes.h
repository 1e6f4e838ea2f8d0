// Fakes the virtio transport tests share: an interrupt line and an fd watcher that record what they were told, a
// device type that records every call and returns each available chain at once on notify (as a trivial device
// would), and a helper that makes one descriptor available on rings the test placed.
#pragma once

#define VIRTIO_RING_NO_LEGACY
#include <gtest/gtest.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include <functional>
#include <map>
#include <vector>

#include "devices/virtio/device.h"
#include "io/device.h"
#include "io/fd_watcher.h"
#include "memory/guest_memory.h"

namespace iovmm::devices::virtio::testing {

class FakeIrq final : public io::IrqLine {
 public:
  void set_level(bool asserted) override {
    level = asserted;
    ++changes;
  }
  bool level = false;
  int changes = 0;
};

class FakeWatcher final : public io::FdWatcher {
 public:
  void watch(int fd, std::function<void()> on_readable) override { handlers[fd] = std::move(on_readable); }
  void unwatch(int fd) override { handlers.erase(fd); }
  std::map<int, std::function<void()>> handlers;
};

// Records every call; on notify it returns each available chain at once, as a trivial device would.
class FakeDevice final : public VirtioDevice {
 public:
  explicit FakeDevice(uint64_t offered, uint32_t type = VIRTIO_ID_BLOCK) : features_(offered), type_(type) {}
  [[nodiscard]] uint32_t device_id() const override { return type_; }
  [[nodiscard]] uint64_t device_features() const override { return features_; }
  [[nodiscard]] unsigned queue_count() const override { return 2; }
  [[nodiscard]] uint16_t queue_max_size() const override { return 8; }
  [[nodiscard]] uint32_t config_size() const override { return static_cast<uint32_t>(config.size()); }
  [[nodiscard]] uint64_t config_read(uint64_t offset, unsigned size) override {
    ++config_reads;
    uint64_t value = 0;
    for (unsigned i = 0; i < size && offset + i < config.size(); ++i) value |= uint64_t{config[offset + i]} << (8 * i);
    return value;
  }
  void config_write(uint64_t offset, unsigned size, uint64_t value) override {
    config_writes.push_back({offset, size, value});
  }
  [[nodiscard]] uint32_t config_generation() const override { return generation; }
  void activate(VirtioContext& ctx, uint64_t negotiated) override {
    context = &ctx;
    features = negotiated;
    ++activations;
  }
  void queue_notify(unsigned queue) override {
    notifies.push_back(queue);
    if (!context || !complete_on_notify) return;
    Virtqueue& q = context->queues[queue];
    while (auto chain = q.pop(context->memory)) q.push(context->memory, chain->head, 0);
    context->used_buffers(queue);
  }
  void reset() override {
    ++resets;
    context = nullptr;
  }
  [[nodiscard]] std::string_view type_name() const override { return "fake"; }

  struct ConfigWrite {
    uint64_t offset;
    unsigned size;
    uint64_t value;
    bool operator==(const ConfigWrite&) const = default;
  };
  std::vector<uint8_t> config = {0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b};
  uint32_t generation = 7;
  VirtioContext* context = nullptr;
  uint64_t features = 0;
  int activations = 0;
  int resets = 0;
  int config_reads = 0;
  bool complete_on_notify = true;
  std::vector<unsigned> notifies;
  std::vector<ConfigWrite> config_writes;

 private:
  uint64_t features_;
  uint32_t type_;
};

// One descriptor made available on a queue whose rings the test placed.
inline void make_available(GuestMemory& memory, uint64_t desc, uint64_t avail, uint16_t size, uint16_t& next_avail) {
  vring_desc d{.addr = 0x80000, .len = 64, .flags = 0, .next = 0};
  uint16_t slot = next_avail % size;
  ASSERT_TRUE(memory.write_obj(desc + sizeof(vring_desc) * slot, d));
  ASSERT_TRUE(memory.write_obj<uint16_t>(avail + 4 + 2 * slot, slot));
  ++next_avail;
  ASSERT_TRUE(memory.write_obj<uint16_t>(avail + 2, next_avail));
}

}  // namespace iovmm::devices::virtio::testing
