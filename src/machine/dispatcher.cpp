#include "machine/dispatcher.h"

#include <sys/eventfd.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cstring>
#include <vector>
#include <fmt/core.h>

#include "common/error.h"
#include "common/log.h"

namespace iovmm {

struct Dispatcher::Doorbell {
  std::shared_ptr<io::Device> device;
  unsigned region;
  uint64_t offset;
  unsigned size;
  std::optional<uint64_t> datamatch;
  uint64_t delivered_value;  // what doorbell() is told was written
  bool from_binding;         // registered for a window's binding (lives and dies with the window)
  Fd eventfd;
  std::optional<kvm::IoeventfdSpec> armed;  // where KVM currently signals it
  std::shared_ptr<io::AccessCounts> counts;
  bool active = true;  // cleared, under the device's mutex, when removed: a late signal is then dropped
};

namespace {
kvm::IoSpace to_kvm(io::Space space) { return space == io::Space::pio ? kvm::IoSpace::pio : kvm::IoSpace::mmio; }

uint64_t read_eventfd(int fd) {
  uint64_t count = 0;
  return ::read(fd, &count, sizeof count) == sizeof count ? count : 0;
}
}  // namespace

Dispatcher::Dispatcher(kvm::Vm& vm, io::Bus& pio, io::Bus& mmio, EventLoop& loop)
    : vm_(vm), pio_(pio), mmio_(mmio), loop_(loop) {
  pio_.add_listener([this](const io::Window* removed, const io::Window* added) {
    on_window_change(pio_, removed, added);
  });
  mmio_.add_listener([this](const io::Window* removed, const io::Window* added) {
    on_window_change(mmio_, removed, added);
  });
}

Dispatcher::~Dispatcher() {
  std::lock_guard lock(mutex_);
  for (auto& [handle, doorbell] : doorbells_) {
    disarm(*doorbell);
    loop_.remove(doorbell->eventfd.get());
  }
}

void Dispatcher::arm(Doorbell& doorbell, io::Space space, uint64_t window_base) {
  kvm::IoeventfdSpec spec{to_kvm(space), window_base + doorbell.offset, doorbell.size, doorbell.datamatch.has_value(),
                          doorbell.datamatch.value_or(0)};
  vm_.add_ioeventfd(spec, doorbell.eventfd.get());
  doorbell.armed = spec;
}

void Dispatcher::disarm(Doorbell& doorbell) {
  if (!doorbell.armed) return;
  try {
    vm_.remove_ioeventfd(*doorbell.armed, doorbell.eventfd.get());
  } catch (const Error& e) {
    log::warn("{}: {}", doorbell.device->name(), e.what());
  }
  doorbell.armed.reset();
}

// Every signalled write is counted once, under the ioeventfd path, whether the device got it or it was dropped
// because the doorbell was removed first (as QEMU drops them): the guest did write.
uint64_t Dispatcher::take_signals(Doorbell& doorbell) {
  uint64_t count = read_eventfd(doorbell.eventfd.get());
  if (count && doorbell.counts) {
    doorbell.counts->add(doorbell.offset, doorbell.size, io::Direction::write, io::Path::ioeventfd, count);
  }
  return count;
}

void Dispatcher::deliver(Doorbell& doorbell) {
  // The count is read under the device's lock so that take_pending(), called by the device under the same lock,
  // and this delivery never both see the same signals.
  std::lock_guard lock(doorbell.device->mutex());
  uint64_t count = take_signals(doorbell);
  if (count == 0 || !doorbell.active) return;
  doorbell.device->doorbell(doorbell.region, doorbell.offset, doorbell.size, doorbell.delivered_value, count);
}

int Dispatcher::add_locked(std::shared_ptr<io::Device> device, unsigned region, uint64_t offset, unsigned size,
                           std::optional<uint64_t> datamatch, uint64_t wildcard_value, bool from_binding,
                           io::DoorbellDelivery delivery) {
  auto doorbell = std::make_shared<Doorbell>();
  doorbell->device = std::move(device);
  doorbell->region = region;
  doorbell->offset = offset;
  doorbell->size = size;
  doorbell->datamatch = datamatch;
  doorbell->delivered_value = datamatch.value_or(wildcard_value);
  doorbell->from_binding = from_binding;
  doorbell->eventfd = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!doorbell->eventfd) throw_errno(fmt::format("{}: eventfd for a doorbell", doorbell->device->name()));
  for (io::Bus* bus : {&pio_, &mmio_}) {
    if (auto window = bus->find_window(*doorbell->device, region)) {
      doorbell->counts = window->counts;
      arm(*doorbell, bus->space(), window->base);
    }
  }
  if (delivery == io::DoorbellDelivery::on_signal) {
    std::weak_ptr<Doorbell> weak = doorbell;
    loop_.add(doorbell->eventfd.get(), EPOLLIN, [this, weak](uint32_t) {
      if (auto strong = weak.lock()) deliver(*strong);
    });
  }
  int handle = next_handle_++;
  doorbells_[handle] = std::move(doorbell);
  return handle;
}

