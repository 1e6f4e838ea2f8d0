#include "dispatch/route.h"

#include <fmt/core.h>

#include "common/error.h"

namespace iovmm::dispatch {

CompiledRoute::CompiledRoute(io::Device& device, unsigned region, WindowBinding binding,
                             std::shared_ptr<io::Device> carrier)
    : binding_(std::move(binding)),
      carrier_(std::move(carrier)),
      rows_(device.registers(region)),
      fastpath_(rows_.size(), false),
      lockless_(dynamic_cast<io::LocklessReads*>(&device)) {
  for (size_t i = 0; i < rows_.size(); ++i) {
    const auto* bound = binding_.find(rows_[i].offset, rows_[i].width);
    if (!bound || bound->path != io::Path::fastpath || bound->reg.name != rows_[i].name) continue;
    if (rows_[i].effect != io::Effect::constant && !lockless_) {
      throw Error(fmt::format("{}: register {} is declared lockless but the device has no lockless reads",
                              device.name(), rows_[i].name));
    }
    fastpath_[i] = true;
  }
}

io::Path CompiledRoute::read(const io::Window& window, uint32_t row, uint64_t offset, unsigned size, io::Path via,
                             uint64_t& value) const {
  if (carrier_) {
    value = carrier_->read(window.region, offset, size);
    return carried(via);
  }
  if (row != io::RegisterMap::kNone && via == io::Path::exit && fastpath_[row]) {
    const io::Register& reg = rows_[row];
    if (reg.effect == io::Effect::constant) {
      uint64_t byte = offset - reg.offset;  // a constant holds at most 8 bytes of value; beyond them, zeros
      value = byte < 8 ? reg.reset_value >> (8 * byte) : 0;
    } else {
      value = lockless_->read_lockless(window.region, offset, size);
    }
    return io::Path::fastpath;
  }
  std::lock_guard lock(window.device->mutex());
  value = window.device->read(window.region, offset, size);
  return via;
}

io::Path CompiledRoute::write(const io::Window& window, uint32_t, uint64_t offset, unsigned size, uint64_t value,
                              io::Path via) const {
  if (carrier_) {
    carrier_->write(window.region, offset, size, value);
    return carried(via);
  }
  std::lock_guard lock(window.device->mutex());
  window.device->write(window.region, offset, size, value);
  return via;
}

io::Path CompiledRoute::transfer_string(const io::Window& window, io::Direction direction, uint64_t offset,
                                        unsigned size, uint32_t count, uint8_t* data) const {
  if (carrier_) {
    io::transfer_elements(*carrier_, window.region, direction, offset, size, count, data);  // it locks per access
    return binding_.whole;
  }
  std::lock_guard lock(window.device->mutex());
  io::transfer_elements(*window.device, window.region, direction, offset, size, count, data);
  return io::Path::exit;
}

}  // namespace iovmm::dispatch
