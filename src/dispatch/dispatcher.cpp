#include "dispatch/dispatcher.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <vector>

#include <fmt/core.h>

#include "common/error.h"
#include "common/fd.h"
#include "common/log.h"
#include "dispatch/route.h"

namespace iovmm::dispatch {

struct Dispatcher::Doorbell {
  io::Window window;  // the device, its counts and where it was when last armed
  uint64_t offset;
  unsigned size;
  std::optional<uint64_t> datamatch;
  uint64_t delivered_value;  // what the device is told was written
  bool from_binding;         // registered for a window's binding (lives and dies with the window)
  bool watched;              // delivered on signal: the fd is on the watcher
  Fd eventfd;
  std::optional<kvm::IoeventfdSpec> armed;  // where KVM currently signals it
  bool active = true;  // cleared, under the device's mutex, when removed: a late signal is then dropped
};

namespace {
kvm::IoSpace to_kvm(io::Space space) { return space == io::Space::pio ? kvm::IoSpace::pio : kvm::IoSpace::mmio; }

uint64_t read_eventfd(int fd) {
  uint64_t count = 0;
  return ::read(fd, &count, sizeof count) == sizeof count ? count : 0;
}

const WindowBinding* binding_of(const io::Window* window) {
  const auto* route = window ? dynamic_cast<const CompiledRoute*>(window->route.get()) : nullptr;
  return route ? &route->binding() : nullptr;
}
}  // namespace

Dispatcher::Dispatcher(KvmRegistrar& kvm, io::Bus& pio, io::Bus& mmio, io::FdWatcher& watcher)
    : kvm_(kvm), pio_(pio), mmio_(mmio), watcher_(watcher), coalesced_(pio, mmio) {
  pio_.add_listener([this](const io::Window* removed, const io::Window* added) {
    on_window_change(pio_, removed, added);
  });
  mmio_.add_listener([this](const io::Window* removed, const io::Window* added) {
    on_window_change(mmio_, removed, added);
  });
}

Dispatcher::~Dispatcher() {
  std::lock_guard lock(mutex_);
  while (!doorbells_.empty()) drop_locked(doorbells_.begin());
}

void Dispatcher::bind(io::Device& device, unsigned region, WindowBinding binding, std::shared_ptr<io::Device> carrier) {
  auto route = std::make_shared<const CompiledRoute>(device, region, std::move(binding), std::move(carrier));
  pio_.bind(device, region, route);
  mmio_.bind(device, region, route);
}

void Dispatcher::arm(Doorbell& doorbell, io::Space space, uint64_t window_base) {
  kvm::IoeventfdSpec spec{to_kvm(space), window_base + doorbell.offset, doorbell.size, doorbell.datamatch.has_value(),
                          doorbell.datamatch.value_or(0)};
  kvm_.add_ioeventfd(spec, doorbell.eventfd.get());
  doorbell.armed = spec;
}

void Dispatcher::disarm(Doorbell& doorbell) {
  if (!doorbell.armed) return;
  try {
    kvm_.remove_ioeventfd(*doorbell.armed, doorbell.eventfd.get());
  } catch (const Error& e) {
    log::warn("{}: {}", doorbell.window.device->name(), e.what());
  }
  doorbell.armed.reset();
}

void Dispatcher::drop_locked(std::map<int, std::shared_ptr<Doorbell>>::iterator it) {
  disarm(*it->second);
  if (it->second->watched) watcher_.unwatch(it->second->eventfd.get());
  doorbells_.erase(it);
}

// Every signalled write is counted once, under the ioeventfd path, whether the device got it or it was dropped
// because the doorbell was removed first (as QEMU drops them): the guest did write.
uint64_t Dispatcher::take_signals(Doorbell& doorbell) {
  uint64_t count = read_eventfd(doorbell.eventfd.get());
  if (count) {
    doorbell.window.counts->add(doorbell.offset, doorbell.size, io::Direction::write, io::Path::ioeventfd, count);
  }
  return count;
}

void Dispatcher::deliver(Doorbell& doorbell) {
  // The count is read under the device's lock so that take_pending(), called by the device under the same lock,
  // and this delivery never both see the same signals.
  io::Device& device = *doorbell.window.device;
  std::lock_guard lock(device.mutex());
  uint64_t count = take_signals(doorbell);
  if (count == 0 || !doorbell.active) return;
  if (auto* sink = dynamic_cast<io::DoorbellSink*>(&device)) {
    sink->doorbell(doorbell.window.region, doorbell.offset, doorbell.size, doorbell.delivered_value, count);
  } else {
    device.write(doorbell.window.region, doorbell.offset, doorbell.size, doorbell.delivered_value);
  }
}

int Dispatcher::add_locked(io::Space space, const io::Window& window, uint64_t offset, unsigned size,
                           std::optional<uint64_t> datamatch, uint64_t wildcard_value, bool from_binding,
                           io::DoorbellDelivery delivery) {
  auto doorbell = std::make_shared<Doorbell>();
  doorbell->window = window;
  doorbell->offset = offset;
  doorbell->size = size;
  doorbell->datamatch = datamatch;
  doorbell->delivered_value = datamatch.value_or(wildcard_value);
  doorbell->from_binding = from_binding;
  doorbell->watched = delivery == io::DoorbellDelivery::on_signal;
  doorbell->eventfd = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!doorbell->eventfd) throw_errno(fmt::format("{}: eventfd for a doorbell", window.device->name()));
  arm(*doorbell, space, window.base);
  if (doorbell->watched) {
    std::weak_ptr<Doorbell> weak = doorbell;
    watcher_.watch(doorbell->eventfd.get(), [this, weak] {
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
  io::Space space = io::Space::pio;
  std::optional<io::Window> window = pio_.find_window(device, region);
  if (!window) {
    space = io::Space::mmio;
    window = mmio_.find_window(device, region);
  }
  if (!window) {
    IOVMM_LOG_RATELIMITED("{}: doorbell for region {}, which is not mapped now: writes keep exiting", device.name(),
                          region);
    return kNoDoorbell;
  }
  std::lock_guard lock(mutex_);
  try {
    return add_locked(space, *window, offset, size, datamatch, 0, false, delivery);
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
    drop_locked(it);
  }
  doorbell->active = false;  // the caller holds the device's mutex, as deliver() does when it checks
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

// Called with `bus`'s writer lock held, for every window that appears, disappears, moves or is rebound.
void Dispatcher::on_window_change(io::Bus& bus, const io::Window* removed, const io::Window* added) {
  std::lock_guard lock(mutex_);
  const kvm::IoSpace space = to_kvm(bus.space());
  if (const WindowBinding* old = binding_of(removed)) {
    for (const auto& bound : old->registers) {
      if (bound.path != io::Path::coalesced) continue;
      kvm_.unregister_coalesced(space, removed->base + bound.reg.offset, bound.reg.width);
      coalesced_.remove_zone(bus.space(), removed->base + bound.reg.offset, bound.reg.width);
    }
  }
  // Doorbells of the window: re-armed at its new place, or dropped with it when they came from its binding.
  const io::Window* window = added ? added : removed;
  const bool rebound = added && removed && added->route != removed->route;
  for (auto it = doorbells_.begin(); it != doorbells_.end();) {
    Doorbell& doorbell = *it->second;
    auto next = std::next(it);
    if (doorbell.window.device == window->device && doorbell.window.region == window->region) {
      if (removed) disarm(doorbell);
      if (doorbell.from_binding && (!added || rebound)) {
        drop_locked(it);
      } else if (added) {
        doorbell.window = *added;
        arm(doorbell, bus.space(), added->base);
      }
    }
    it = next;
  }
  const WindowBinding* now = binding_of(added);
  if (!now) return;
  for (const auto& bound : now->registers) {
    if (bound.path == io::Path::coalesced) {
      kvm_.register_coalesced(space, added->base + bound.reg.offset, bound.reg.width);
      coalesced_.add_zone(bus.space(), added->base + bound.reg.offset, bound.reg.width, *added);
    } else if (bound.path == io::Path::ioeventfd) {
      // One wildcard eventfd, or one per value the register declares (virtio: a datamatch per queue index).
      std::vector<std::optional<uint64_t>> matches;
      if (bound.reg.datamatch_values == 0) matches.emplace_back();
      for (uint64_t value = 0; value < bound.reg.datamatch_values; ++value) matches.emplace_back(value);
      for (const auto& match : matches) {
        bool exists = false;
        for (const auto& [handle, doorbell] : doorbells_) {
          exists |= doorbell->from_binding && doorbell->window.device == added->device &&
                    doorbell->window.region == added->region && doorbell->offset == bound.reg.offset &&
                    doorbell->datamatch == match;
        }
        if (!exists) {
          add_locked(bus.space(), *added, bound.reg.offset, bound.reg.width, match, bound.reg.doorbell_value, true,
                     io::DoorbellDelivery::on_signal);
        }
      }
    }
  }
}

}  // namespace iovmm::dispatch
