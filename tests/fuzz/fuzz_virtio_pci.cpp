// Fuzz target: virtio-pci driven by a hostile driver. The first byte picks the build (bit 0: an MSI allocator, so
// MSI-X; bit 1: the legacy I/O BAR); then each 8-byte record is one event (at most 4096):
//   op % 8 = 0 configuration read, 1 configuration write (offset byte 1, width 1/2/4 from byte 3, value le32 from
//              bytes 4-7: capabilities, MSI-X control, the access window, BARs, command),
//            2 BAR read, 3 BAR write (BAR byte 2 % 6, offset le16 from bytes 1-2 masked to the BAR, width 1-8),
//            4 doorbell (modern or legacy notify as an eventfd delivers it: value byte 4, count byte 5),
//            5 a well-behaved bring-up through the modern or legacy interface (features bytes 4-7, rings in RAM,
//              MSI-X entries programmed and the vectors chosen from byte 1),
//            6 make a descriptor (fields from the record) available on queue byte 1 % 2,
//            7 device-type events: fail, watch, unwatch, run a watch handler fetched earlier.
// Nothing may crash or throw. After every event: without MSI-X enabled, Status.Interrupt equals ISR != 0 and the pin
// follows it unless Command.InterruptDisable; with MSI-X enabled, the pin is low; every MSI signal goes to a vector
// that was given a message first; a device type is active exactly between an accepted DRIVER_OK and a reset.
#define VIRTIO_RING_NO_LEGACY
#include <linux/pci_regs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
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

#include "devices/virtio/pci.h"
#include "virtio_fuzz_fakes.h"

namespace iovmm::fuzz {
namespace {

using devices::DeviceContext;
using devices::virtio::VirtioContext;
using devices::virtio::VirtioDevice;
using devices::virtio::VirtioPci;
using devices::virtio::VirtioPciOptions;
using devices::virtio::Virtqueue;

constexpr uint64_t kRam = 0x40000;
constexpr unsigned kRecord = 8;
constexpr size_t kMaxRecords = 4096;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_virtio_pci: %s\n", what);
  std::abort();
}

class Msi final : public io::MsiAllocator {
 public:
  class Vector final : public io::MsiVector {
   public:
    void set_message(uint64_t, uint32_t) override { programmed = true; }
    void signal() override {
      if (!programmed) fail("an MSI signal before any message was set");
    }
    bool programmed = false;
  };
  std::unique_ptr<io::MsiVector> allocate() override {
    if (++allocated > 64) fail("more vectors than table entries");
    return std::make_unique<Vector>();
  }
  int allocated = 0;
};

class Device final : public VirtioDevice {
 public:
  [[nodiscard]] uint32_t device_id() const override { return 2; }
  [[nodiscard]] uint64_t device_features() const override { return (1ull << 1) | (1ull << 9); }
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

 private:
  VirtioContext* context_ = nullptr;
  uint8_t config_[24] = {};
};

uint32_t le32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t{p[3]} << 24); }

class Harness {
 public:
  Harness(bool with_msi, bool legacy) : legacy_(legacy) {
    auto device = std::make_unique<Device>();
    device_ = device.get();
    DeviceContext context;
    context.memory = &memory_;
    context.watcher = &watcher_;
    context.msi = with_msi ? &msi_ : nullptr;
    pci_ = std::make_shared<VirtioPci>("fuzz-pci", std::move(device), context,
                                       VirtioPciOptions{.legacy_io_bar = legacy});
    pci_->connect_intx(line_, 10);
  }

