#include "io/bus.h"

#include <cstring>

#include <fmt/core.h>

#include <algorithm>

#include "common/error.h"
#include "common/log.h"

namespace iovmm::io {

void AccessCounts::add(uint64_t offset, unsigned size, Direction direction, Path path, uint64_t n) {
  std::lock_guard lock(mutex_);
  counts_[Key{offset, size, direction, path}] += n;
}

std::map<AccessCounts::Key, uint64_t> AccessCounts::snapshot() const {
  std::lock_guard lock(mutex_);
  return counts_;
}

const WindowBinding::BoundRegister* WindowBinding::find(uint64_t offset, unsigned size) const {
  for (const auto& bound : registers) {
    if (bound.reg.covers(offset, size)) return &bound;
  }
  return nullptr;
}

Bus::Bus(Space space) : space_(space), table_(std::make_shared<const Table>()) {}

void Bus::publish(Table table) {
  std::sort(table.begin(), table.end(), [](const Window& a, const Window& b) { return a.base < b.base; });
  table_.store(std::make_shared<const Table>(std::move(table)), std::memory_order_release);
}

void Bus::notify(const Window* removed, const Window* added) {
  for (const auto& listener : listeners_) listener(removed, added);
}

void Bus::add_listener(Listener listener) {
  std::lock_guard lock(writer_mutex_);
  listeners_.push_back(std::move(listener));
}

void Bus::check_free(const Table& table, const Window& window) const {
  if (window.size == 0 || window.base + window.size < window.base) {
    throw Error(fmt::format("{} bus: {} window {:#x}+{:#x} is empty or wraps", to_string(space_), window.label,
                            window.base, window.size));
  }
  for (const auto& w : table) {
    if (window.base < w.base + w.size && w.base < window.base + window.size) {
      throw Error(fmt::format("{} bus: {} at {:#x}+{:#x} overlaps {} at {:#x}+{:#x}", to_string(space_),
                              window.label, window.base, window.size, w.label, w.base, w.size));
    }
  }
}

void Bus::map(Window window) {
  if (!window.device) throw Error("bus: window without a device");
  if (window.label.empty()) window.label = window.device->name();
  std::lock_guard lock(writer_mutex_);
  auto bound = bindings_.find({window.device.get(), window.region});
  if (bound != bindings_.end()) window.binding = bound->second;
  Table table = *table_.load(std::memory_order_acquire);
  check_free(table, window);
  table.push_back(window);
  publish(std::move(table));
  notify(nullptr, &window);
}

bool Bus::unmap(const Device& device, unsigned region) {
  std::lock_guard lock(writer_mutex_);
  Table table = *table_.load(std::memory_order_acquire);
  auto it = std::find_if(table.begin(), table.end(),
                         [&](const Window& w) { return w.device.get() == &device && w.region == region; });
  if (it == table.end()) return false;
  Window removed = *it;
  table.erase(it);
  publish(std::move(table));
  notify(&removed, nullptr);
  return true;
}

void Bus::move(const Device& device, unsigned region, uint64_t new_base) {
  std::lock_guard lock(writer_mutex_);
  Table table = *table_.load(std::memory_order_acquire);
  auto it = std::find_if(table.begin(), table.end(),
                         [&](const Window& w) { return w.device.get() == &device && w.region == region; });
  if (it == table.end()) {
    throw Error(fmt::format("{} bus: {} region {} is not mapped", to_string(space_), device.name(), region));
  }
  Window old = *it;
  Window moved = *it;
  moved.base = new_base;
  table.erase(it);
  check_free(table, moved);  // on failure the window stays where it was
  table.push_back(moved);
  publish(std::move(table));
  notify(&old, &moved);
}

void Bus::bind(const Device& device, unsigned region, std::shared_ptr<const WindowBinding> binding) {
  std::lock_guard lock(writer_mutex_);
  bindings_[{&device, region}] = binding;
  Table table = *table_.load(std::memory_order_acquire);
  for (auto& w : table) {
    if (w.device.get() != &device || w.region != region) continue;
    Window old = w;
    w.binding = binding;
    Window rebound = w;
    publish(table);
    notify(&old, &rebound);
    return;
  }
}

std::optional<Window> Bus::find_window(const Device& device, unsigned region) const {
  auto table = table_.load(std::memory_order_acquire);
  for (const auto& w : *table) {
    if (w.device.get() == &device && w.region == region) return w;
  }
  return std::nullopt;
}

Bus::Hit Bus::lookup(uint64_t addr, unsigned size) const {
  auto table = table_.load(std::memory_order_acquire);
  if (!valid_access_size(size)) return {std::move(table), nullptr, AccessResult::bad_size};
  auto it = std::upper_bound(table->begin(), table->end(), addr,
                             [](uint64_t a, const Window& w) { return a < w.base; });
  if (it == table->begin()) return {std::move(table), nullptr, AccessResult::unmapped};
  --it;
  uint64_t offset = addr - it->base;
  if (offset >= it->size) return {std::move(table), nullptr, AccessResult::unmapped};
  if (size > it->size - offset) return {std::move(table), nullptr, AccessResult::crosses_end};
  const Window* window = &*it;
  return {std::move(table), window, AccessResult::ok};
}

void Bus::note_bad_access(AccessResult result, Direction direction, uint64_t addr, unsigned size, uint64_t value) {
  (direction == Direction::read ? unmapped_reads_ : unmapped_writes_).fetch_add(1, std::memory_order_relaxed);
  const char* why = result == AccessResult::crosses_end ? "runs past the end of a device window"
                    : result == AccessResult::bad_size  ? "has an invalid width"
                                                        : "hits no device";
  if (direction == Direction::read) {
    IOVMM_LOG_RATELIMITED("guest {} read of {} bytes at {:#x} {}: returning all-ones", to_string(space_), size, addr,
                          why);
  } else {
    IOVMM_LOG_RATELIMITED("guest {} write of {} bytes ({:#x}) at {:#x} {}: ignored", to_string(space_), size, value,
                          addr, why);
  }
}

namespace {
// The path an access is counted under: the caller's, unless the window as a whole is carried by a proxy.
Path counted_path(const Window& window, Path via) {
  return window.binding && via == Path::exit ? window.binding->whole : via;
}
}  // namespace

AccessResult Bus::read(uint64_t addr, unsigned size, uint64_t& value, Path via) {
  Hit hit = lookup(addr, size);
  value = valid_access_size(size) ? size_mask(size) : ~0ull;
  if (hit.result != AccessResult::ok) {
    note_bad_access(hit.result, Direction::read, addr, size, 0);
    return hit.result;
  }
  const Window& window = *hit.window;
  uint64_t offset = addr - window.base;
  Path path = counted_path(window, via);
  const WindowBinding::BoundRegister* bound = window.binding ? window.binding->find(offset, size) : nullptr;
  if (window.binding && window.binding->carrier) {
    value = window.binding->carrier->read(window.region, offset, size) & size_mask(size);
  } else if (bound && bound->path == Path::fastpath && via == Path::exit) {
    // Constants come from the table itself; lockless registers from the device, which keeps them safe to read.
    uint64_t byte = offset - bound->reg.offset;  // a constant holds at most 8 bytes of value; beyond them, zeros
    value = bound->reg.effect == Effect::constant
                ? (byte < 8 ? (bound->reg.reset >> (8 * byte)) & size_mask(size) : 0)
                : window.device->read_lockless(window.region, offset, size) & size_mask(size);
    path = Path::fastpath;
  } else {
    std::lock_guard lock(window.device->mutex());
    value = window.device->read(window.region, offset, size) & size_mask(size);
  }
  window.counts->add(offset, size, Direction::read, path);
  return AccessResult::ok;
}

AccessResult Bus::transfer_string(Direction direction, uint64_t addr, unsigned size, uint32_t count, uint8_t* data) {
  Hit hit = lookup(addr, size);
  if (hit.result != AccessResult::ok) {
    for (uint32_t i = 0; i < count; ++i) note_bad_access(hit.result, direction, addr, size, 0);
    if (direction == Direction::read) std::memset(data, 0xFF, size_t{size} * count);
    return hit.result;
  }
  const Window& window = *hit.window;
  uint64_t offset = addr - window.base;
  const bool carried = window.binding && window.binding->carrier;
  Device& target = carried ? *window.binding->carrier : *window.device;
  auto element = [&](uint8_t* bytes) {
    uint64_t value = 0;
    if (direction == Direction::read) {
      value = target.read(window.region, offset, size);
      std::memcpy(bytes, &value, size);
    } else {
      std::memcpy(&value, bytes, size);
      target.write(window.region, offset, size, value);
    }
  };
  if (carried) {
    for (uint32_t i = 0; i < count; ++i) element(data + size_t{i} * size);  // the carrier locks per access
  } else {
    std::lock_guard lock(window.device->mutex());
    for (uint32_t i = 0; i < count; ++i) element(data + size_t{i} * size);
  }
  window.counts->add(offset, size * count, direction, counted_path(window, Path::exit));
  return AccessResult::ok;
}

AccessResult Bus::write(uint64_t addr, unsigned size, uint64_t value, Path via) {
  Hit hit = lookup(addr, size);
  if (hit.result != AccessResult::ok) {
    note_bad_access(hit.result, Direction::write, addr, size, value);
    return hit.result;
  }
  const Window& window = *hit.window;
  uint64_t offset = addr - window.base;
  if (window.binding && window.binding->carrier) {
    window.binding->carrier->write(window.region, offset, size, value & size_mask(size));
  } else {
    std::lock_guard lock(window.device->mutex());
    window.device->write(window.region, offset, size, value & size_mask(size));
  }
  window.counts->add(offset, size, Direction::write, counted_path(window, via));
  return AccessResult::ok;
}

std::vector<Window> Bus::windows() const { return *table_.load(std::memory_order_acquire); }

}  // namespace iovmm::io
