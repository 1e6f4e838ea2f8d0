// virtio-pci (VIRTIO 1.2 section 4.1), laid out as QEMU 7.2 lays it out so that the same guest drivers and the
// same measurements apply:
//   - Vendor 1af4. Modern-only: device 0x1040 + type, revision 1. With VirtioPciOptions::legacy_io_bar, a
//     transitional device: 0x1000-0x103f (0x1001 for block), revision 0, subsystem id = type. Class from the type
//     (block: 0x018000). Interrupt pin INTA.
//   - BAR4, 64-bit prefetchable memory, 16 KiB ("modern"): common configuration at 0x0, ISR at 0x1000, device
//     configuration at 0x2000, notifications at 0x3000. notify_off_multiplier is 0, so every queue notifies at
//     0x3000 with its index as the 16-bit value: one datamatch ioeventfd per queue.
//   - BAR1, 32-bit memory, 4 KiB ("msix", only with an MsiAllocator): MSI-X table at 0, PBA at 0x800; one entry
//     per queue plus one for configuration changes (at most 128).
//   - BAR0, I/O ("legacy", only with legacy_io_bar): the legacy header (4.1.4.8), with the MSI-X vector registers
//     at 20 while MSI-X is enabled, then the device configuration.
//   - Capabilities: virtio common/notify/ISR/device/PCI-configuration-access (vendor-specific, 0x09), and MSI-X
//     (0x11, Enable and Function Mask writable).
// Interrupts: with MSI-X enabled, the vector the driver chose for the queue or for configuration changes (none:
// VIRTIO_MSI_NO_VECTOR); otherwise INTx, asserted while ISR is non-zero. Reading ISR returns and clears it.
//
// Register tables (register_blocks(): "modern" = region 4, "msix" = region 1, "legacy" = region 0):
//   device_features_sel, driver_features_sel, queue_sel        rw  latch           selectors
//   driver_features, queue_size, queue_desc_lo/hi, queue_avail_lo/hi, queue_used_lo/hi; legacy driver_features
//                                                              rw  latch           stored for FEATURES_OK/enable
//   device_features, config_generation; legacy queue_size      ro  synchronous     depend on a selector
//   num_queues, queue_notify_off; legacy device_features       ro  constant        fastpath from the table
//   status, queue_enable, config_msix_vector, queue_msix_vector, config; legacy queue_pfn
//                                                              rw  synchronous     act at once
//   isr                                                        ro  read_sensitive  reading clears it
//   queue_notify                                               wo  doorbell        datamatch_values = queue count
//   msix_table (rw), msix_pba (ro)                             synchronous     reprogram or show vectors
//
// Hostile accesses: common-configuration fields take writes of their own width at their own offset (and 64-bit
// writes covering two 32-bit fields); other writes are dropped. Reads of any width compose the fields' bytes; bytes
// outside any field read 0. Accesses that straddle two of BAR4's regions read 0 and are dropped. Vector numbers
// past the table read back as VIRTIO_MSI_NO_VECTOR. The PCI-configuration-access window only reaches this
// function's own BARs, with lengths 1, 2 or 4 at aligned offsets.
// Leaves out: bus-master enable gating DMA and MSI, PCIe capabilities, VIRTIO_F_NOTIFICATION_DATA, per-queue
// notify addresses, shared memory capabilities.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "devices/device_context.h"
#include "devices/pci/pci_device.h"
#include "devices/virtio/device.h"
#include "devices/virtio/pci_msix.h"
#include "devices/virtio/transport.h"
#include "io/register_map.h"
#include "io/registers.h"

