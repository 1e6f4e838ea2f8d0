// A conventional PCI function with a type-0 configuration header: the common part every PCI device model builds on.
//
// Models: the 256-byte configuration space with the spec's access rules (read-only identity fields, writable
// command bits, write-1-to-clear status bits, writable cache line size and interrupt line), up to six BARs (I/O,
// 32-bit or 64-bit memory, optionally prefetchable) with sizing by all-ones writes, I/O and memory decode from the
// command register, and a capability list built at set-up time. Accesses of 1, 2 or 4 bytes at any offset work.
// Whenever a BAR's effective mapping changes (decode bit or address), the BAR observer is told, so that windows on
// the buses follow the guest's programming (see PciBarMapper). Derived devices add device-specific configuration
// registers (config_read_extra/config_write_extra, offsets 0x40..0xFF) and BAR registers (bar_read/bar_write).
// Leaves out: the expansion ROM BAR (reads 0: no ROM), BIST, latency timer (reads 0, as in QEMU), type-1 (bridge)
// headers, PCI Express extended space, MSI/MSI-X logic (a device may add the capability bytes itself).
// INTx: a derived device states its interrupt condition with set_intx(); the pin follows Command.InterruptDisable.
// Spec: PCI Local Bus Specification 3.0, chapter 6 (configuration space).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "io/device.h"

namespace iovmm::devices {

enum class BarKind : uint8_t { io, mem32, mem64 };

struct BarSpec {
  unsigned index = 0;  // 0..5; a mem64 BAR also takes index + 1
  uint64_t size = 0;   // power of two: >= 4 for I/O, >= 16 for memory
  BarKind kind = BarKind::mem32;
  bool prefetchable = false;  // memory BARs only
};

struct PciIdentity {
  uint16_t vendor_id = 0;
  uint16_t device_id = 0;
  uint8_t revision = 0;
  uint32_t class_code = 0;  // base class << 16 | subclass << 8 | programming interface
  // QEMU gives every device it does not otherwise name Red Hat's subsystem 1af4:1100 ("QEMU virtual machine").
  uint16_t subsystem_vendor_id = 0x1af4;
  uint16_t subsystem_id = 0x1100;
  uint8_t interrupt_pin = 0;  // 0 = none, 1..4 = INTA#..INTD#
  uint16_t status = 0;        // read-only status bits present from reset (e.g. DEVSEL timing)
};

namespace pci_config {
constexpr unsigned kVendorId = 0x00;
constexpr unsigned kDeviceId = 0x02;
constexpr unsigned kCommand = 0x04;
constexpr unsigned kStatus = 0x06;
constexpr unsigned kRevision = 0x08;
constexpr unsigned kClassCode = 0x09;
constexpr unsigned kCacheLineSize = 0x0C;
constexpr unsigned kLatencyTimer = 0x0D;
constexpr unsigned kHeaderType = 0x0E;
constexpr unsigned kBar0 = 0x10;
constexpr unsigned kSubsystemVendorId = 0x2C;
constexpr unsigned kSubsystemId = 0x2E;
constexpr unsigned kExpansionRom = 0x30;
constexpr unsigned kCapabilitiesPointer = 0x34;
constexpr unsigned kInterruptLine = 0x3C;
constexpr unsigned kInterruptPin = 0x3D;
constexpr unsigned kDeviceSpecific = 0x40;  // first byte after the standard header
constexpr unsigned kSize = 0x100;

constexpr uint16_t kCommandIo = 1u << 0;
constexpr uint16_t kCommandMemory = 1u << 1;
constexpr uint16_t kCommandBusMaster = 1u << 2;
constexpr uint16_t kCommandParityResponse = 1u << 6;
constexpr uint16_t kCommandSerr = 1u << 8;
constexpr uint16_t kCommandIntxDisable = 1u << 10;
constexpr uint16_t kCommandWritable =
    kCommandIo | kCommandMemory | kCommandBusMaster | kCommandParityResponse | kCommandSerr | kCommandIntxDisable;

constexpr uint16_t kStatusInterrupt = 1u << 3;
constexpr uint16_t kStatusCapabilityList = 1u << 4;
// Error bits the device sets and software clears by writing 1: master data parity error, signalled/received
// target abort, received master abort, signalled system error, detected parity error.
constexpr uint16_t kStatusWriteOneToClear = 0xF900;

constexpr uint8_t kHeaderTypeMultiFunction = 0x80;
constexpr unsigned kBarCount = 6;
}  // namespace pci_config

class PciDevice : public io::Device, public std::enable_shared_from_this<PciDevice> {
 public:
  // Told when BAR `bar` stops decoding at old_base and/or starts decoding at new_base. Called with this device's
  // mutex held (from the configuration write that caused it).
  using BarObserver = std::function<void(PciDevice& device, unsigned bar, std::optional<uint64_t> old_base,
                                         std::optional<uint64_t> new_base)>;

  // Throws Error for an invalid BAR list (bad index, size not a power of two, overlapping indices).
  PciDevice(std::string name, const PciIdentity& identity, std::vector<BarSpec> bars);

