// virtio-mmio (VIRTIO 1.2 section 4.2): a 0x200-byte window of 32-bit registers followed by the device
// configuration space at 0x100, one level-triggered interrupt line. Version 2 by default; version 1 ("legacy",
// section 4.2.4: GuestPageSize, QueuePFN, QueueAlign, one 32-bit feature set) with VirtioMmioOptions::legacy.
// Identifies itself as QEMU's virtio-mmio does (vendor "QEMU", 0x554d4551).
//
// Register table (register_blocks(): one block, region 0, "mmio"); every register is 32 bits:
//   magic_value, version, device_id, vendor_id      ro  constant        answered from the table (fastpath)
//   device_features, queue_num_max, config_generation
//                                                   ro  synchronous     the value depends on a selector
//   device_features_sel, driver_features_sel, queue_sel, shm_sel
//                                                   wo  latch           selectors: a later access acts on them
//   driver_features, queue_num, queue_desc_low/high, queue_avail_low/high, queue_used_low/high,
//   legacy guest_page_size and queue_align          wo  latch           stored for DRIVER_OK or QueueReady
//   queue_ready, legacy queue_pfn                   rw  synchronous     makes the queue live at once
//   queue_notify                                    wo  doorbell        value = queue index; datamatch_values =
//                                                                       queue count: one ioeventfd per queue
//   interrupt_status                                ro  synchronous     lockless_read: an atomic, fastpath legal
//   interrupt_ack, status                           wo/rw synchronous   lower the line / negotiate, reset, activate
//   shm_len_low/high, shm_base_low/high             ro  constant        all-ones: no shared memory regions (4.2.2)
//   config (0x100, config_size() bytes)             rw  synchronous     the device type's configuration space
// A coalesced latch replayed later behaves identically: its effect depends only on earlier writes (selectors,
// status, queue_ready), which reach the device in order before the next exit.
//
// Hostile accesses: registers below 0x100 accept only aligned 32-bit accesses (4.2.2.2); anything else reads 0
// and is not written. Reads of write-only or unknown registers read 0; writes to read-only ones are dropped.
// Leaves out: shared memory regions, VIRTIO_F_NOTIFICATION_DATA.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "devices/device_context.h"
#include "devices/virtio/device.h"
#include "devices/virtio/transport.h"
#include "io/device.h"
#include "io/register_map.h"
#include "io/registers.h"

namespace iovmm::devices::virtio {

struct VirtioMmioOptions {
  bool legacy = false;  // version 1 register layout (GuestPageSize, QueuePFN, QueueAlign)
};

class VirtioMmio final : public io::Device,
                         public io::LocklessReads,
                         public io::DoorbellSink,
                         public io::Quiescent,
                         private InterruptSink {
 public:
  static constexpr uint64_t kWindowSize = 0x200;
  static constexpr uint32_t kVendorId = 0x554d4551;  // "QEMU", as QEMU's virtio-mmio reports

  // Throws UsageError for a missing device, memory or watcher, or a configuration space larger than 0x100 bytes.
  VirtioMmio(std::string name, std::unique_ptr<VirtioDevice> device, const DeviceContext& context,
             VirtioMmioOptions options);
  ~VirtioMmio() override;

  // The line the machine wired to the window's GSI. Takes the mutex.
  void connect_irq(std::shared_ptr<io::IrqLine> line);

  [[nodiscard]] uint64_t read(unsigned region, uint64_t offset, unsigned size) override;
  void write(unsigned region, uint64_t offset, unsigned size, uint64_t value) override;
  // interrupt_status and the constants without the lock; anything else takes it.
  [[nodiscard]] uint64_t read_lockless(unsigned region, uint64_t offset, unsigned size) override;
  [[nodiscard]] std::span<const io::RegisterBlock> register_blocks() const override { return blocks_; }
  void doorbell(unsigned region, uint64_t offset, unsigned size, uint64_t value, uint64_t count) override;
  void quiesce() override;

  // Inspection (tests).
  [[nodiscard]] const VirtioTransport& transport() const { return transport_; }

 private:
  [[nodiscard]] std::vector<io::Register> build_registers() const;
  [[nodiscard]] uint32_t read_register(const io::Register& row);
  void write_register(const io::Register& row, uint32_t value);
  [[nodiscard]] Interface interface() const { return legacy_ ? Interface::legacy : Interface::modern; }
  void update_line();

  // InterruptSink
  void raise(std::optional<unsigned> queue) override;
  void interrupt_status_cleared() override;
  void transport_reset() override;

  bool legacy_;
  VirtioTransport transport_;
  std::shared_ptr<io::IrqLine> line_;
  bool line_level_ = false;
  std::vector<io::Register> registers_;
  io::RegisterMap map_;  // of registers_
  std::vector<io::RegisterBlock> blocks_;
};

}  // namespace iovmm::devices::virtio