namespace iovmm::devices::virtio {

struct VirtioPciOptions {
  bool legacy_io_bar = false;  // transitional device (1af4:1000+) with a legacy I/O BAR0
};

class VirtioPci final : public PciDevice,
                        public io::LocklessReads,
                        public io::DoorbellSink,
                        public io::Quiescent,
                        private InterruptSink {
 public:
  static constexpr uint16_t kVendorId = 0x1af4;
  static constexpr uint16_t kModernDeviceIdBase = 0x1040;

  static constexpr unsigned kLegacyBar = 0;
  static constexpr unsigned kMsixBar = 1;
  static constexpr unsigned kModernBar = 4;
  static constexpr uint64_t kModernBarSize = 0x4000;
  static constexpr uint64_t kMsixBarSize = 0x1000;
  static constexpr uint64_t kCommonOffset = 0x0000;
  static constexpr uint64_t kIsrOffset = 0x1000;
  static constexpr uint64_t kDeviceOffset = 0x2000;
  static constexpr uint64_t kNotifyOffset = 0x3000;
  static constexpr uint64_t kModernRegionSize = 0x1000;
  static constexpr uint64_t kMsixTableOffset = 0x000;
  static constexpr uint64_t kMsixPbaOffset = 0x800;
  static constexpr unsigned kMaxMsixEntries = 128;  // the table must end where the PBA starts

  // Throws UsageError for a missing device, memory or watcher, a device type with no transitional id (with
  // legacy_io_bar), or a configuration space larger than the 4 KiB device region.
  VirtioPci(std::string name, std::unique_ptr<VirtioDevice> device, const DeviceContext& context,
            VirtioPciOptions options);
  ~VirtioPci() override;

  [[nodiscard]] std::span<const io::RegisterBlock> register_blocks() const override { return blocks_; }
  // Takes the mutex: this device has no lock-free registers (its constants are answered from the table).
  [[nodiscard]] uint64_t read_lockless(unsigned region, uint64_t offset, unsigned size) override;
  void doorbell(unsigned region, uint64_t offset, unsigned size, uint64_t value, uint64_t count) override;
  void quiesce() override;

  // Inspection (tests).
  [[nodiscard]] const VirtioTransport& transport() const { return transport_; }
  [[nodiscard]] const MsixTable* msix() const { return msix_.get(); }
  // Configuration-space offsets of the capabilities (0 when absent).
  [[nodiscard]] uint8_t msix_capability() const { return msix_cap_; }
  [[nodiscard]] uint8_t pci_cfg_capability() const { return pci_cfg_cap_; }

 protected:
  [[nodiscard]] uint32_t config_read_extra(unsigned offset, unsigned size) override;
  void config_write_extra(unsigned offset, unsigned size, uint32_t value) override;
  [[nodiscard]] uint64_t bar_read(unsigned bar, uint64_t offset, unsigned size) override;
  void bar_write(unsigned bar, uint64_t offset, unsigned size, uint64_t value) override;

 private:
  // Built in pci.cpp.
  void add_capabilities();
  void build_register_tables();
  [[nodiscard]] bool msix_enabled() const { return msix_ && msix_->enabled(); }
  void msix_control_written();
  void pci_cfg_access(bool is_write);
  void update_intx();
  [[nodiscard]] uint16_t checked_vector(uint32_t vector) const;
  void write_config_vector(uint32_t vector);
  void write_queue_vector(uint32_t vector);
  [[nodiscard]] uint16_t queue_vector() const;

  // The rows' ids (io::Register::id) in all three BARs' tables, which the BAR code switches on once a table has
  // found the row; a name the legacy and modern tables share is one enumerator.
  enum class Reg : uint16_t {
    device_features_sel, device_features, driver_features_sel, driver_features, config_msix_vector, num_queues,
    status, config_generation, queue_sel, queue_size, queue_msix_vector, queue_enable, queue_notify_off,
    queue_desc_lo, queue_desc_hi, queue_avail_lo, queue_avail_hi, queue_used_lo, queue_used_hi, isr, config,
    queue_notify, queue_pfn, msix_table, msix_pba,
  };
  [[nodiscard]] static Reg id(const io::Register& row) { return static_cast<Reg>(row.id); }

  // BAR register logic, in pci_bars.cpp.
  [[nodiscard]] uint64_t modern_read(uint64_t offset, unsigned size);
  void modern_write(uint64_t offset, unsigned size, uint64_t value);
  [[nodiscard]] uint32_t modern_field(const io::Register& row);
  void write_common(uint64_t offset, unsigned size, uint64_t value);
  void write_common_field(const io::Register& row, uint32_t value);
  [[nodiscard]] uint64_t legacy_header_size() const;
  [[nodiscard]] uint64_t legacy_read(uint64_t offset, unsigned size);
  void legacy_write(uint64_t offset, unsigned size, uint64_t value);
  [[nodiscard]] uint32_t legacy_field(const io::Register& row);
  void write_legacy_field(const io::Register& row, uint32_t value);
  [[nodiscard]] uint64_t msix_read(uint64_t offset, unsigned size) const;
  void msix_write(uint64_t offset, unsigned size, uint64_t value);

  // InterruptSink
  void raise(std::optional<unsigned> queue) override;
  void interrupt_status_cleared() override;
  void transport_reset() override;

  bool legacy_io_bar_;
  uint64_t legacy_bar_size_;
  VirtioTransport transport_;
  std::unique_ptr<MsixTable> msix_;  // null without an MsiAllocator: INTx only
  uint16_t config_vector_;
  std::vector<uint16_t> queue_vectors_;
  uint8_t msix_cap_ = 0;
  uint8_t pci_cfg_cap_ = 0;
  std::vector<io::Register> modern_registers_;
  std::vector<io::Register> msix_registers_;
  std::vector<io::Register> legacy_registers_;
  io::RegisterMap modern_map_;  // of modern_registers_
  io::RegisterMap msix_map_;    // of msix_registers_ (empty without MSI-X)
  io::RegisterMap legacy_map_;  // of legacy_registers_ (empty without the legacy BAR)
  std::vector<io::RegisterBlock> blocks_;
};

}  // namespace iovmm::devices::virtio