  void run(const uint8_t* r) {
    static constexpr unsigned kConfigSizes[] = {1, 2, 4, 4};
    static constexpr unsigned kSizes[] = {1, 2, 4, 8};
    uint32_t value = le32(r + 4);
    switch (r[0] % 8) {
      case 0: {
        std::lock_guard lock(pci_->mutex());
        (void)pci_->config_read(r[1], kConfigSizes[r[3] & 3]);
        break;
      }
      case 1: {
        std::lock_guard lock(pci_->mutex());
        pci_->config_write(r[1], kConfigSizes[r[3] & 3], value);
        break;
      }
      case 2:
      case 3: {
        unsigned bar = r[2] % 6;
        const devices::BarSpec* spec = pci_->bar_spec(bar);
        uint64_t window = spec ? spec->size : 0x100;
        uint64_t offset = (r[1] | ((r[2] & 0xF8) << 5)) % window;
        unsigned size = kSizes[r[3] & 3];
        if (offset + size > window) break;  // the bus refuses it before the device
        std::lock_guard lock(pci_->mutex());
        if (r[0] % 8 == 2) {
          uint64_t read = pci_->read(bar, offset, size);
          if (spec && (read & ~io::size_mask(size))) fail("a BAR read returned bits above its width");
        } else {
          pci_->write(bar, offset, size, value & io::size_mask(size));
        }
        break;
      }
      case 4: {
        std::lock_guard lock(pci_->mutex());
        if (legacy_ && (r[1] & 1)) {
          pci_->doorbell(VirtioPci::kLegacyBar, VIRTIO_PCI_QUEUE_NOTIFY, 2, r[4], r[5] + 1u);
        } else {
          pci_->doorbell(VirtioPci::kModernBar, VirtioPci::kNotifyOffset, 2, r[4], r[5] + 1u);
        }
        break;
      }
      case 5: bring_up(r, value); break;
      case 6: make_available(r); break;
      default: device_event(r); break;
    }
    check();
  }

 private:
  void bar_write(unsigned bar, uint64_t offset, unsigned size, uint64_t value) {
    std::lock_guard lock(pci_->mutex());
    pci_->write(bar, offset, size, value);
  }
  uint64_t bar_read(unsigned bar, uint64_t offset, unsigned size) {
    std::lock_guard lock(pci_->mutex());
    return pci_->read(bar, offset, size);
  }
  void config_write(unsigned offset, unsigned size, uint32_t value) {
    std::lock_guard lock(pci_->mutex());
    pci_->config_write(offset, size, value);
  }
  static uint32_t ring(unsigned q) { return 0x10000 + 0x2000 * q; }

