#include "machine/interrupts.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <fmt/core.h>

#include "common/error.h"
#include "common/fd.h"
#include "common/log.h"

namespace iovmm {
namespace {

// KVM's GSI table holds up to KVM_MAX_IRQ_ROUTES entries; far more than a few devices' vectors need.
constexpr uint32_t kMaxGsi = 1024;

class KvmIrqLine final : public io::IrqLine {
 public:
  KvmIrqLine(kvm::Vm& vm, uint32_t gsi) : vm_(vm), gsi_(gsi) {}
  void set_level(bool asserted) override {
    try {
      vm_.set_irq_line(gsi_, asserted);
    } catch (const std::exception& e) {
      IOVMM_LOG_RATELIMITED("{}", e.what());
    }
  }

 private:
  kvm::Vm& vm_;
  uint32_t gsi_;
};

}  // namespace

class InterruptRouter::Vector final : public io::MsiVector {
 public:
  Vector(InterruptRouter& router, uint32_t gsi) : router_(router), gsi_(gsi), eventfd_(::eventfd(0, EFD_CLOEXEC)) {
    if (!eventfd_) throw_errno(fmt::format("eventfd for MSI GSI {}", gsi));
    router_.vm_.add_irqfd(gsi_, eventfd_.get());
  }
  ~Vector() override {
    try {
      router_.vm_.remove_irqfd(gsi_, eventfd_.get());
    } catch (const std::exception& e) {
      log::warn("{}", e.what());
    }
    router_.release(gsi_);
  }
  void set_message(uint64_t address, uint32_t data) override { router_.set_route(gsi_, address, data); }
  void signal() override {
    uint64_t one = 1;
    [[maybe_unused]] auto written = ::write(eventfd_.get(), &one, sizeof one);
  }

 private:
  InterruptRouter& router_;
  uint32_t gsi_;
  Fd eventfd_;
};

InterruptRouter::InterruptRouter(kvm::Vm& vm) : vm_(vm) {}

std::shared_ptr<io::IrqLine> InterruptRouter::line(uint32_t gsi) {
  if (gsi >= kvm::Vm::kIrqchipGsiCount) throw Error(fmt::format("GSI {} is not an irqchip pin", gsi));
  return std::make_shared<KvmIrqLine>(vm_, gsi);
}

std::unique_ptr<io::MsiVector> InterruptRouter::allocate() {
  uint32_t gsi;
  {
    std::lock_guard lock(mutex_);
    if (!free_gsis_.empty()) {
      gsi = free_gsis_.back();
      free_gsis_.pop_back();
    } else if (next_gsi_ < kMaxGsi) {
      gsi = next_gsi_++;
    } else {
      throw Error(fmt::format("no GSI left for an MSI vector ({} in use)", kMaxGsi - kvm::Vm::kIrqchipGsiCount));
    }
  }
  return std::make_unique<Vector>(*this, gsi);
}

void InterruptRouter::set_route(uint32_t gsi, uint64_t address, uint32_t data) {
  std::lock_guard lock(mutex_);
  auto& route = routes_[gsi];
  if (route.gsi == gsi && route.address == address && route.data == data) return;
  route = {gsi, address, data};
  commit_locked();
}

void InterruptRouter::release(uint32_t gsi) {
  std::lock_guard lock(mutex_);
  if (routes_.erase(gsi) > 0) commit_locked();
  free_gsis_.push_back(gsi);
}

void InterruptRouter::commit_locked() {
  std::vector<kvm::Vm::MsiRoute> routes;
  routes.reserve(routes_.size());
  for (const auto& [gsi, route] : routes_) routes.push_back(route);
  try {
    vm_.set_gsi_routing(routes);
  } catch (const std::exception& e) {
    // A guest that programs an MSI KVM refuses gets no interrupt, as on hardware with a bad address.
    IOVMM_LOG_RATELIMITED("{}", e.what());
  }
}

}  // namespace iovmm