int Dispatcher::add_doorbell(io::Device& device, unsigned region, uint64_t offset, unsigned size,
                             std::optional<uint64_t> datamatch, io::DoorbellDelivery delivery) {
  // Called from inside a guest's register write: nothing here may stop the VM. Another vCPU can unmap the window
  // between that write's lookup and this call, and KVM can refuse an ioeventfd; either way the writes keep
  // exiting, which is correct, only slower.
  std::optional<io::Window> window = pio_.find_window(device, region);
  if (!window) window = mmio_.find_window(device, region);
  if (!window) {
    IOVMM_LOG_RATELIMITED("{}: doorbell for region {}, which is not mapped now: writes keep exiting", device.name(),
                          region);
    return kNoDoorbell;
  }
  std::lock_guard lock(mutex_);
  try {
    return add_locked(window->device, region, offset, size, datamatch, 0, false, delivery);
  } catch (const Error& e) {
    IOVMM_LOG_RATELIMITED("{}: {}: writes keep exiting", device.name(), e.what());
    return kNoDoorbell;
  }
}

void Dispatcher::remove_doorbell(int handle) {
  std::shared_ptr<Doorbell> doorbell;
  {
    std::lock_guard lock(mutex_);
    auto it = doorbells_.find(handle);
    if (it == doorbells_.end()) return;
    doorbell = it->second;
    doorbells_.erase(it);
    disarm(*doorbell);
  }
  doorbell->active = false;  // the caller holds the device's mutex, as deliver() does when it checks
  loop_.remove(doorbell->eventfd.get());
  (void)take_signals(*doorbell);
}

uint64_t Dispatcher::take_pending(int handle) {
  std::shared_ptr<Doorbell> doorbell;
  {
    std::lock_guard lock(mutex_);
    auto it = doorbells_.find(handle);
    if (it == doorbells_.end()) return 0;
    doorbell = it->second;
  }
  return take_signals(*doorbell);
}

// Called with `bus`'s writer lock held, for every window that appears, disappears or moves.
void Dispatcher::on_window_change(io::Bus& bus, const io::Window* removed, const io::Window* added) {
  std::lock_guard lock(mutex_);
  kvm::IoSpace space = to_kvm(bus.space());
  if (removed && removed->binding) {
    for (const auto& bound : removed->binding->registers) {
      if (bound.path == io::Path::coalesced) {
        vm_.unregister_coalesced(space, removed->base + bound.reg.offset, bound.reg.width);
        coalesced_zones_.fetch_sub(1, std::memory_order_relaxed);
      }
    }
  }
  // Doorbells of the window: re-armed at its new place, or dropped with it when they came from its binding.
  const io::Window* window = added ? added : removed;
  for (auto it = doorbells_.begin(); it != doorbells_.end();) {
    Doorbell& doorbell = *it->second;
    bool ours = doorbell.device == window->device && doorbell.region == window->region;
    if (ours && removed) disarm(doorbell);
    if (ours && added) {
      if (doorbell.from_binding && added->binding != (removed ? removed->binding : nullptr)) {
        loop_.remove(doorbell.eventfd.get());
        it = doorbells_.erase(it);
        continue;
      }
      doorbell.counts = added->counts;
      arm(doorbell, bus.space(), added->base);
    } else if (ours && !added && doorbell.from_binding) {
      loop_.remove(doorbell.eventfd.get());
      it = doorbells_.erase(it);
      continue;
    }
    ++it;
  }
  if (added && added->binding) {
    for (const auto& bound : added->binding->registers) {
      if (bound.path == io::Path::coalesced) {
        vm_.register_coalesced(space, added->base + bound.reg.offset, bound.reg.width);
        coalesced_zones_.fetch_add(1, std::memory_order_relaxed);
      } else if (bound.path == io::Path::ioeventfd) {
        // One wildcard eventfd, or one per value the register declares (virtio: a datamatch per queue index).
        std::vector<std::optional<uint64_t>> matches;
        if (bound.reg.datamatch_values == 0) matches.emplace_back();
        for (uint64_t value = 0; value < bound.reg.datamatch_values; ++value) matches.emplace_back(value);
        for (const auto& match : matches) {
          bool exists = false;
          for (const auto& [handle, doorbell] : doorbells_) {
            exists |= doorbell->from_binding && doorbell->device == added->device &&
                      doorbell->region == added->region && doorbell->offset == bound.reg.offset &&
                      doorbell->datamatch == match;
          }
          if (!exists) {
            add_locked(added->device, added->region, bound.reg.offset, bound.reg.width, match, bound.reg.reset, true,
                       io::DoorbellDelivery::on_signal);
          }
        }
      }
    }
  }
}

void Dispatcher::drain_coalesced(kvm::Vcpu& vcpu) {
  if (coalesced_zones_.load(std::memory_order_relaxed) == 0) return;
  std::lock_guard lock(ring_mutex_);
  vcpu.drain_coalesced([this](const kvm_coalesced_mmio& entry) {
    uint64_t value = 0;
    unsigned size = entry.len <= sizeof value ? entry.len : 0;  // a corrupt length is refused by the bus
    std::memcpy(&value, entry.data, size);
    io::Bus& bus = entry.pio ? pio_ : mmio_;
    (void)bus.write(entry.phys_addr, size, value, io::Path::coalesced);
  });
}

}  // namespace iovmm
