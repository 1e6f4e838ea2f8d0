// The dispatch layer's one entry point for the machine. It compiles each window's binding into its route (route.h),
// keeps KVM's coalesced zones and ioeventfds where the bound registers are (following windows when a guest moves a
// BAR), delivers eventfd signals to devices on the event loop (the ioeventfd path), replays the coalesced ring
// (coalesced.h), and maps the hypercall port (hypercall.h). It talks to KVM only through a KvmRegistrar and to the
// event loop only through an FdWatcher, so unit tests drive all of it with fakes.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "dispatch/binding.h"
#include "dispatch/coalesced.h"
#include "dispatch/registrar.h"
#include "io/bus.h"
#include "io/doorbell.h"
#include "io/fd_watcher.h"

namespace iovmm::dispatch {

class Dispatcher final : public io::DoorbellHost {
 public:
  Dispatcher(KvmRegistrar& kvm, io::Bus& pio, io::Bus& mmio, io::FdWatcher& watcher);
  ~Dispatcher() override;

  // Compiles `binding` for (device, region) and attaches the route on both buses, to the window it has now or
  // gets later. With a carrier (an ioregionfd proxy) every access to the window goes to the carrier instead.
  void bind(io::Device& device, unsigned region, WindowBinding binding = {},
            std::shared_ptr<io::Device> carrier = nullptr);

  int add_doorbell(io::Device& device, unsigned region, uint64_t offset, unsigned size,
                   std::optional<uint64_t> datamatch, io::DoorbellDelivery delivery) override;
  void remove_doorbell(int handle) override;
  [[nodiscard]] uint64_t take_pending(int handle) override;

  // Every vCPU calls it before handling an exit (see CoalescedReplay).
  size_t drain_coalesced(CoalescedRing ring) { return coalesced_.drain(ring); }

 private:
  struct Doorbell;

  void on_window_change(io::Bus& bus, const io::Window* removed, const io::Window* added);
  void arm(Doorbell& doorbell, io::Space space, uint64_t window_base);
  void disarm(Doorbell& doorbell);
  void deliver(Doorbell& doorbell);
  uint64_t take_signals(Doorbell& doorbell);
  int add_locked(io::Space space, const io::Window& window, uint64_t offset, unsigned size,
                 std::optional<uint64_t> datamatch, uint64_t wildcard_value, bool from_binding,
                 io::DoorbellDelivery delivery);
  void drop_locked(std::map<int, std::shared_ptr<Doorbell>>::iterator it);

  KvmRegistrar& kvm_;
  io::Bus& pio_;
  io::Bus& mmio_;
  io::FdWatcher& watcher_;
  CoalescedReplay coalesced_;
  std::mutex mutex_;  // guards doorbells_ and KVM registrations; device locks are never taken under it
  std::map<int, std::shared_ptr<Doorbell>> doorbells_;
  int next_handle_ = 1;
};

}  // namespace iovmm::dispatch
