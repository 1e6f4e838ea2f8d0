// The KVM side of the dispatch paths: keeps coalesced MMIO/PIO zones and ioeventfds registered where the bound
// registers are (following windows when a guest moves a BAR), delivers eventfd signals to devices on the event
// loop, and replays the coalesced ring, in order, before a vCPU handles any other exit.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "io/bus.h"
#include "io/doorbell.h"
#include "kvm/vcpu.h"
#include "kvm/vm.h"
#include "machine/event_loop.h"

namespace iovmm {

class Dispatcher final : public io::DoorbellHost {
 public:
  Dispatcher(kvm::Vm& vm, io::Bus& pio, io::Bus& mmio, EventLoop& loop);
  ~Dispatcher() override;

  int add_doorbell(io::Device& device, unsigned region, uint64_t offset, unsigned size,
                   std::optional<uint64_t> datamatch, io::DoorbellDelivery delivery) override;
  void remove_doorbell(int handle) override;
  [[nodiscard]] uint64_t take_pending(int handle) override;

  // Replays what KVM queued in the coalesced ring. Every vCPU calls it before handling an exit, so that a read
  // never overtakes an earlier coalesced write (and neither does anything else the exit does).
  void drain_coalesced(kvm::Vcpu& vcpu);

 private:
  struct Doorbell;

  void on_window_change(io::Bus& bus, const io::Window* removed, const io::Window* added);
  void arm(Doorbell& doorbell, io::Space space, uint64_t window_base);
  void disarm(Doorbell& doorbell);
  void deliver(Doorbell& doorbell);
  uint64_t take_signals(Doorbell& doorbell);
  int add_locked(std::shared_ptr<io::Device> device, unsigned region, uint64_t offset, unsigned size,
                 std::optional<uint64_t> datamatch, uint64_t wildcard_value, bool from_binding,
                 io::DoorbellDelivery delivery);

  kvm::Vm& vm_;
  io::Bus& pio_;
  io::Bus& mmio_;
  EventLoop& loop_;
  std::mutex mutex_;  // guards doorbells_ and KVM registrations; always the innermost lock
  std::map<int, std::shared_ptr<Doorbell>> doorbells_;
  int next_handle_ = 1;
  std::atomic<uint32_t> coalesced_zones_{0};
  std::mutex ring_mutex_;  // the ring is shared by every vCPU; one drains at a time, in order
};

}  // namespace iovmm