  // Configuration space access (the PCI root calls these with mutex() held). `size` is 1, 2 or 4 and
  // [offset, offset+size) must lie inside the 256 bytes; anything else reads all-ones and writes nothing.
  [[nodiscard]] uint32_t config_read(unsigned offset, unsigned size);
  void config_write(unsigned offset, unsigned size, uint32_t value);

  // Set-up API (before the guest runs; takes the mutex).
  // Appends a capability with `body` following the ID and next-pointer bytes; returns its offset. Bytes of the
  // body are read-only to the guest unless `writable_mask` (same length as body, or empty) says otherwise.
  uint8_t add_capability(uint8_t id, std::span<const uint8_t> body, std::span<const uint8_t> writable_mask = {});
  void set_bar_observer(BarObserver observer);
  void set_multifunction(bool multifunction);
  // Wires the function's INTx pin (interrupt_pin() != 0) to `line`, which reaches the guest as `gsi`; the
  // interrupt line register reads `gsi`, as firmware (SeaBIOS) would have written it.
  void connect_intx(std::shared_ptr<io::IrqLine> line, uint8_t gsi);

  // Queries (callers that are not already inside a configuration access take mutex() first).
  [[nodiscard]] const std::vector<BarSpec>& bars() const { return bars_; }
  [[nodiscard]] const BarSpec* bar_spec(unsigned bar) const;
  // The address programmed into the BAR, whether or not the BAR decodes.
  [[nodiscard]] uint64_t bar_address(unsigned bar) const;
  // The address the BAR decodes at now: nullopt when its decode bit is off, it holds 0, or it lies beyond its
  // address space (e.g. all-ones while being sized).
  [[nodiscard]] std::optional<uint64_t> bar_decode_base(unsigned bar) const;
  [[nodiscard]] uint32_t class_code() const;
  [[nodiscard]] uint8_t interrupt_pin() const { return config_[pci_config::kInterruptPin]; }

  // BAR accesses: `region` is the BAR index. Forwarded to bar_read/bar_write; BARs the device lacks read all-ones.
  // Regions 6 and up are windows at fixed places that some functions decode besides their BARs (IDE's legacy
  // ports in compatibility mode); they are forwarded too.
  [[nodiscard]] uint64_t read(unsigned region, uint64_t offset, unsigned size) final;
  void write(unsigned region, uint64_t offset, unsigned size, uint64_t value) final;

 protected:
  // Device-specific configuration registers: accesses lying wholly in 0x40..0xFF. The defaults read the stored
  // bytes (capabilities included) and write through the capabilities' writable masks.
  [[nodiscard]] virtual uint32_t config_read_extra(unsigned offset, unsigned size);
  virtual void config_write_extra(unsigned offset, unsigned size, uint32_t value);
  // Register accesses inside a BAR; `offset` is relative to the BAR's base. Defaults: all-ones, writes dropped.
  [[nodiscard]] virtual uint64_t bar_read(unsigned bar, uint64_t offset, unsigned size);
  virtual void bar_write(unsigned bar, uint64_t offset, unsigned size, uint64_t value);

  // The device's interrupt condition for INTx. The pin is asserted while the condition holds and the guest has not
  // set Command.InterruptDisable; Status.InterruptStatus (bit 3) shows the condition either way. Call with
  // mutex() held.
  void set_intx(bool pending);

  // Stored configuration bytes and the guest-writable bits of each (for derived devices' own registers).
  [[nodiscard]] std::array<uint8_t, pci_config::kSize>& config_bytes() { return config_; }
  [[nodiscard]] std::array<uint8_t, pci_config::kSize>& writable_bits() { return writable_; }

 private:
  [[nodiscard]] uint32_t read_header(unsigned offset, unsigned size) const;
  void write_header(unsigned offset, unsigned size, uint32_t value);
  [[nodiscard]] uint8_t bar_register_byte(unsigned offset) const;
  void write_bar_register_bytes(unsigned dword_offset, uint32_t value, uint32_t byte_mask);
  // Compares every BAR's decode base with what the observer was last told and reports the differences.
  void publish_bar_changes();
  [[nodiscard]] int bar_slot_owner(unsigned slot) const;  // BAR index whose register occupies `slot`, or -1

  std::vector<BarSpec> bars_;
  std::array<uint64_t, pci_config::kBarCount> bar_address_{};  // indexed by the BAR's own index
  std::array<std::optional<uint64_t>, pci_config::kBarCount> published_{};
  std::array<uint8_t, pci_config::kSize> config_{};
  std::array<uint8_t, pci_config::kSize> writable_{};  // bits the guest may change (outside BARs and status)
  uint8_t last_capability_ = 0;
  uint16_t next_capability_offset_ = pci_config::kDeviceSpecific;
  BarObserver observer_;
  std::shared_ptr<io::IrqLine> intx_line_;
  bool intx_pending_ = false;
  bool intx_asserted_ = false;
  void update_intx();
};

}  // namespace iovmm::devices
