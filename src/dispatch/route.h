// A window's route, compiled once from its binding when the window is bound: which rows of the window's table the
// fastpath answers, and whether a device server (ioregionfd) carries the whole window. The bus hands every access
// the row it found, so an access costs one indexed load here and no search, map or allocation.
#pragma once

#include <memory>
#include <vector>

#include "dispatch/binding.h"
#include "io/bus.h"

namespace iovmm::dispatch {

class CompiledRoute final : public io::WindowRoute {
 public:
  // Throws Error when the binding asks for a lockless read the device does not provide.
  CompiledRoute(io::Device& device, unsigned region, WindowBinding binding, std::shared_ptr<io::Device> carrier);

  [[nodiscard]] io::Path read(const io::Window& window, uint32_t row, uint64_t offset, unsigned size, io::Path via,
                              uint64_t& value) const override;
  [[nodiscard]] io::Path write(const io::Window& window, uint32_t row, uint64_t offset, unsigned size, uint64_t value,
                               io::Path via) const override;
  [[nodiscard]] io::Path transfer_string(const io::Window& window, io::Direction direction, uint64_t offset,
                                         unsigned size, uint32_t count, uint8_t* data) const override;

  // What the KVM side registers for the window: coalesced zones and ioeventfds.
  [[nodiscard]] const WindowBinding& binding() const { return binding_; }

 private:
  [[nodiscard]] io::Path carried(io::Path via) const { return via == io::Path::exit ? binding_.whole : via; }

  WindowBinding binding_;
  std::shared_ptr<io::Device> carrier_;  // ioregionfd: the proxy to the device server
  std::span<const io::Register> rows_;   // the window's table, in the order the bus numbers rows
  std::vector<bool> fastpath_;           // per row: reads answered without the device lock
  io::LocklessReads* lockless_ = nullptr;
};

}  // namespace iovmm::dispatch