  void bring_up(const uint8_t* r, uint32_t features) {
    bool legacy = legacy_ && (r[2] & 1);
    legacy_rings_ = legacy;
    for (unsigned q = 0; q < 2; ++q) sizes_[q] = legacy ? 16 : static_cast<uint16_t>(1u << ((r[3] >> (4 * q)) % 5));
    if (pci_->msix()) {
      config_write(pci_->msix_capability() + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE);
      for (unsigned entry = 0; entry < 3; ++entry) {
        bar_write(VirtioPci::kMsixBar, 16 * entry, 8, 0xFEE00000 + entry);
        bar_write(VirtioPci::kMsixBar, 16 * entry + PCI_MSIX_ENTRY_DATA, 4, 0x40 + entry);
        bar_write(VirtioPci::kMsixBar, 16 * entry + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, (r[1] >> entry) & 1);
      }
    }
    if (legacy) {
      constexpr unsigned kBar = VirtioPci::kLegacyBar;
      bar_write(kBar, VIRTIO_PCI_STATUS, 1, 0);
      bar_write(kBar, VIRTIO_PCI_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
      bar_write(kBar, VIRTIO_PCI_GUEST_FEATURES, 4, features);
      bool msix = pci_->msix() && pci_->msix()->enabled();
      for (unsigned q = 0; q < 2; ++q) {
        bar_write(kBar, VIRTIO_PCI_QUEUE_SEL, 2, q);
        if (msix) bar_write(kBar, VIRTIO_MSI_QUEUE_VECTOR, 2, (r[1] >> (4 + 2 * q)) & 3);
        bar_write(kBar, VIRTIO_PCI_QUEUE_PFN, 4, ring(q) >> 12);
      }
      bar_write(kBar, VIRTIO_PCI_STATUS, 1,
                VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK);
      return;
    }
    constexpr unsigned kBar = VirtioPci::kModernBar;
    bar_write(kBar, VIRTIO_PCI_COMMON_STATUS, 1, 0);
    bar_write(kBar, VIRTIO_PCI_COMMON_STATUS, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    bar_write(kBar, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
    bar_write(kBar, VIRTIO_PCI_COMMON_GF, 4, features);
    bar_write(kBar, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
    bar_write(kBar, VIRTIO_PCI_COMMON_GF, 4, 1);  // VERSION_1
    bar_write(kBar, VIRTIO_PCI_COMMON_STATUS, 1,
              VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    bar_write(kBar, VIRTIO_PCI_COMMON_MSIX, 2, (r[1] >> 4) & 3);
    for (unsigned q = 0; q < 2; ++q) {
      bar_write(kBar, VIRTIO_PCI_COMMON_Q_SELECT, 2, q);
      bar_write(kBar, VIRTIO_PCI_COMMON_Q_SIZE, 2, sizes_[q]);
      bar_write(kBar, VIRTIO_PCI_COMMON_Q_MSIX, 2, (r[1] >> (6 + q)) & 1);
      bar_write(kBar, VIRTIO_PCI_COMMON_Q_DESCLO, 8, ring(q));
      bar_write(kBar, VIRTIO_PCI_COMMON_Q_AVAILLO, 8, ring(q) + 0x400);
      bar_write(kBar, VIRTIO_PCI_COMMON_Q_USEDLO, 8, ring(q) + 0x800);
      bar_write(kBar, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
    }
    bar_write(kBar, VIRTIO_PCI_COMMON_STATUS, 1,
              VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
                  VIRTIO_CONFIG_S_DRIVER_OK);
  }

  void make_available(const uint8_t* r) {
    unsigned q = r[1] % 2;
    uint16_t size = sizes_[q];
    uint64_t desc = ring(q);
    uint64_t avail = legacy_rings_ ? desc + 16ull * size : desc + 0x400;
    uint16_t slot = r[2] % size;
    vring_desc d{.addr = (uint64_t{r[4]} << 10) | r[5], .len = uint32_t{r[6]} << 4,
                 .flags = static_cast<uint16_t>(r[3] & 7), .next = static_cast<uint16_t>(r[7] % (size + 1))};
    (void)memory_.write_obj(desc + 16ull * slot, d);
    uint16_t index = memory_.read_obj<uint16_t>(avail + 2).value_or(0);
    (void)memory_.write_obj<uint16_t>(avail + 4 + 2ull * (index % size), slot);
    (void)memory_.write_obj<uint16_t>(avail + 2, static_cast<uint16_t>(index + 1 + (r[7] == 0xFF ? 100 : 0)));
  }

  void device_event(const uint8_t* r) {
    std::function<void()> run_later;
    {
      std::lock_guard lock(pci_->mutex());
      VirtioContext* context = device_->context();
      switch (r[1] % 4) {
        case 0:
          if (context) context->fail("fuzz");
          break;
        case 1:
          if (context) context->watch(r[2] % 4, [this, q = r[3] % 2] { device_->drain(q); });
          break;
        case 2:
          if (context) context->unwatch(r[2] % 4);
          break;
        default: {
          auto it = watcher_.handlers.find(r[2] % 4);
          if (it != watcher_.handlers.end()) fetched_ = it->second;
          run_later = fetched_;
          break;
        }
      }
    }
    // The event loop runs a handler it fetched earlier, perhaps after unwatch or reset, without the lock.
    if (run_later) run_later();
  }

  void check() {
    std::lock_guard lock(pci_->mutex());
    bool msix = pci_->msix() && pci_->msix()->enabled();
    bool isr = pci_->transport().interrupt_status() != 0;
    bool status = pci_->config_read(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT;
    bool disabled = pci_->config_read(PCI_COMMAND, 2) & PCI_COMMAND_INTX_DISABLE;
    if (status != (!msix && isr)) fail("Status.Interrupt does not follow ISR");
    if (line_->level != (status && !disabled)) fail("the INTx pin does not follow Status.Interrupt");
    if (pci_->transport().active() != (device_->context() != nullptr)) fail("active without activate (or after reset)");
  }

  GuestMemory memory_{{RamRange{0, kRam}}};
  Watcher watcher_;
  Msi msi_;
  std::shared_ptr<Line> line_ = std::make_shared<Line>();
  Device* device_ = nullptr;
  std::shared_ptr<VirtioPci> pci_;
  bool legacy_;
  bool legacy_rings_ = false;
  uint16_t sizes_[2] = {1, 1};
  std::function<void()> fetched_;
};

}  // namespace
}  // namespace iovmm::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  iovmm::fuzz::Harness harness(data[0] & 1, data[0] & 2);
  size_t records = std::min((size - 1) / iovmm::fuzz::kRecord, iovmm::fuzz::kMaxRecords);
  for (size_t i = 0; i < records; ++i) harness.run(data + 1 + i * iovmm::fuzz::kRecord);
  return 0;
}
