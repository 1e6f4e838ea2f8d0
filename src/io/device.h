// What a device model is to the rest of the VMM: register logic behind one or more windows ("regions"), with a lock
// of its own. A device never learns how an access reached it (exit, coalesced replay, eventfd, socket...).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <utility>

#include "io/registers.h"

namespace iovmm::io {

enum class Space : uint8_t { pio, mmio };
enum class Direction : uint8_t { read, write };

[[nodiscard]] constexpr const char* to_string(Space space) { return space == Space::pio ? "pio" : "mmio"; }
[[nodiscard]] constexpr bool valid_access_size(unsigned size) {
  return size == 1 || size == 2 || size == 4 || size == 8;
}
[[nodiscard]] constexpr uint64_t size_mask(unsigned size) { return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1; }

class Device {
 public:
  explicit Device(std::string name) : name_(std::move(name)), mutex_(std::make_shared<std::mutex>()) {}
  // A window of `owner` that is an object of its own (IDE's legacy ports next to the controller's BARs): it takes
  // the owner's lock, so the device's state stays behind one mutex whichever window an access came through.
  Device(std::string name, Device& owner) : name_(std::move(name)), mutex_(owner.mutex_) {}
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;
  virtual ~Device() = default;

  [[nodiscard]] const std::string& name() const { return name_; }

  // `region` names which of the device's windows was hit (PCI BAR number, or 0 for a device with one window),
  // `offset` is relative to that window's base, `size` is 1, 2, 4 or 8 and the value is little-endian in the low
  // bytes. The bus has already checked that [offset, offset+size) lies inside the window, and holds mutex().
  [[nodiscard]] virtual uint64_t read(unsigned region, uint64_t offset, unsigned size) = 0;
  virtual void write(unsigned region, uint64_t offset, unsigned size, uint64_t value) = 0;

  // The device's register tables, one block per window that has one. A window without a table can only be
  // dispatched as a whole (exit or ioregionfd).
  [[nodiscard]] virtual std::span<const RegisterBlock> register_blocks() const { return {}; }
  // The table of one window: empty when it has none.
  [[nodiscard]] std::span<const Register> registers(unsigned region) const {
    for (const auto& block : register_blocks()) {
      if (block.region == region) return block.registers;
    }
    return {};
  }

  // Serialises register accesses against each other and against the device's own threads. One per device: there
  // is no global lock.
  [[nodiscard]] std::mutex& mutex() { return *mutex_; }

 private:
  std::string name_;
  std::shared_ptr<std::mutex> mutex_;
};

// Optional capabilities: small interfaces a device opts into by inheriting them. The dispatch layer looks for them
// once, when it binds a window (dynamic_cast), never per access.

// Reads of registers bound to `fastpath` (Register::lockless_read): called WITHOUT Device::mutex(), possibly at the
// same time as read/write on other threads. Only registers the device declared lockless are read this way.
class LocklessReads {
 public:
  virtual ~LocklessReads() = default;
  [[nodiscard]] virtual uint64_t read_lockless(unsigned region, uint64_t offset, unsigned size) = 0;
};

// Writes that arrived as an eventfd signal rather than as an exit: `count` writes of `value` (the datamatch value,
// or Register::doorbell_value for a wildcard doorbell, whose written values KVM does not keep). Called with the
// device's mutex held, on the event loop. A device without this capability gets one write(): a doorbell rung
// twice before anyone looked is the same as rung once.
class DoorbellSink {
 public:
  virtual ~DoorbellSink() = default;
  virtual void doorbell(unsigned region, uint64_t offset, unsigned size, uint64_t value, uint64_t count) = 0;
};

// A device that borrowed the machine's services (doorbells, fd watchers, interrupt lines) or has work in flight:
// quiesce() is called once, before those services are destroyed; the device may still be referenced (by bus
// tables) afterwards but receives no more accesses.
class Quiescent {
 public:
  virtual ~Quiescent() = default;
  virtual void quiesce() = 0;
};

// A level-triggered interrupt line as the device sees it; the machine decides how it reaches the guest.
class IrqLine {
 public:
  virtual ~IrqLine() = default;
  virtual void set_level(bool asserted) = 0;
};

}  // namespace iovmm::io
